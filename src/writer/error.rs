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
    /// The TLS handshake failed: a certificate not trusted or not for this
    /// host, or https spoken to a plain-HTTP port. Only an operator can
    /// fix it.
    Tls { url: String, reason: String },
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
    /// 400 or 422: the server refused points as invalid (or, 422, outside
    /// the retention period or in conflict with the schema); `dropped` says
    /// how many of the batch, as far as the answer tells.
    Rejected {
        url: String,
        dropped: Rejection,
        reason: String,
    },
    /// A redirect (3xx): following it would turn the write into a GET that
    /// stores nothing, so it is not followed; the address is wrong.
    Redirect {
        url: String,
        status: u16,
        location: Option<String>,
    },
    /// Any other 4xx, and anything else InfluxDB never answers: only a
    /// person can tell what is wrong.
    Refused {
        url: String,
        status: u16,
        reason: String,
    },
    /// 413: the request body is larger than the server accepts.
    TooLarge { url: String },
    /// 5xx, 408 or 429: worth sending again; `retry_after` is the server's
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
        if is_tls_failure(&reason) {
            return WriteError::Tls {
                url: url.into(),
                reason,
            };
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
        let full_reason = server_reason(body);
        let reason = shorten(&full_reason);
        // InfluxDB's https port answers plain HTTP with a 400 that is not
        // about the points: counted as rejected, they would all be lost.
        if status == 400 && reason.contains("HTTP request to an HTTPS server") {
            return WriteError::Refused {
                url: url.into(),
                status,
                reason: format!("{reason}; set INFLUXDB_PROTOCOL=https"),
            };
        }
        if (300..400).contains(&status) {
            return WriteError::Redirect {
                url: url.into(),
                status,
                location: None,
            };
        }
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
            400 | 422 => WriteError::Rejected {
                url: url.into(),
                dropped: rejection(credentials, &full_reason),
                reason,
            },
            413 => WriteError::TooLarge { url: url.into() },
            408 | 429 | 500..=599 => WriteError::Server {
                url: url.into(),
                status,
                reason,
                retry_after,
            },
            _ => WriteError::Refused {
                url: url.into(),
                status,
                reason,
            },
        }
    }

    /// A redirect, with where it pointed.
    pub fn redirect(url: &str, status: u16, location: Option<&str>) -> Self {
        WriteError::Redirect {
            url: url.into(),
            status,
            location: location.map(str::to_string),
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
            WriteError::Auth { .. }
                | WriteError::InvalidDatabase { .. }
                | WriteError::Client(_)
                | WriteError::Redirect { .. }
                | WriteError::Refused { .. }
                | WriteError::Tls { .. }
        )
    }

    /// A short name for the class of failure, for counters and dedup.
    pub fn class(&self) -> &'static str {
        match self {
            WriteError::Client(_) => "client",
            WriteError::Unreachable { .. } => "unreachable",
            WriteError::Timeout { .. } => "timeout",
            WriteError::Tls { .. } => "tls",
            WriteError::Auth { .. } => "auth",
            WriteError::InvalidDatabase { .. } => "invalid_database",
            WriteError::TooLarge { .. } => "too_large",
            WriteError::DatabaseNotFound { .. } => "database_not_found",
            WriteError::Rejected { .. } => "rejected",
            WriteError::Redirect { .. } => "redirect",
            WriteError::Refused { .. } => "refused",
            WriteError::Server { .. } => "server",
        }
    }
}

/// How many points of a batch a 400 or 422 answer refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// None was stored.
    All,
    /// Exactly this many were refused; the rest were stored.
    Exactly(usize),
    /// Some were stored and the answer does not say how many: InfluxDB
    /// 1.x reports a partial write of unparseable lines as `dropped=0`,
    /// and when the storage engine also refuses points it reports only
    /// those. The batch must be sent again in parts until every answer is
    /// exact (a point stored twice is stored once). `said` is the
    /// answer's `dropped=N`: exact only when it is the whole batch (then
    /// every line was parsed, and none stored).
    Unknown { said: Option<usize> },
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

/// Whether a transport error's innermost cause is the TLS layer's (rustls
/// words): the server is there, but the connection cannot be trusted.
fn is_tls_failure(reason: &str) -> bool {
    let reason = reason.to_ascii_lowercase();
    [
        "certificate",
        "handshake",
        "tls",
        "corrupt message",
        "invalidcontenttype",
    ]
    .iter()
    .any(|word| reason.contains(word))
}

/// At most this many characters of a server's answer are kept: a refused
/// line is quoted whole, and may be megabytes long.
const REASON_CHARS: usize = 500;

fn shorten(reason: &str) -> String {
    match reason.char_indices().nth(REASON_CHARS) {
        Some((cut, _)) => format!("{}... ({} bytes in all)", &reason[..cut], reason.len()),
        None => reason.to_string(),
    }
}

/// How many points a 400 or 422 answer refused.
///
/// InfluxDB 1.x (`User` credentials) stores the lines it can parse and the
/// points its storage accepts. Its answer is exact only when nothing was
/// stored: no `partial write` (every line failed to parse, or the request
/// was refused whole), or a `dropped=N` of the whole batch; the batch size
/// is not known here, so `Unknown` covers every partial write, with the N
/// it said.
/// The v2 API (2.x, 3.x) refuses a batch whole unless it says `partial
/// write ... dropped=N`.
fn rejection(credentials: &Credentials, reason: &str) -> Rejection {
    let partial = reason.contains("partial write");
    let dropped = reason.rsplit_once("dropped=").and_then(|(_, rest)| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<usize>().ok()
    });
    match (credentials, partial, dropped) {
        (_, false, _) => Rejection::All,
        (Credentials::User(_), true, said) => Rejection::Unknown { said },
        // A 1.x server reached with a token (1.8's v2 compatibility
        // endpoint) answers as 1.x: lines it could not parse are not in
        // its `dropped=N`.
        (Credentials::Token, true, said) if reason.contains("unable to parse") => {
            Rejection::Unknown { said }
        }
        (Credentials::Token, true, Some(n)) => Rejection::Exactly(n),
        (Credentials::Token, true, None) => Rejection::All,
    }
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
            WriteError::Tls { url, reason } => write!(
                f,
                "TLS with InfluxDB at {url} failed ({reason}): check the server's certificate and name, INFLUXDB_CA_FILE for a private CA, and INFLUXDB_PROTOCOL"
            ),
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
            WriteError::Rejected { url, dropped: Rejection::Exactly(dropped), reason } => {
                write!(f, "InfluxDB at {url} rejected {dropped} point(s): {reason}")
            }
            WriteError::Rejected { url, dropped: Rejection::All, reason } => {
                write!(f, "InfluxDB at {url} rejected a whole batch: {reason}")
            }
            WriteError::Rejected { url, dropped: Rejection::Unknown { .. }, reason } => {
                write!(f, "InfluxDB at {url} rejected some points of a batch without saying how many: {reason}")
            }
            WriteError::Redirect { url, status, location } => write!(
                f,
                "InfluxDB at {url} answered with a redirect (HTTP {status}) to {}, which is not followed (it would turn the write into a read): check INFLUXDB_PROTOCOL, INFLUXDB_HOST and INFLUXDB_PORT",
                location.as_deref().unwrap_or("an address it did not give")
            ),
            WriteError::Refused { url, status, reason } => write!(
                f,
                "InfluxDB at {url} refused the write with HTTP {status} ({reason}): not retried until fixed, check the address and the server"
            ),
            WriteError::TooLarge { url } => {
                write!(f, "InfluxDB at {url} refused a request as too large (HTTP 413)")
            }
            WriteError::Server { url, status, reason, .. } => {
                write!(f, "InfluxDB at {url} answered HTTP {status}: {reason}")
            }
        }
    }
}

impl std::error::Error for WriteError {}

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
            matches!(
                partial,
                WriteError::Rejected {
                    dropped: Rejection::Unknown { .. },
                    ..
                }
            ),
            "{partial:?}"
        );
        let parse = classify(
            400,
            "{\"error\":\"unable to parse 'a b': invalid field format\"}",
        );
        assert!(matches!(
            parse,
            WriteError::Rejected {
                dropped: Rejection::All,
                ..
            }
        ));
    }

    /// InfluxDB 1.x stores the lines it parses and says `dropped=0` for
    /// the others, and says only the storage engine's count when both
    /// refuse points: a partial write from it is never taken at its word.
    #[test]
    fn a_1x_partial_write_is_an_unknown_count_and_a_plain_400_the_whole_batch() {
        let long_key = format!("docker_stats,label={} f=1i 1", "x".repeat(70_000));
        let parse = classify(
            400,
            &serde_json::json!({
                "error": format!("partial write: unable to parse '{long_key}': max key length exceeded: 70016 > 65535 dropped=0")
            })
            .to_string(),
        );
        assert!(
            matches!(
                parse,
                WriteError::Rejected {
                    dropped: Rejection::Unknown { .. },
                    ..
                }
            ),
            "{parse:?}"
        );
        let text = parse.to_string();
        assert!(
            text.len() < 1000,
            "the reason is not shortened: {} bytes",
            text.len()
        );
        assert!(text.contains("bytes in all"), "{text}");
        let refused_whole = classify(
            400,
            r#"{"error":"unable to parse 'a b': missing fields\nunable to parse 'c d': missing fields"}"#,
        );
        assert!(matches!(
            refused_whole,
            WriteError::Rejected {
                dropped: Rejection::All,
                ..
            }
        ));
    }

    /// InfluxDB 1.8 answers its v2 compatibility endpoint (a token) as
    /// 1.x does: lines it could not parse are not counted in `dropped=N`,
    /// so the count is not taken at its word. A 2.x count is.
    #[test]
    fn a_partial_write_with_unparsed_lines_is_an_unknown_count_whatever_the_api() {
        let answer = |body: &str| {
            WriteError::from_response(
                "http://db:8086",
                &Credentials::Token,
                "stats",
                400,
                body,
                None,
            )
        };
        let from_1_8 = answer(
            r#"{"error":"partial write: unable to parse 'm,t=a\\ b': missing fields dropped=0"}"#,
        );
        assert!(
            matches!(
                from_1_8,
                WriteError::Rejected {
                    dropped: Rejection::Unknown { said: Some(0) },
                    ..
                }
            ),
            "{from_1_8:?}"
        );
        assert!(!from_1_8.to_string().contains("{\"error\""), "{from_1_8}");
        let from_2x = answer(
            r#"{"code":"invalid","message":"partial write has occurred: points beyond retention policy dropped=2"}"#,
        );
        assert!(
            matches!(
                from_2x,
                WriteError::Rejected {
                    dropped: Rejection::Exactly(2),
                    ..
                }
            ),
            "{from_2x:?}"
        );
    }

    /// A 1.x `dropped=N` is kept with the answer: it is exact when it is
    /// the whole batch (every line parsed, none stored).
    #[test]
    fn a_1x_partial_write_keeps_what_dropped_said() {
        let retention = classify(
            400,
            r#"{"error":"partial write: points beyond retention policy dropped=5"}"#,
        );
        assert!(
            matches!(
                retention,
                WriteError::Rejected {
                    dropped: Rejection::Unknown { said: Some(5) },
                    ..
                }
            ),
            "{retention:?}"
        );
    }

    #[test]
    fn a_reason_is_cut_by_characters() {
        let reason = "é".repeat(REASON_CHARS + 10);
        let short = shorten(&reason);
        assert!(short.starts_with(&"é".repeat(REASON_CHARS)), "{short}");
        assert!(short.ends_with(&format!("({} bytes in all)", reason.len())));
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
            matches!(&partial, WriteError::Rejected { dropped: Rejection::Exactly(2), reason, .. } if reason.starts_with("partial write")),
            "{partial:?}"
        );
        let bucket = v2(
            404,
            r#"{"code":"not found","message":"bucket \"nope\" not found"}"#,
        );
        assert!(bucket.to_string().contains("INFLUXDB_BUCKET"), "{bucket}");
        assert!(bucket.needs_operator());
    }

    /// Only network errors, 5xx, 408 and 429 are retried; 422 is a
    /// rejection like 400; any other status waits for an operator.
    #[test]
    fn only_what_can_succeed_unchanged_is_retried() {
        for status in [408, 429, 500, 502, 503, 504, 599] {
            assert!(classify(status, "").is_transient(), "{status}");
        }
        for status in [
            100, 201, 301, 302, 307, 402, 405, 409, 410, 415, 418, 451, 600,
        ] {
            let error = classify(status, "");
            assert!(!error.is_transient(), "{status} is retried: {error:?}");
            assert!(error.needs_operator(), "{status}: {error:?}");
        }
        assert!(matches!(
            classify(418, "teapot"),
            WriteError::Refused { status: 418, .. }
        ));
        let retention = classify(
            422,
            r#"{"code":"unprocessable entity","message":"failure writing points to database: partial write: points beyond retention policy dropped=4"}"#,
        );
        assert!(
            matches!(
                retention,
                WriteError::Rejected {
                    dropped: Rejection::Unknown { .. },
                    ..
                }
            ),
            "{retention:?}"
        );
        assert!(!retention.is_transient() && !retention.needs_operator());
    }

    #[test]
    fn a_v2_rejection_without_a_count_is_the_whole_batch() {
        let v2 = WriteError::from_response(
            "http://db:8086",
            &Credentials::Token,
            "bucket",
            400,
            r#"{"code":"invalid","message":"unable to parse 'x': missing fields"}"#,
            None,
        );
        assert!(
            matches!(
                v2,
                WriteError::Rejected {
                    dropped: Rejection::All,
                    ..
                }
            ),
            "{v2:?}"
        );
        assert!(v2.to_string().contains("whole batch"), "{v2}");
    }

    #[test]
    fn a_redirect_names_where_it_pointed_and_what_to_fix() {
        let redirect = WriteError::redirect("http://db:8086", 301, Some("https://db:8086/write"));
        let text = redirect.to_string();
        assert!(text.contains("https://db:8086/write"), "{text}");
        assert!(text.contains("INFLUXDB_PROTOCOL"), "{text}");
        assert!(redirect.needs_operator());
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
