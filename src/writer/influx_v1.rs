//! InfluxDB 1.x HTTP API client: `/write` with line protocol at nanosecond
//! precision and basic auth, and `CREATE DATABASE` through `/query`.

use std::time::Duration;

use crate::config::InfluxConfig;
use crate::writer::error::{parse_retry_after, Credentials, WriteError};

pub struct InfluxV1 {
    http: reqwest::Client,
    base_url: String,
    user: String,
    password: crate::config::Secret,
    database: String,
}

impl InfluxV1 {
    pub fn new(config: &InfluxConfig, request_timeout: Duration) -> Result<Self, WriteError> {
        let http = crate::writer::client::http_builder(config, request_timeout)?
            .build()
            .map_err(|e| WriteError::Client(e.to_string()))?;
        Ok(InfluxV1 {
            http,
            base_url: config.base_url(),
            user: config.user.clone(),
            password: config.password.clone(),
            database: config.database.clone(),
        })
    }

    pub fn url(&self) -> &str {
        &self.base_url
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self
            .http
            .request(method, format!("{}{}", self.base_url, path));
        if self.user.is_empty() {
            builder
        } else {
            builder.basic_auth(&self.user, Some(self.password.expose()))
        }
    }

    /// Writes a batch of newline-separated points.
    pub async fn write(&self, body: String) -> Result<(), WriteError> {
        let response = self
            .request(reqwest::Method::POST, "/write")
            .query(&[("db", self.database.as_str()), ("precision", "ns")])
            .body(body)
            .send()
            .await
            .map_err(|e| WriteError::from_transport(&self.base_url, e))?;
        self.check(response).await
    }

    /// Creates the database if it does not exist (a no-op when it does).
    pub async fn create_database(&self) -> Result<(), WriteError> {
        let statement = format!("CREATE DATABASE {}", quote_identifier(&self.database));
        let response = self
            .request(reqwest::Method::POST, "/query")
            .form(&[("q", statement.as_str())])
            .send()
            .await
            .map_err(|e| WriteError::from_transport(&self.base_url, e))?;
        self.check(response).await
    }

    async fn check(&self, response: reqwest::Response) -> Result<(), WriteError> {
        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let retry_after = header(reqwest::header::RETRY_AFTER)
            .and_then(|v| parse_retry_after(&v, std::time::SystemTime::now()));
        if status.is_redirection() {
            let location = header(reqwest::header::LOCATION);
            return Err(WriteError::redirect(
                &self.base_url,
                status.as_u16(),
                location.as_deref(),
            ));
        }
        let body = read_capped(response).await;
        if status.is_success() && is_success_body(&body) {
            return Ok(());
        }
        Err(WriteError::from_response(
            &self.base_url,
            &Credentials::User(self.user.clone()),
            &self.database,
            status.as_u16(),
            &body,
            retry_after,
        ))
    }
}

/// The most of an answer's body kept: enough for any error InfluxDB
/// writes, and a bound on what a wrong server can make the service hold.
const MAX_BODY_BYTES: usize = 64 * 1024;

async fn read_capped(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_BODY_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_BODY_BYTES {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// A 2xx counts only with no body (`/write` answers 204) or a JSON body
/// without an error (`/query` answers 200 with an "error" member for
/// statement errors); anything else is not InfluxDB's answer to a write.
fn is_success_body(body: &str) -> bool {
    let body = body.trim();
    body.is_empty()
        || serde_json::from_str::<serde_json::Value>(body)
            .is_ok_and(|v| v.get("error").is_none() && v.pointer("/results/0/error").is_none())
}

/// Quotes an InfluxQL identifier: double quotes, with `"` and `\` escaped,
/// the same escaping as a line protocol string value.
pub fn quote_identifier(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    crate::schema::line_protocol::push_string_value(&mut out, name);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_empty_or_error_free_json_body_is_a_success() {
        assert!(is_success_body(""));
        assert!(is_success_body("{\"results\":[{\"statement_id\":0}]}"));
        assert!(!is_success_body("{\"error\":\"x\"}"));
        assert!(!is_success_body(
            "{\"results\":[{\"statement_id\":0,\"error\":\"invalid name\"}]}"
        ));
        assert!(!is_success_body("<html>a login page</html>"));
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_identifier("docker-stats"), "\"docker-stats\"");
        assert_eq!(quote_identifier("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
