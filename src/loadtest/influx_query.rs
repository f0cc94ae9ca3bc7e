//! Reading points back from InfluxDB with InfluxQL through `/query`: the
//! v1 API, and the InfluxQL-compatible `/query` endpoint of v2 and 3.x
//! (database = bucket, token authentication). Results are asked for in
//! chunks, so a long window is never one huge response.

use std::time::Duration;

use serde::Deserialize;

use crate::config::{Api, InfluxConfig};
use crate::schema::parse::{ParsedPoint, ParsedValue};
use crate::writer::client::http_builder;
use crate::writer::error::WriteError;

/// How long one query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(120);
/// Rows per chunk of a chunked response.
const CHUNK_SIZE: &str = "20000";

pub struct InfluxQuery {
    http: reqwest::Client,
    base_url: String,
    config: InfluxConfig,
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    results: Vec<StatementResult>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct StatementResult {
    #[serde(default)]
    series: Vec<Series>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Series {
    name: String,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
    columns: Vec<String>,
    #[serde(default)]
    values: Vec<Vec<serde_json::Value>>,
}

impl InfluxQuery {
    pub fn new(config: &InfluxConfig) -> Result<Self, String> {
        let http = http_builder(config, QUERY_TIMEOUT)
            .map_err(|e| e.to_string())?
            .build()
            .map_err(|e| e.to_string())?;
        Ok(InfluxQuery {
            http,
            base_url: config.base_url(),
            config: config.clone(),
        })
    }

    pub fn url(&self) -> &str {
        &self.base_url
    }

    fn database(&self) -> &str {
        match self.config.api {
            Api::V1 => &self.config.database,
            Api::V2 => &self.config.bucket,
        }
    }

    fn authorise(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.config.api {
            Api::V1 if self.config.user.is_empty() => request,
            Api::V1 => request.basic_auth(&self.config.user, Some(self.config.password.expose())),
            Api::V2 => request.header(
                "Authorization",
                format!("Token {}", self.config.token.expose()),
            ),
        }
    }

    /// Whether the server answers `/ping` within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> Result<(), String> {
        let request = self
            .http
            .get(format!("{}/ping", self.base_url))
            .timeout(timeout);
        match self.authorise(request).send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!("/ping answered HTTP {}", response.status())),
            Err(error) => Err(transport(&self.base_url, error)),
        }
    }

    /// Runs one InfluxQL statement and answers every row as a point (tags
    /// from `GROUP BY *`, fields from the columns; nulls left out).
    pub async fn points(&self, statement: &str) -> Result<Vec<ParsedPoint>, String> {
        let request = self.http.get(format!("{}/query", self.base_url)).query(&[
            ("db", self.database()),
            ("q", statement),
            ("epoch", "ns"),
            ("chunked", "true"),
            ("chunk_size", CHUNK_SIZE),
        ]);
        let response = self
            .authorise(request)
            .send()
            .await
            .map_err(|e| transport(&self.base_url, e))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| transport(&self.base_url, e))?;
        if !status.is_success() {
            return Err(format!(
                "{} answered HTTP {status} to {statement:?}: {}",
                self.base_url,
                body.trim()
            ));
        }
        let mut points = Vec::new();
        // A chunked answer is one JSON document per line.
        for document in body.lines().filter(|l| !l.trim().is_empty()) {
            let response: Response = serde_json::from_str(document)
                .map_err(|e| format!("unreadable answer from {}: {e}", self.base_url))?;
            if let Some(error) = response.error {
                return Err(format!("{} refused {statement:?}: {error}", self.base_url));
            }
            for result in response.results {
                if let Some(error) = result.error {
                    return Err(format!("{} refused {statement:?}: {error}", self.base_url));
                }
                for series in result.series {
                    points.extend(rows(series));
                }
            }
        }
        Ok(points)
    }
}

fn rows(series: Series) -> impl Iterator<Item = ParsedPoint> {
    let Series {
        name,
        tags,
        columns,
        values,
    } = series;
    let tags: Vec<(String, String)> = tags.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    values.into_iter().filter_map(move |row| {
        let mut timestamp_ns = None;
        let mut fields = Vec::new();
        for (column, value) in columns.iter().zip(row) {
            if column == "time" {
                timestamp_ns = value.as_i64();
                continue;
            }
            let value = match value {
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => ParsedValue::Int(i),
                    None => ParsedValue::Float(n.as_f64()?),
                },
                serde_json::Value::Bool(b) => ParsedValue::Bool(b),
                serde_json::Value::String(s) => ParsedValue::Text(s),
                _ => continue,
            };
            fields.push((column.clone(), value));
        }
        Some(ParsedPoint {
            measurement: name.clone(),
            tags: tags.clone(),
            fields,
            timestamp_ns: timestamp_ns?,
        })
    })
}

/// A transport failure as the writer reports it: the server's address and
/// the innermost cause (never the request's query string).
fn transport(url: &str, error: reqwest::Error) -> String {
    WriteError::from_transport(url, error).to_string()
}

/// An InfluxQL string literal.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}
