//! Why a write to InfluxDB failed, classified into what the writer should do
//! (retry, recreate the database, drop rejected points) and worded so that
//! an operator knows what to fix.

use std::fmt;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, PartialEq)]
pub enum WriteError {
    /// The HTTP client could not be built (bad TLS setup, ...).
    Client(String),
    /// Connection refused or reset, DNS failure: the server is not there.
    Unreachable { url: String, reason: String },
    /// The server did not answer in time.
    Timeout { url: String },
    /// 401 or 403: wrong credentials or missing permission. `setting`
    /// names what to fix (the v1 user and password, or the v2 token).
    Auth {
        url: String,
        user: String,
        status: u16,
        setting: &'static str,
    },
    /// The database does not exist (dropped while we run, or never created).
    DatabaseNotFound { url: String, database: String },
    /// The database name is not one the server accepts.
    InvalidDatabase {
        url: String,
        database: String,
        reason: String,
    },
    /// 400: the server rejected some points as invalid. The others were
    /// written (InfluxDB 1.x writes what it can parse).
    Rejected {
        url: String,
        dropped: usize,
        reason: String,
    },
    /// 413: the request body is larger than the server accepts.
    TooLarge { url: String },
    /// Any other answer: 5xx, 408, 429, ...; `retry_after` is the server's
    /// `Retry-After`, when it sent one.
    Server {
        url: String,
        status: u16,
        reason: String,
        retry_after: Option<Duration>,
    },
}

impl WriteError {
    pub fn from_transport(url: &str, error: reqwest::Error) -> Self {
        if error.is_timeout() {
            return WriteError::Timeout { url: url.into() };
        }
        // The innermost cause says "connection refused" or "dns error";
        // reqwest's own text only says "error sending request".
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            reason = cause.to_string();
            source = cause.source();
        }
        WriteError::Unreachable {
            url: url.into(),
            reason,
        }
    }

    pub fn from_response(
        url: &str,
        credentials: &Credentials,
        database: &str,
        status: u16,
        body: &str,
        retry_after: Option<Duration>,
    ) -> Self {
        let reason = server_reason(body);
        let unknown_bucket = status == 404 && reason.contains("bucket");
        if reason == "invalid name" || unknown_bucket {
            return WriteError::InvalidDatabase {
                url: url.into(),
                database: database.into(),
                reason,
            };
        }
        match status {
            401 | 403 => WriteError::Auth {
                url: url.into(),
                user: credentials.who(),
                status,
                setting: credentials.setting(),
            },
            404 if reason.contains("database not found") => WriteError::DatabaseNotFound {
                url: url.into(),
                database: database.into(),
            },
            400 => WriteError::Rejected {
                url: url.into(),
                dropped: dropped_count(&reason),
                reason,
            },
            413 => WriteError::TooLarge { url: url.into() },
            _ => WriteError::Server {
                url: url.into(),
                status,
                reason,
                retry_after,
            },
        }
    }

    /// Whether sending the same points again later can succeed without
    /// anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            WriteError::Unreachable { .. } | WriteError::Timeout { .. } | WriteError::Server { .. }
        )
    }

    /// Whether only a person can fix it (credentials, permissions, the
    /// database name, the TLS set-up).
    pub fn needs_operator(&self) -> bool {
        matches!(
            self,
            WriteError::Auth { .. } | WriteError::InvalidDatabase { .. } | WriteError::Client(_)
        )
    }

    /// A short name for the class of failure, for counters and dedup.
    pub fn class(&self) -> &'static str {
        match self {
            WriteError::Client(_) => "client",
            WriteError::Unreachable { .. } => "unreachable",
            WriteError::Timeout { .. } => "timeout",
            WriteError::Auth { .. } => "auth",
            WriteError::InvalidDatabase { .. } => "invalid_database",
            WriteError::TooLarge { .. } => "too_large",
            WriteError::DatabaseNotFound { .. } => "database_not_found",
            WriteError::Rejected { .. } => "rejected",
            WriteError::Server { .. } => "server",
        }
    }
}

/// How the service authenticates, for messages that say what to fix.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// v1: basic auth.
    User(String),
    /// v2: an API token.
    Token,
}

impl Credentials {
    fn who(&self) -> String {
        match self {
            Credentials::User(user) => format!("user {user:?}"),
            Credentials::Token => "the token".into(),
        }
    }

    fn setting(&self) -> &'static str {
        match self {
            Credentials::User(_) => "INFLUXDB_USER/INFLUXDB_PASS and the user's write permission",
            Credentials::Token => {
                "INFLUXDB_TOKEN (or INFLUXDB_TOKEN_FILE) and its write permission on the bucket"
            }
        }
    }
}

/// Reads a `Retry-After` header: whole seconds, or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// InfluxDB answers `{"error":"..."}`; fall back to the raw body.
fn server_reason(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            // `/write` answers {"error"}, `/query` {"results":[{"error"}]}, v2 {"message"}.
            v.get("error")
                .or_else(|| v.pointer("/results/0/error"))
                .or_else(|| v.get("message"))
                .and_then(|e| e.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| body.trim().chars().take(500).collect())
}

/// How many points a 400 answer says were dropped: `dropped=N` in a partial
/// write, otherwise one per unparseable line named.
fn dropped_count(reason: &str) -> usize {
    if let Some(rest) = reason
        .rsplit("dropped=")
        .next()
        .filter(|_| reason.contains("dropped="))
    {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = digits.parse() {
            return n;
        }
    }
    reason.matches("unable to parse").count().max(1)
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Client(reason) => write!(f, "cannot set up the HTTP client: {reason}"),
            WriteError::Unreachable { url, reason } => write!(
                f,
                "InfluxDB at {url} is unreachable ({reason}): check INFLUXDB_HOST, INFLUXDB_PORT and INFLUXDB_PROTOCOL, and that the server runs"
            ),
            WriteError::Timeout { url } => write!(f, "InfluxDB at {url} did not answer in time"),
            WriteError::Auth {
                url,
                user,
                status,
                setting,
            } => write!(
                f,
                "authentication failed for {user} at {url} (HTTP {status}): check {setting}"
            ),
            WriteError::DatabaseNotFound { url, database } => {
                write!(f, "database {database:?} does not exist at {url}")
            }
            WriteError::InvalidDatabase { url, database, reason } => write!(
                f,
                "InfluxDB at {url} does not accept or know the database {database:?} ({reason}): check INFLUXDB_DB (v1) or INFLUXDB_BUCKET (v2)"
            ),
            WriteError::Rejected { url, dropped, reason } => {
                write!(f, "InfluxDB at {url} rejected {dropped} point(s): {reason}")
            }
            WriteError::TooLarge { url } => {
                write!(f, "InfluxDB at {url} refused a request as too large (HTTP 413)")
            }
            WriteError::Server { url, status, reason, .. } => {
                write!(f, "InfluxDB at {url} answered HTTP {status}: {reason}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(status: u16, body: &str) -> WriteError {
        WriteError::from_response(
            "http://db:8086",
            &Credentials::User("admin".into()),
            "stats",
            status,
            body,
            None,
        )
    }

    #[test]
    fn classifies_server_answers() {
        assert!(matches!(
            classify(401, "{\"error\":\"authorization failed\"}"),
            WriteError::Auth { status: 401, .. }
        ));
        assert!(matches!(
            classify(404, "{\"error\":\"database not found: \\\"stats\\\"\"}"),
            WriteError::DatabaseNotFound { .. }
        ));
        assert!(classify(503, "").is_transient());
        assert!(!classify(403, "").is_transient());
    }

    #[test]
    fn counts_points_a_partial_write_dropped() {
        let partial = classify(
            400,
            "{\"error\":\"partial write: field type conflict: input field \\\"x\\\" on measurement \\\"m\\\" is type string, already exists as type float dropped=3\"}",
        );
        assert!(
            matches!(partial, WriteError::Rejected { dropped: 3, .. }),
            "{partial:?}"
        );
        let parse = classify(
            400,
            "{\"error\":\"unable to parse 'a b': invalid field format\"}",
        );
        assert!(matches!(parse, WriteError::Rejected { dropped: 1, .. }));
    }

    #[test]
    fn classifies_size_and_name_problems() {
        assert!(matches!(classify(413, ""), WriteError::TooLarge { .. }));
        let invalid = classify(
            200,
            "{\"results\":[{\"statement_id\":0,\"error\":\"invalid name\"}]}",
        );
        assert!(
            matches!(invalid, WriteError::InvalidDatabase { .. }),
            "{invalid:?}"
        );
        assert!(invalid.to_string().contains("INFLUXDB_DB"));
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = httpdate::parse_http_date("Tue, 24 Nov 2026 06:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Tue, 24 Nov 2026 06:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Tue, 24 Nov 2026 05:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn v2_error_bodies_are_read_like_v1_ones() {
        let v2 = |status, body: &str| {
            WriteError::from_response(
                "http://db:8086",
                &Credentials::Token,
                "bucket",
                status,
                body,
                None,
            )
        };
        let auth = v2(
            401,
            r#"{"code":"unauthorized","message":"unauthorized access"}"#,
        );
        assert!(matches!(auth, WriteError::Auth { status: 401, .. }));
        assert!(auth.to_string().contains("INFLUXDB_TOKEN"), "{auth}");
        let partial = v2(
            400,
            r#"{"code":"invalid","message":"partial write: field type conflict dropped=2"}"#,
        );
        assert!(
            matches!(&partial, WriteError::Rejected { dropped: 2, reason, .. } if reason.starts_with("partial write")),
            "{partial:?}"
        );
        let bucket = v2(
            404,
            r#"{"code":"not found","message":"bucket \"nope\" not found"}"#,
        );
        assert!(bucket.to_string().contains("INFLUXDB_BUCKET"), "{bucket}");
        assert!(bucket.needs_operator());
    }

    #[test]
    fn messages_name_the_setting_to_fix() {
        let auth = classify(401, "").to_string();
        assert!(
            auth.contains("INFLUXDB_USER/INFLUXDB_PASS") && auth.contains("\"admin\""),
            "{auth}"
        );
    }
}
