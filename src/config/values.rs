//! Parsers for setting values, shared by the file, the environment and flags.
//!
//! Environment variables and `--set` flags arrive as strings, while the file
//! has typed TOML values; every parser here accepts both forms so that one
//! typed struct validates all three sources with the same messages.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::schema::fields::FieldSelection;

/// A raw setting value as TOML or an environment variable gives it.
#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    List(Vec<String>),
}

impl Raw {
    fn describe(&self) -> String {
        match self {
            Raw::Int(i) => i.to_string(),
            Raw::Float(x) => x.to_string(),
            Raw::Bool(b) => b.to_string(),
            Raw::Str(s) => format!("{s:?}"),
            Raw::List(l) => format!("{l:?}"),
        }
    }
}

fn custom<E: serde::de::Error>(msg: String) -> E {
    E::custom(msg)
}

/// A duration: `"2s"`, `"500ms"`, `"1m 30s"`, or a bare number of
/// milliseconds (the environment variables' historic form, e.g. `10000`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(format!(
            "{text:?} is negative; a duration must be zero or more"
        ));
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| format!("{text:?} is too large"));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration ({e}); write it like \"2s\", \"500ms\" or 1000 (milliseconds)"))
}

pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match Raw::deserialize(d)? {
        Raw::Str(s) => parse_duration(&s).map(Some).map_err(custom),
        Raw::Int(i) if i >= 0 => Ok(Some(Duration::from_millis(i as u64))),
        other => Err(custom(format!(
            "{} is not a duration; write it like \"2s\" or \"500ms\"",
            other.describe()
        ))),
    }
}

fn whole_number<T: TryFrom<u64>>(raw: Raw, unit: &str) -> Result<T, String> {
    let n: Option<u64> = match &raw {
        Raw::Int(i) => u64::try_from(*i).ok(),
        Raw::Str(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    let fail = || {
        format!(
            "{} is not a whole number of {unit} (zero or more)",
            raw.describe()
        )
    };
    let n = n.ok_or_else(fail)?;
    T::try_from(n).map_err(|_| format!("{n} is too large"))
}

pub fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    whole_number(Raw::deserialize(d)?, "items")
        .map(Some)
        .map_err(custom)
}

/// A size in bytes: a whole number, or text with a unit such as `"64MiB"`,
/// `"512 KiB"` or `"1GB"` (KiB/MiB/GiB are powers of 1024, KB/MB/GB of 1000).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let not_a_size =
        || format!("{text:?} is not a size; write it like 1048576, \"512KiB\" or \"64MiB\"");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err(not_a_size()),
    };
    let n: u64 = digits.parse().map_err(|_| not_a_size())?;
    n.checked_mul(multiplier)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(|| format!("{text:?} is too large"))
}

pub fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    match Raw::deserialize(d)? {
        Raw::Str(s) => parse_size(&s).map(Some).map_err(custom),
        other => whole_number(other, "bytes").map(Some).map_err(custom),
    }
}

pub fn attempts<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    whole_number(Raw::deserialize(d)?, "attempts")
        .map(Some)
        .map_err(custom)
}

pub fn port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    let port: u16 = whole_number(Raw::deserialize(d)?, "port").map_err(custom)?;
    if port == 0 {
        return Err(custom("port 0 is not a port; use 1 to 65535".into()));
    }
    Ok(Some(port))
}

pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Raw::deserialize(d)? {
        Raw::Bool(b) => Ok(Some(b)),
        Raw::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Some(true)),
            "false" | "0" | "no" | "off" | "" => Ok(Some(false)),
            _ => Err(custom(format!("{s:?} is not true or false"))),
        },
        other => Err(custom(format!("{} is not true or false", other.describe()))),
    }
}

pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Raw::deserialize(d)? {
        Raw::Str(s) => Ok(Some(s)),
        Raw::Int(i) => Ok(Some(i.to_string())),
        other => Err(custom(format!("{} is not text", other.describe()))),
    }
}

/// A list written as a TOML array or as a comma-separated string.
pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    match Raw::deserialize(d)? {
        Raw::List(items) => Ok(Some(items)),
        Raw::Str(s) => Ok(Some(
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        )),
        other => Err(custom(format!("{} is not a list", other.describe()))),
    }
}

pub fn fields<'de, D: Deserializer<'de>>(d: D) -> Result<Option<FieldSelection>, D::Error> {
    match Raw::deserialize(d)? {
        Raw::Str(s) => FieldSelection::parse(&s).map(Some).map_err(custom),
        Raw::List(items) if items.is_empty() => Ok(Some(FieldSelection::All)),
        Raw::List(items) => FieldSelection::from_names(items.iter().map(String::as_str))
            .map(Some)
            .map_err(custom),
        other => Err(custom(format!(
            "{} is not a field list; use \"\", \"ESSENTIAL\" or a list of names",
            other.describe()
        ))),
    }
}

/// How much the service logs; `silent` turns logging off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Silent,
}

impl LogLevel {
    pub fn parse(text: &str) -> Result<Self, String> {
        Ok(match text.trim().to_ascii_lowercase().as_str() {
            "trace" => LogLevel::Trace,
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" | "warning" => LogLevel::Warn,
            "error" => LogLevel::Error,
            "silent" | "off" => LogLevel::Silent,
            _ => {
                return Err(format!(
                    "{text:?} is not a log level; use trace, debug, info, warn, error or silent"
                ))
            }
        })
    }

    pub fn as_filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Trace => log::LevelFilter::Trace,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Silent => log::LevelFilter::Off,
        }
    }
}

pub fn log_level<'de, D: Deserializer<'de>>(d: D) -> Result<Option<LogLevel>, D::Error> {
    match Raw::deserialize(d)? {
        Raw::Str(s) => LogLevel::parse(&s).map(Some).map_err(custom),
        other => Err(custom(format!("{} is not a log level", other.describe()))),
    }
}

/// Which InfluxDB write API to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/write` with basic auth: InfluxDB 1.x.
    V1,
    /// `/api/v2/write` with a token: InfluxDB 2.x, 3.x, and 1.8's
    /// compatibility endpoint.
    V2,
}

pub fn api<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Api>, D::Error> {
    match Raw::deserialize(d)? {
        Raw::Str(s) if s.eq_ignore_ascii_case("v1") => Ok(Some(Api::V1)),
        Raw::Str(s) if s.eq_ignore_ascii_case("v2") => Ok(Some(Api::V2)),
        other => Err(custom(format!(
            "{} is not an API; use v1 or v2",
            other.describe()
        ))),
    }
}

/// Where a container's samples come from (`stats.sampling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sampling {
    /// The engine's stats stream: about one sample a second.
    #[default]
    Stream,
    /// The container's cgroup files, read every `stats.interval`.
    Cgroup,
}

pub fn sampling<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Sampling>, D::Error> {
    match Raw::deserialize(d)? {
        Raw::Str(s) if s.eq_ignore_ascii_case("stream") => Ok(Some(Sampling::Stream)),
        Raw::Str(s) if s.eq_ignore_ascii_case("cgroup") => Ok(Some(Sampling::Cgroup)),
        other => Err(custom(format!(
            "{} is not a sampling source; use stream or cgroup",
            other.describe()
        ))),
    }
}

/// The scheme used to reach InfluxDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Https,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https => "https",
        }
    }
}

pub fn protocol<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Protocol>, D::Error> {
    match Raw::deserialize(d)? {
        Raw::Str(s) if s.eq_ignore_ascii_case("http") => Ok(Some(Protocol::Http)),
        Raw::Str(s) if s.eq_ignore_ascii_case("https") => Ok(Some(Protocol::Https)),
        other => Err(custom(format!(
            "{} is not a protocol; use http or https",
            other.describe()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_humans_write_them() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10000").unwrap(), Duration::from_secs(10));
        assert!(parse_duration("-1s").unwrap_err().contains("negative"));
        assert!(parse_duration("soon")
            .unwrap_err()
            .contains("not a duration"));
    }

    #[test]
    fn sizes_take_binary_and_decimal_units() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("512 KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("2kb").unwrap(), 2000);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("-1").unwrap_err().contains("not a size"));
        assert!(parse_size("lots").unwrap_err().contains("not a size"));
    }

    #[test]
    fn log_levels_include_silent() {
        assert_eq!(
            LogLevel::parse("SILENT").unwrap().as_filter(),
            log::LevelFilter::Off
        );
        assert!(LogLevel::parse("loud").is_err());
    }
}
