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
        let http = reqwest::Client::builder()
            .timeout(request_timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
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
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
        // `/query` answers 200 with an "error" member for statement errors.
        let body = response.text().await.unwrap_or_default();
        if status.is_success() && !body.contains("\"error\"") {
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

/// Quotes an InfluxQL identifier: double quotes, with `"` and `\` escaped,
/// the same escaping as a line protocol string value.
pub fn quote_identifier(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    crate::line_protocol::push_string_value(&mut out, name);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_identifier("docker-stats"), "\"docker-stats\"");
        assert_eq!(quote_identifier("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
