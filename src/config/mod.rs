//! Configuration: defaults < TOML file < environment variables < flags,
//! parsed once into typed, validated structs. Nothing else in the service
//! reads the environment.

mod describe;
mod error;
pub mod settings;
pub mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use describe::describe;
pub use error::ConfigError;
pub use settings::MIN_INTERVAL;
pub use values::{Api, LogLevel, Protocol, Sampling};

use crate::engine::discovery;
use crate::schema::fields::FieldSelection;
use crate::schema::tags::LabelTag;

/// A password or token: never printed by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub log_level: LogLevel,
    /// How long a SIGTERM may take to flush what was collected.
    pub shutdown_timeout: Duration,
    /// The most bytes of encoded points kept in memory while InfluxDB does
    /// not take them; past it the oldest are dropped.
    pub max_buffer_bytes: usize,
    /// Where points undelivered at shutdown are saved for the next start.
    pub spool_dir: Option<PathBuf>,
    /// The durable disk buffer, when `buffer.dir` is set.
    pub disk_buffer: Option<DiskBufferConfig>,
    pub docker: DockerConfig,
    pub influxdb: InfluxConfig,
    pub batch: BatchConfig,
    pub stats: StatsConfig,
    /// Where `/health` and `/metrics` are served; `None` turns them off.
    pub health_listen: Option<String>,
    /// Where each setting's value came from (`default`, the file, a variable).
    pub origins: BTreeMap<&'static str, String>,
}

#[derive(Debug, Clone)]
pub struct DockerConfig {
    pub socket_path: String,
    /// `DOCKER_HOST` names an engine the service cannot reach (and no socket
    /// is configured): an error for the commands that connect to one
    /// (`Config::engine_error`), nothing to those that do not.
    pub unsupported_host: Option<discovery::UnsupportedHost>,
    /// `DOCKER=true`: the service runs in a container, so InfluxDB defaults
    /// to `host.docker.internal` instead of `localhost`.
    pub in_container: bool,
    pub stats_buffer_size: usize,
    pub stats_line_size: usize,
    pub stats_parse_timeout: Duration,
    /// Stats streams are read on this beat (`engine::paced_io`).
    pub stats_read_interval: Duration,
    /// How often the registry is compared with the running containers, on
    /// top of the comparison after every event stream (re)connection.
    pub reconcile_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct InfluxConfig {
    pub api: Api,
    pub protocol: Protocol,
    /// PEM certificates trusted for https besides the system's roots (a
    /// private CA); verification is never turned off.
    pub ca_file: Option<PathBuf>,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    pub database: String,
    /// v2 API: token, organization and bucket.
    pub token: Secret,
    pub org: String,
    pub bucket: String,
    pub retry_max: u32,
    pub retry_delay: Duration,
    pub retry_max_delay: Duration,
}

impl Config {
    /// Why the engine cannot be reached as configured, for the commands
    /// that connect to it (`run`, `record`, `check-config`).
    pub fn engine_error(&self) -> Option<ConfigError> {
        self.docker
            .unsupported_host
            .as_ref()
            .map(|unsupported| ConfigError::Env {
                var: "DOCKER_HOST",
                key: "docker.socket_path",
                message: unsupported.to_string(),
            })
    }

    /// Where a setting's value came from, for messages.
    pub fn origin(&self, key: &str) -> String {
        self.origins
            .get(key)
            .cloned()
            .unwrap_or_else(|| "default".into())
    }
}

impl InfluxConfig {
    pub fn base_url(&self) -> String {
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{}://{}:{}", self.protocol.as_str(), host, self.port)
    }
}

/// The smallest `buffer.max_disk_bytes`: sixteen of the disk buffer's
/// smallest segments.
pub const MIN_DISK_BUFFER_BYTES: u64 = 256 * 1024;

/// The write-ahead log every collected point goes through before it is
/// sent (`writer::disk_log`).
#[derive(Debug, Clone)]
pub struct DiskBufferConfig {
    pub dir: PathBuf,
    /// The most bytes the log takes on disk; past it the oldest are dropped.
    pub max_bytes: u64,
    /// How often appends are written and synced: what a crash may lose.
    pub fsync_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct BatchConfig {
    pub size: usize,
    pub wait: Duration,
}

#[derive(Debug, Clone)]
pub struct StatsConfig {
    pub fields: FieldSelection,
    /// Container labels copied into tags.
    pub label_tags: Vec<LabelTag>,
    pub sampling: Sampling,
    /// How often the cgroup source samples (a container's
    /// `docker-stats.interval` label overrides it).
    pub interval: Duration,
    /// Where the host's cgroup hierarchy is mounted.
    pub cgroup_root: PathBuf,
    /// Where the host's `/proc` is mounted (network counters, host memory).
    pub proc_root: PathBuf,
}

/// One source's view of the settings: every value optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layer {
    #[serde(default, deserialize_with = "values::log_level")]
    log_level: Option<LogLevel>,
    #[serde(default, deserialize_with = "values::duration")]
    shutdown_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "values::bytes")]
    max_buffer_bytes: Option<usize>,
    #[serde(default, deserialize_with = "values::text")]
    spool_dir: Option<String>,
    #[serde(default)]
    docker: DockerLayer,
    #[serde(default)]
    influxdb: InfluxLayer,
    #[serde(default)]
    batch: BatchLayer,
    #[serde(default)]
    buffer: BufferLayer,
    #[serde(default)]
    stats: StatsLayer,
    #[serde(default)]
    health: HealthLayer,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthLayer {
    #[serde(default, deserialize_with = "values::text")]
    listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DockerLayer {
    #[serde(default, deserialize_with = "values::boolean")]
    in_container: Option<bool>,
    #[serde(default, deserialize_with = "values::text")]
    socket_path: Option<String>,
    #[serde(default, deserialize_with = "values::bytes")]
    stats_buffer_size: Option<usize>,
    #[serde(default, deserialize_with = "values::bytes")]
    stats_line_size: Option<usize>,
    #[serde(default, deserialize_with = "values::duration")]
    stats_parse_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "values::duration")]
    stats_read_interval: Option<Duration>,
    #[serde(default, deserialize_with = "values::duration")]
    reconcile_interval: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct InfluxLayer {
    #[serde(default, deserialize_with = "values::api")]
    api: Option<Api>,
    #[serde(default, deserialize_with = "values::protocol")]
    protocol: Option<Protocol>,
    #[serde(default, deserialize_with = "values::text")]
    ca_file: Option<String>,
    #[serde(default, deserialize_with = "values::text")]
    host: Option<String>,
    #[serde(default, deserialize_with = "values::port")]
    port: Option<u16>,
    #[serde(default, deserialize_with = "values::text")]
    user: Option<String>,
    #[serde(default, deserialize_with = "values::text")]
    password: Option<String>,
    #[serde(default, deserialize_with = "values::text")]
    password_file: Option<String>,
    #[serde(default, deserialize_with = "values::text")]
    database: Option<String>,
    #[serde(default, deserialize_with = "values::text")]
    token: Option<String>,
    #[serde(default, deserialize_with = "values::text")]
    token_file: Option<String>,
    #[serde(default, deserialize_with = "values::text")]
    org: Option<String>,
    #[serde(default, deserialize_with = "values::text")]
    bucket: Option<String>,
    #[serde(default, deserialize_with = "values::attempts")]
    retry_max: Option<u32>,
    #[serde(default, deserialize_with = "values::duration")]
    retry_delay: Option<Duration>,
    #[serde(default, deserialize_with = "values::duration")]
    retry_max_delay: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BufferLayer {
    #[serde(default, deserialize_with = "values::text")]
    dir: Option<String>,
    #[serde(default, deserialize_with = "values::bytes")]
    max_disk_bytes: Option<usize>,
    #[serde(default, deserialize_with = "values::duration")]
    fsync_interval: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchLayer {
    #[serde(default, deserialize_with = "values::count")]
    size: Option<usize>,
    #[serde(default, deserialize_with = "values::duration")]
    wait: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsLayer {
    #[serde(default, deserialize_with = "values::fields")]
    fields: Option<FieldSelection>,
    #[serde(default, deserialize_with = "values::list")]
    label_tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "values::sampling")]
    sampling: Option<Sampling>,
    #[serde(default, deserialize_with = "values::duration")]
    interval: Option<Duration>,
    #[serde(default, deserialize_with = "values::text")]
    cgroup_root: Option<String>,
    #[serde(default, deserialize_with = "values::text")]
    proc_root: Option<String>,
}

/// What the command line says about configuration.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    /// `--set key=value` pairs, in order, with the flag text for errors.
    pub set: Vec<(String, String)>,
}

/// Names the first setting whose environment variable is set but not valid
/// UTF-8 (read with `std::env::var`, it would look unset and its default
/// would silently apply). The value is never shown.
pub fn check_environment_encoding(
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<(), ConfigError> {
    let names = settings::SETTINGS
        .iter()
        .map(|s| (s.env, s.key))
        .chain([("DOCKER_STATS_CONFIG", "--config")]);
    for (var, key) in names {
        if env(var).is_some_and(|value| value.to_str().is_none()) {
            return Err(ConfigError::Env {
                var,
                key,
                message: "is not valid UTF-8 (value not shown)".into(),
            });
        }
    }
    Ok(())
}

/// Loads the configuration from the file named in `overrides`, the given
/// environment (a lookup, so tests need not touch the process environment)
/// and the command-line overrides.
pub fn load(
    overrides: &Overrides,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut merged = settings::defaults_table();
    let mut origins: BTreeMap<&'static str, String> = BTreeMap::new();

    // `--config` names the file; without it, DOCKER_STATS_CONFIG may (the
    // container image sets it, so `run` and `healthcheck` read the same file).
    let config_file = overrides.config_file.clone().or_else(|| {
        env("DOCKER_STATS_CONFIG")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    });
    if let Some(path) = &config_file {
        let table = read_file_layer(path)?;
        for setting in settings::SETTINGS {
            if lookup(&table, setting.key).is_some() {
                origins.insert(setting.key, format!("file {}", path.display()));
            }
        }
        overlay(&mut merged, table);
    }

    for setting in settings::SETTINGS {
        if let Some(value) = env(setting.env) {
            let table = single_value_table(setting.key, value);
            validate_layer(&table).map_err(|message| ConfigError::Env {
                var: setting.env,
                key: setting.key,
                message: if setting.secret {
                    "invalid value".into()
                } else {
                    message
                },
            })?;
            origins.insert(setting.key, format!("environment variable {}", setting.env));
            overlay(&mut merged, table);
        }
    }

    for (key, value) in &overrides.set {
        let flag = format!("--set {key}=...");
        let setting = settings::by_key(key).ok_or_else(|| ConfigError::Flag {
            flag: flag.clone(),
            message: format!(
                "`{key}` is not a setting; see the configuration reference in docs/configuration.md"
            ),
        })?;
        let table = single_value_table(setting.key, value.clone());
        validate_layer(&table).map_err(|message| ConfigError::Flag {
            flag: flag.clone(),
            message,
        })?;
        origins.insert(setting.key, format!("flag --set {key}"));
        overlay(&mut merged, table);
    }

    let layer: Layer = toml::Value::Table(merged)
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Invalid {
            key: "?",
            origin: "merged settings".into(),
            message: e.message().to_string(),
        })?;
    for setting in settings::SETTINGS {
        origins
            .entry(setting.key)
            .or_insert_with(|| "default".into());
    }
    let mut config = finish(layer, origins)?;
    // No socket configured: found as the docker CLI and the rootless
    // engines place it (engine::discovery).
    if config.origin("docker.socket_path") == "default" {
        match discovery::discover(&config.docker.socket_path, &env, discovery::usable) {
            Ok(Some(found)) => {
                config.docker.socket_path = found.path;
                config.origins.insert("docker.socket_path", found.how);
            }
            Ok(None) => {}
            Err(unsupported) => config.docker.unsupported_host = Some(unsupported),
        }
    }
    Ok(config)
}

fn read_file_layer(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::ReadFile {
        path: path.to_path_buf(),
        error,
    })?;
    let file_error = |error: toml::de::Error| ConfigError::File {
        path: path.to_path_buf(),
        message: describe_file_error(&text, &error),
    };
    // Deserializing the text itself (not a parsed table) keeps the place
    // of every error, including unknown keys and bad values.
    toml::from_str::<Layer>(&text).map_err(file_error)?;
    toml::from_str::<toml::Table>(&text).map_err(file_error)
}

/// Where a file error is (line, column, key) and what it is, without the
/// line's text: the parser quotes it, and it may hold a password or token.
/// For a secret key the parser's message is left out too, as it may
/// describe the value.
fn describe_file_error(text: &str, error: &toml::de::Error) -> String {
    let Some(span) = error.span() else {
        return error.message().trim_end().to_string();
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let key = key_at_line(text, line);
    let secret = key
        .as_deref()
        .is_some_and(|k| settings::by_key(k).is_some_and(|s| s.secret) || looks_secret(k));
    let place = match &key {
        Some(key) => format!("line {line}, column {column}, key `{key}`"),
        None => format!("line {line}, column {column}"),
    };
    if secret {
        format!("{place}: invalid value (not shown: the key holds a secret)")
    } else {
        format!("{place}: {}", error.message().trim_end())
    }
}

/// Whether a key name (maybe misspelt) is likely to hold a secret.
fn looks_secret(key: &str) -> bool {
    let leaf = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    ["pass", "token", "secret"].iter().any(|s| leaf.contains(s)) && !leaf.ends_with("_file")
}

/// The dotted key set on line `number` of a TOML text (`[table]` headers
/// before it give its prefix), when the line is a plain `key = value`.
fn key_at_line(text: &str, number: usize) -> Option<String> {
    let bare = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    let mut table = String::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if index + 1 == number {
            let key = trimmed.split_once('=')?.0.trim();
            if !bare(key) {
                return None;
            }
            return Some(if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            });
        }
        if let Some(header) = trimmed.strip_prefix('[').and_then(|h| h.split_once(']')) {
            table = header.0.trim().to_string();
        }
    }
    None
}

fn validate_layer(table: &toml::Table) -> Result<(), String> {
    toml::Value::Table(table.clone())
        .try_into::<Layer>()
        .map(drop)
        .map_err(|e| e.message().to_string())
}

fn single_value_table(key: &str, value: String) -> toml::Table {
    let mut table = toml::Table::new();
    let mut parts: Vec<&str> = key.split('.').collect();
    let leaf = parts.pop().expect("setting keys are not empty");
    let mut current = &mut table;
    for part in parts {
        current = current
            .entry(part)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .expect("freshly inserted table");
    }
    current.insert(leaf.to_string(), toml::Value::String(value));
    table
}

fn lookup<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    let mut parts = key.split('.');
    let mut value = table.get(parts.next()?)?;
    for part in parts {
        value = value.as_table()?.get(part)?;
    }
    Some(value)
}

/// Deep-merges `upper` over `lower`: tables merge, other values replace.
fn overlay(lower: &mut toml::Table, upper: toml::Table) {
    for (key, value) in upper {
        match (lower.get_mut(&key), value) {
            (Some(toml::Value::Table(low)), toml::Value::Table(up)) => overlay(low, up),
            (_, value) => {
                lower.insert(key, value);
            }
        }
    }
}

/// A host name or address, with nothing of a URL around it: a scheme, port,
/// path or credentials belong elsewhere, and a malformed host would
/// otherwise be retried forever as "unreachable".
fn check_host(host: &str) -> Result<(), String> {
    let hint = "give only a host name or address (the scheme goes in influxdb.protocol, the port in influxdb.port)";
    if host.trim().is_empty() {
        return Err(format!("is empty; {hint}"));
    }
    let unbracketed = host.trim_start_matches('[').trim_end_matches(']');
    if unbracketed.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.len() <= 253 && name.split('.').all(label_ok) {
        return Ok(());
    }
    Err(format!("{host:?} is not a host name or address; {hint}"))
}

/// A CA file must be readable and hold PEM certificates.
fn check_ca_file(path: &Path) -> Result<(), String> {
    let text =
        std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    if !text
        .windows(27)
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(())
}

/// Reads a secret from a file, as Docker secrets provide them; the trailing
/// newline editors add is not part of it. Errors name the file, never the
/// content.
fn read_secret(
    path: &str,
    key: &'static str,
    origins: &BTreeMap<&'static str, String>,
) -> Result<Secret, ConfigError> {
    std::fs::read_to_string(path)
        .map(|text| Secret::new(text.trim_end_matches(['\n', '\r'])))
        .map_err(|error| ConfigError::Invalid {
            key,
            origin: origins
                .get(key)
                .cloned()
                .unwrap_or_else(|| "default".into()),
            message: format!("cannot read the secret file {path}: {error}"),
        })
}

/// `batch.wait` when it is not set (and the disk buffer does not shorten it).
const DEFAULT_BATCH_WAIT: Duration = Duration::from_secs(2);

/// A setting's value after the defaults layer: always there for a setting
/// declared with a default value.
fn declared<T>(value: Option<T>) -> T {
    value.expect("a setting declared with a default value has one after the defaults layer")
}

fn finish(layer: Layer, origins: BTreeMap<&'static str, String>) -> Result<Config, ConfigError> {
    let invalid = |key: &'static str, message: String| ConfigError::Invalid {
        key,
        origin: origins
            .get(key)
            .cloned()
            .unwrap_or_else(|| "default".into()),
        message,
    };
    let in_container = declared(layer.docker.in_container);
    let default_host = if in_container {
        "host.docker.internal"
    } else {
        "localhost"
    };
    let influx = layer.influxdb;
    // The disk buffer's sync thread skips what InfluxDB acknowledged within
    // the interval, so with the buffer on a batch waits no longer than that
    // by default: a steady state then syncs nothing.
    let disk_buffer_dir = layer.buffer.dir.filter(|d| !d.trim().is_empty());
    let batch_wait = layer.batch.wait.unwrap_or_else(|| {
        if disk_buffer_dir.is_some() {
            DEFAULT_BATCH_WAIT.min(declared(layer.buffer.fsync_interval))
        } else {
            DEFAULT_BATCH_WAIT
        }
    });
    let config = Config {
        log_level: declared(layer.log_level),
        shutdown_timeout: declared(layer.shutdown_timeout),
        max_buffer_bytes: declared(layer.max_buffer_bytes),
        spool_dir: layer
            .spool_dir
            .filter(|d| !d.trim().is_empty())
            .map(PathBuf::from),
        disk_buffer: disk_buffer_dir.map(|dir| DiskBufferConfig {
            dir: PathBuf::from(dir),
            max_bytes: declared(layer.buffer.max_disk_bytes) as u64,
            fsync_interval: declared(layer.buffer.fsync_interval),
        }),
        docker: DockerConfig {
            socket_path: declared(layer.docker.socket_path),
            unsupported_host: None,
            in_container,
            stats_buffer_size: declared(layer.docker.stats_buffer_size),
            stats_line_size: declared(layer.docker.stats_line_size),
            stats_parse_timeout: declared(layer.docker.stats_parse_timeout),
            // Reading more often than samples may wait anyway saves no
            // latency; see engine::paced_io.
            stats_read_interval: layer.docker.stats_read_interval.unwrap_or_else(|| {
                batch_wait.clamp(Duration::from_millis(50), Duration::from_secs(1))
            }),
            reconcile_interval: declared(layer.docker.reconcile_interval),
        },
        influxdb: InfluxConfig {
            api: declared(influx.api),
            protocol: declared(influx.protocol),
            ca_file: influx
                .ca_file
                .filter(|f| !f.trim().is_empty())
                .map(PathBuf::from),
            host: influx.host.unwrap_or_else(|| default_host.into()),
            port: declared(influx.port),
            user: declared(influx.user),
            password: match &influx.password_file {
                Some(path) => read_secret(path, "influxdb.password_file", &origins)?,
                None => Secret::new(declared(influx.password)),
            },
            database: declared(influx.database),
            token: match &influx.token_file {
                Some(path) => read_secret(path, "influxdb.token_file", &origins)?,
                None => Secret::new(declared(influx.token)),
            },
            org: declared(influx.org),
            bucket: declared(influx.bucket),
            retry_max: declared(influx.retry_max),
            retry_delay: declared(influx.retry_delay),
            retry_max_delay: declared(influx.retry_max_delay),
        },
        batch: BatchConfig {
            size: declared(layer.batch.size),
            wait: batch_wait,
        },
        stats: StatsConfig {
            fields: declared(layer.stats.fields),
            label_tags: Vec::new(),
            sampling: declared(layer.stats.sampling),
            interval: declared(layer.stats.interval),
            cgroup_root: declared(layer.stats.cgroup_root).into(),
            proc_root: declared(layer.stats.proc_root).into(),
        },
        health_listen: Some(declared(layer.health.listen)).filter(|l| !l.trim().is_empty()),
        origins: BTreeMap::new(),
    };

    // The ranges are declared with the settings (`settings::Range`).
    let durations = [
        ("shutdown_timeout", config.shutdown_timeout),
        ("batch.wait", config.batch.wait),
        ("influxdb.retry_delay", config.influxdb.retry_delay),
        ("influxdb.retry_max_delay", config.influxdb.retry_max_delay),
        (
            "docker.stats_parse_timeout",
            config.docker.stats_parse_timeout,
        ),
        (
            "docker.stats_read_interval",
            config.docker.stats_read_interval,
        ),
        (
            "docker.reconcile_interval",
            config.docker.reconcile_interval,
        ),
        ("stats.interval", config.stats.interval),
    ];
    for (key, value) in durations {
        settings::named(key)
            .check_duration(value)
            .map_err(|message| invalid(key, message))?;
    }
    settings::named("influxdb.retry_max")
        .check_count(u64::from(config.influxdb.retry_max), "attempts")
        .map_err(|message| invalid("influxdb.retry_max", message))?;
    settings::named("batch.size")
        .check_count(config.batch.size as u64, "point")
        .map_err(|message| invalid("batch.size", message))?;
    if config.influxdb.retry_max_delay < config.influxdb.retry_delay {
        return Err(invalid(
            "influxdb.retry_max_delay",
            format!(
                "{} is shorter than influxdb.retry_delay ({}); the cap must be at least the first delay",
                humantime::format_duration(config.influxdb.retry_max_delay),
                humantime::format_duration(config.influxdb.retry_delay)
            ),
        ));
    }
    check_host(&config.influxdb.host).map_err(|message| invalid("influxdb.host", message))?;
    if let Some(path) = &config.influxdb.ca_file {
        check_ca_file(path).map_err(|message| invalid("influxdb.ca_file", message))?;
    }
    if config.influxdb.api == Api::V2 && config.influxdb.org.trim().is_empty() {
        return Err(invalid(
            "influxdb.org",
            "is required with the v2 API (INFLUXDB_ORG; InfluxDB 1.8 and 3 accept any value, e.g. -)".into(),
        ));
    }
    if config.influxdb.api == Api::V2 && config.influxdb.bucket.trim().is_empty() {
        return Err(invalid("influxdb.bucket", "is empty".into()));
    }
    if let Some(listen) = &config.health_listen {
        if listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "health.listen",
                format!("{listen:?} is not an address and port like 127.0.0.1:9466 (empty turns the endpoint off)"),
            ));
        }
    }
    if config.influxdb.database.trim().is_empty() {
        return Err(invalid("influxdb.database", "is empty".into()));
    }
    if config.docker.stats_line_size == 0
        || config.docker.stats_buffer_size < config.docker.stats_line_size
    {
        return Err(invalid(
            "docker.stats_buffer_size",
            format!(
                "{} bytes cannot hold one stats line of up to {} bytes (docker.stats_line_size)",
                config.docker.stats_buffer_size, config.docker.stats_line_size
            ),
        ));
    }
    if config.max_buffer_bytes < 1024 {
        return Err(invalid(
            "max_buffer_bytes",
            format!(
                "{} bytes cannot hold even one point with every field; use at least 1KiB",
                config.max_buffer_bytes
            ),
        ));
    }
    if let Some(disk) = &config.disk_buffer {
        if config.spool_dir.is_some() {
            return Err(invalid(
                "spool_dir",
                "is for the memory buffer; with buffer.dir set the disk buffer keeps undelivered points across restarts itself: unset one of them".into(),
            ));
        }
        let min = MIN_DISK_BUFFER_BYTES;
        if disk.max_bytes < min {
            return Err(invalid(
                "buffer.max_disk_bytes",
                format!(
                    "{} bytes is too small for the disk buffer; use at least {}KiB",
                    disk.max_bytes,
                    min / 1024
                ),
            ));
        }
    }
    let read_interval = config.docker.stats_read_interval;
    if read_interval.is_zero() || read_interval >= config.docker.stats_parse_timeout {
        return Err(invalid(
            "docker.stats_read_interval",
            format!(
                "must be longer than zero and shorter than docker.stats_parse_timeout ({})",
                humantime::format_duration(config.docker.stats_parse_timeout)
            ),
        ));
    }
    let label_tags = layer
        .stats
        .label_tags
        .unwrap_or_default()
        .iter()
        .map(|spec| LabelTag::parse(spec))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|message| invalid("stats.label_tags", message))?;
    let stats = StatsConfig {
        label_tags,
        ..config.stats
    };
    Ok(Config {
        origins,
        stats,
        ..config
    })
}
