//! Every setting, declared once: its key in the TOML file, the environment
//! variable that overrides it, its default, its accepted range, whether it
//! is a secret, one line for the reader, and how `check-config` shows it.
//!
//! Everything else follows from this table: the loader takes its defaults
//! (the lowest layer) and ranges from it, error messages name its keys and
//! variables, `check-config` is its `show`s in order, and docs/configuration.md's
//! configuration table is [`reference_table`]. The typed parse of each value
//! is the loader's `Layer` field (deserializing the file into it is what
//! gives line, column and key for errors); `tests/config_loading.rs` fails
//! when docs/configuration.md, `config/docker-stats.toml` or the `Layer` keys disagree
//! with this table.

use std::time::Duration;

use super::describe::{
    duration, label_tags, lowercase, masked, optional_path, quoted, READ_INTO_SECRET,
};
use super::Config;

pub struct Setting {
    /// Dotted path in the TOML file, e.g. `batch.size`.
    pub key: &'static str,
    /// Environment variable that overrides the file.
    pub env: &'static str,
    pub default: DefaultValue,
    pub range: Option<Range>,
    /// Whether the value must never be printed.
    pub secret: bool,
    /// What it does, as docs/configuration.md's table says it.
    pub doc: &'static str,
    /// Its effective value as `check-config` shows it, written as in the
    /// file (secrets masked).
    pub show: fn(&Config) -> String,
}

/// What a setting is when nothing sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// A value written as in the TOML file (`"10s"`, `100`, `false`, `[]`),
    /// parsed by the loader like any other value.
    Value(&'static str),
    /// Worked out from other settings; the text says how.
    Computed(&'static str),
    /// Not set: what it configures is off.
    Unset,
}

/// The values a setting accepts, beyond its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// Below `min` a loop would spin or a step be skipped; above `max`
    /// deadlines overflow or nothing happens in a lifetime.
    Duration {
        min: Duration,
        max: Duration,
    },
    Count {
        min: u64,
        max: u64,
    },
}

impl Setting {
    /// Whether `value` is in the setting's range; the error says the range.
    pub fn check_duration(&self, value: Duration) -> Result<(), String> {
        match self.range {
            Some(Range::Duration { min, max }) if value < min || value > max => Err(format!(
                "{} is outside the accepted range, {} to {}",
                humantime::format_duration(value),
                humantime::format_duration(min),
                humantime::format_duration(max)
            )),
            _ => Ok(()),
        }
    }

    /// Whether `value` is in the setting's range; the error says the range.
    pub fn check_count(&self, value: u64, unit: &str) -> Result<(), String> {
        match self.range {
            Some(Range::Count { min, max: u64::MAX }) if value < min => {
                Err(format!("must be at least {min} {unit}"))
            }
            Some(Range::Count { min, max }) if value < min || value > max => Err(format!(
                "{value} is outside the accepted range, {min} to {max} {unit}"
            )),
            _ => Ok(()),
        }
    }
}

const HOUR: Duration = Duration::from_secs(3600);

/// The shortest cgroup sampling interval, also for the per-container label:
/// below it, timer granularity and the cost of reading the files dominate.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

const fn duration_range(min_ms: u64, max: Duration) -> Option<Range> {
    Some(Range::Duration {
        min: Duration::from_millis(min_ms),
        max,
    })
}

/// A setting with a range.
const fn ranged(
    key: &'static str,
    env: &'static str,
    default: DefaultValue,
    range: Option<Range>,
    doc: &'static str,
    show: fn(&Config) -> String,
) -> Setting {
    Setting {
        key,
        env,
        default,
        range,
        secret: false,
        doc,
        show,
    }
}

/// A setting any value of its type may take.
const fn plain(
    key: &'static str,
    env: &'static str,
    default: DefaultValue,
    doc: &'static str,
    show: fn(&Config) -> String,
) -> Setting {
    ranged(key, env, default, None, doc, show)
}

/// A setting whose value is never printed.
const fn secret(
    key: &'static str,
    env: &'static str,
    default: DefaultValue,
    doc: &'static str,
    show: fn(&Config) -> String,
) -> Setting {
    Setting {
        secret: true,
        ..plain(key, env, default, doc, show)
    }
}

use self::DefaultValue::{Computed, Unset, Value};

#[rustfmt::skip]
pub const SETTINGS: &[Setting] = &[
    plain("log_level", "LOG_LEVEL", Value(r#""info""#),
        "`trace`, `debug`, `info`, `warn`, `error` or `silent`",
        |c| lowercase(&c.log_level)),
    ranged("shutdown_timeout", "SHUTDOWN_TIMEOUT_MS", Value(r#""10s""#), duration_range(100, HOUR),
        "how long SIGTERM may take to flush collected points",
        |c| duration(c.shutdown_timeout)),
    plain("max_buffer_bytes", "MAX_BUFFER_BYTES", Value(r#""64MiB""#),
        "most bytes of memory held by points waiting for InfluxDB: each point's text plus its bookkeeping (a number, or `\"16KiB\"`, `\"64MiB\"`, ...); at least `1KiB`",
        |c| c.max_buffer_bytes.to_string()),
    plain("spool_dir", "SPOOL_DIR", Unset,
        "where points still undelivered at the shutdown timeout are saved, to be delivered at the next start; must be writable by the service's user",
        |c| optional_path(c.spool_dir.as_deref(), "(off)")),
    plain("buffer.dir", "BUFFER_DIR", Unset,
        "turns on the disk buffer: every point is written to a log in this directory before it is sent, and delivered from it after a crash, a restart or an outage of any length; must be writable by the service's user",
        |c| optional_path(c.disk_buffer.as_ref().map(|d| d.dir.as_path()), "(off: points wait in memory)")),
    plain("buffer.max_disk_bytes", "BUFFER_MAX_DISK_BYTES", Value(r#""1GiB""#),
        "most bytes the disk buffer's log takes; when full (or the disk is), the oldest points are dropped and counted; at least `256KiB`",
        |c| c.disk_buffer.as_ref().map_or("(disk buffer off)".into(), |d| d.max_bytes.to_string())),
    ranged("buffer.fsync_interval", "BUFFER_FSYNC_INTERVAL", Value(r#""1s""#), duration_range(10, HOUR),
        "how often the disk buffer's appends are written, and synced unless InfluxDB acknowledged them first: the most a crash of the service can lose",
        |c| c.disk_buffer.as_ref().map_or("(disk buffer off)".into(), |d| duration(d.fsync_interval))),
    plain("docker.in_container", "DOCKER", Value("false"),
        "running in a container: InfluxDB host defaults to `host.docker.internal`",
        |c| c.docker.in_container.to_string()),
    plain("docker.socket_path", "DOCKER_SOCKET_PATH", Value(r#""/var/run/docker.sock""#),
        "the engine's Unix socket; unset, it is found: `DOCKER_HOST` (`unix://` only; another scheme is a configuration error), else this path if this user may use it, else rootless Docker's `$XDG_RUNTIME_DIR/docker.sock`, else Podman's `$XDG_RUNTIME_DIR/podman/podman.sock` (`XDG_RUNTIME_DIR` unset: `/run/user/<uid>`), else this path",
        |c| quoted(&c.docker.socket_path)),
    plain("docker.stats_buffer_size", "STATS_BUFFER_SIZE", Value("1048576"),
        "most bytes a stats stream holds between reads; at least `STATS_LINE_SIZE`",
        |c| c.docker.stats_buffer_size.to_string()),
    plain("docker.stats_line_size", "STATS_LINE_SIZE", Value("102400"),
        "longest stats frame accepted; longer ones are skipped and counted",
        |c| c.docker.stats_line_size.to_string()),
    ranged("docker.stats_parse_timeout", "STATS_PARSE_TIMEOUT", Value(r#""30s""#), duration_range(100, HOUR),
        "a stats stream silent this long is restarted",
        |c| duration(c.docker.stats_parse_timeout)),
    ranged("docker.stats_read_interval", "STATS_READ_INTERVAL",
        Computed("`batch.wait`, between `50ms` and `1s`"), duration_range(1, HOUR),
        "stats streams are read together once per this interval (the read beat) instead of waking once per sample (less CPU); samples wait in the socket meanwhile, nothing is lost; shorter than `STATS_PARSE_TIMEOUT`",
        |c| duration(c.docker.stats_read_interval)),
    ranged("docker.reconcile_interval", "RECONCILE_INTERVAL", Value(r#""30s""#), duration_range(100, Duration::from_secs(24 * 3600)),
        "how often the followed containers are compared with the running ones",
        |c| duration(c.docker.reconcile_interval)),
    plain("influxdb.api", "INFLUXDB_API", Value(r#""v1""#),
        "`v1` (`/write`, user and password) or `v2` (`/api/v2/write`, token)",
        |c| lowercase(&c.influxdb.api)),
    plain("influxdb.protocol", "INFLUXDB_PROTOCOL", Value(r#""http""#), "`http` or `https`",
        |c| quoted(c.influxdb.protocol.as_str())),
    plain("influxdb.ca_file", "INFLUXDB_CA_FILE", Unset,
        "PEM certificates to trust for `https` besides the system's roots (a private CA); certificates are always verified",
        |c| optional_path(c.influxdb.ca_file.as_deref(), "(system roots only)")),
    plain("influxdb.host", "INFLUXDB_HOST",
        Computed("`localhost` (`host.docker.internal` with `DOCKER=true`)"),
        "InfluxDB host name or address alone (no scheme, port or path)",
        |c| quoted(&c.influxdb.host)),
    plain("influxdb.port", "INFLUXDB_PORT", Value("8086"), "InfluxDB port",
        |c| c.influxdb.port.to_string()),
    plain("influxdb.user", "INFLUXDB_USER", Value(r#""admin""#), "user for basic auth (empty: no auth)",
        |c| quoted(&c.influxdb.user)),
    secret("influxdb.password", "INFLUXDB_PASS", Value(r#""admin""#), "password; never logged",
        |c| masked(&c.influxdb.password)),
    plain("influxdb.password_file", "INFLUXDB_PASS_FILE", Unset,
        "read the password from this file (a Docker secret); wins over the password",
        |_| READ_INTO_SECRET.into()),
    secret("influxdb.token", "INFLUXDB_TOKEN", Value(r#""""#), "v2 API token; never logged",
        |c| masked(&c.influxdb.token)),
    plain("influxdb.token_file", "INFLUXDB_TOKEN_FILE", Unset,
        "read the token from this file; wins over the token",
        |_| READ_INTO_SECRET.into()),
    plain("influxdb.org", "INFLUXDB_ORG", Value(r#""""#), "v2 organization (required with `v2`)",
        |c| quoted(&c.influxdb.org)),
    plain("influxdb.bucket", "INFLUXDB_BUCKET", Value(r#""docker-stats""#), "v2 bucket (must exist)",
        |c| quoted(&c.influxdb.bucket)),
    plain("influxdb.database", "INFLUXDB_DB", Value(r#""docker-stats""#),
        "v1 database, created at start-up if missing",
        |c| quoted(&c.influxdb.database)),
    ranged("influxdb.retry_max", "INFLUXDB_RETRY_MAX", Value("5"), Some(Range::Count { min: 0, max: 100 }),
        "attempts on the backoff schedule; after them every retry waits the cap",
        |c| c.influxdb.retry_max.to_string()),
    ranged("influxdb.retry_delay", "INFLUXDB_RETRY_DELAY", Value(r#""1s""#), duration_range(10, HOUR),
        "first wait after a failed write, doubled per failure, with full jitter",
        |c| duration(c.influxdb.retry_delay)),
    ranged("influxdb.retry_max_delay", "INFLUXDB_RETRY_MAX_DELAY", Value(r#""10s""#), duration_range(10, HOUR),
        "longest wait between attempts; at least `INFLUXDB_RETRY_DELAY`",
        |c| duration(c.influxdb.retry_max_delay)),
    ranged("batch.size", "BATCH_SIZE", Value("100"), Some(Range::Count { min: 1, max: u64::MAX }),
        "points per write request",
        |c| c.batch.size.to_string()),
    ranged("batch.wait", "BATCH_WAIT_MS",
        Computed("`2s`; with the disk buffer, `buffer.fsync_interval` when shorter"), duration_range(1, HOUR),
        "longest a point waits, from the time its sample was taken, before its batch is sent; with the disk buffer, no longer than `buffer.fsync_interval` means what InfluxDB keeps up with is never synced to disk",
        |c| duration(c.batch.wait)),
    plain("stats.fields", "STATS_FIELDS", Value(r#""""#),
        "`\"\"` (every field), `ESSENTIAL`, or a list of field names (comma-separated, or a TOML array)",
        |c| quoted(&c.stats.fields.to_string())),
    plain("stats.label_tags", "STATS_LABEL_TAGS", Value("[]"),
        "container labels copied into tags: `label` or `label=tag_name`",
        |c| label_tags(&c.stats.label_tags)),
    plain("stats.sampling", "STATS_SAMPLING", Value(r#""stream""#),
        "`stream` (the engine's stats stream, ~1 sample/s) or `cgroup` (the container's cgroup files every `stats.interval`)",
        |c| lowercase(&c.stats.sampling)),
    ranged("stats.interval", "STATS_INTERVAL", Value(r#""100ms""#), Some(Range::Duration { min: MIN_INTERVAL, max: HOUR }),
        "the cgroup source's interval; a container label `docker-stats.interval=50ms` overrides it",
        |c| duration(c.stats.interval)),
    plain("stats.cgroup_root", "CGROUP_ROOT", Value(r#""/sys/fs/cgroup""#),
        "where the host's cgroup hierarchy is mounted",
        |c| quoted(&c.stats.cgroup_root.display().to_string())),
    plain("stats.proc_root", "PROC_ROOT", Value(r#""/proc""#),
        "where the host's `/proc` is mounted (network counters, CPU count)",
        |c| quoted(&c.stats.proc_root.display().to_string())),
    plain("health.listen", "HEALTH_LISTEN", Value(r#""127.0.0.1:9466""#),
        "address of `/health` and `/metrics`; `\"\"` turns them off",
        |c| c.health_listen.as_deref().map_or("\"\" (off)".into(), quoted)),
];

pub fn by_key(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// The setting a key names; for keys the code itself passes.
pub fn named(key: &str) -> &'static Setting {
    by_key(key).unwrap_or_else(|| panic!("`{key}` is not declared in config::settings"))
}

/// The defaults as a TOML table, the lowest layer the loader merges.
pub fn defaults_table() -> toml::Table {
    let mut text = String::new();
    for setting in SETTINGS {
        if let DefaultValue::Value(value) = setting.default {
            // Dotted keys keep one line per setting, tables implied.
            text.push_str(&format!("{} = {value}\n", setting.key));
        }
    }
    text.parse()
        .expect("every declared default is a TOML value")
}

/// The configuration table of docs/configuration.md, rows in declaration order.
pub fn reference_table() -> String {
    let mut out = String::from(
        "| File key | Environment variable | Default | Meaning |\n|---|---|---|---|\n",
    );
    for setting in SETTINGS {
        let default = match setting.default {
            DefaultValue::Value(r#""""#) => "`\"\"`".to_string(),
            DefaultValue::Value(value) => format!("`{}`", value.trim_matches('"')),
            DefaultValue::Computed(how) => how.to_string(),
            DefaultValue::Unset => "none".to_string(),
        };
        let range = match setting.range {
            Some(Range::Duration { min, max }) => format!(
                " ({} to {})",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
            Some(Range::Count { min, max: u64::MAX }) => format!(" (at least {min})"),
            Some(Range::Count { min, max }) => format!(" ({min} to {max})"),
            None => String::new(),
        };
        out.push_str(&format!(
            "| `{}` | `{}` | {default} | {}{range} |\n",
            setting.key, setting.env, setting.doc
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn keys_and_variables_are_unique() {
        for (i, a) in SETTINGS.iter().enumerate() {
            for b in &SETTINGS[i + 1..] {
                assert_ne!(a.key, b.key);
                assert_ne!(a.env, b.env);
            }
        }
    }

    #[test]
    fn a_duration_outside_its_range_is_refused_naming_the_range() {
        let setting = named("stats.interval");
        assert!(setting.check_duration(MS(10)).is_ok());
        assert_eq!(
            setting.check_duration(MS(5)).unwrap_err(),
            "5ms is outside the accepted range, 10ms to 1h"
        );
    }

    #[test]
    fn every_declared_default_parses_as_its_setting() {
        let config = crate::config::load(&Default::default(), |_| None).unwrap();
        assert_eq!(config.batch.size, 100);
        assert_eq!(config.stats.interval, MS(100));
        assert_eq!(config.health_listen.as_deref(), Some("127.0.0.1:9466"));
    }
}
