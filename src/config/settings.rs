//! The table of every setting: its key in the TOML file, the environment
//! variable that overrides it, and its default as users read it.
//!
//! This table is the single place that ties file keys to variable names; the
//! loader, the error messages and the README's configuration reference all
//! follow it.

pub struct Setting {
    /// Dotted path in the TOML file, e.g. `batch.size`.
    pub key: &'static str,
    /// Environment variable that overrides the file.
    pub env: &'static str,
    /// Whether the value must never be printed.
    pub secret: bool,
}

const fn setting(key: &'static str, env: &'static str) -> Setting {
    Setting {
        key,
        env,
        secret: false,
    }
}

pub const SETTINGS: &[Setting] = &[
    setting("log_level", "LOG_LEVEL"),
    setting("shutdown_timeout", "SHUTDOWN_TIMEOUT_MS"),
    setting("max_buffer_bytes", "MAX_BUFFER_BYTES"),
    setting("spool_dir", "SPOOL_DIR"),
    setting("docker.in_container", "DOCKER"),
    setting("docker.socket_path", "DOCKER_SOCKET_PATH"),
    setting("docker.stats_buffer_size", "STATS_BUFFER_SIZE"),
    setting("docker.stats_line_size", "STATS_LINE_SIZE"),
    setting("docker.stats_parse_timeout", "STATS_PARSE_TIMEOUT"),
    setting("docker.stats_read_interval", "STATS_READ_INTERVAL"),
    setting("docker.reconcile_interval", "RECONCILE_INTERVAL"),
    setting("influxdb.api", "INFLUXDB_API"),
    setting("influxdb.protocol", "INFLUXDB_PROTOCOL"),
    setting("influxdb.ca_file", "INFLUXDB_CA_FILE"),
    setting("influxdb.host", "INFLUXDB_HOST"),
    setting("influxdb.port", "INFLUXDB_PORT"),
    setting("influxdb.user", "INFLUXDB_USER"),
    Setting {
        key: "influxdb.password",
        env: "INFLUXDB_PASS",
        secret: true,
    },
    setting("influxdb.password_file", "INFLUXDB_PASS_FILE"),
    Setting {
        key: "influxdb.token",
        env: "INFLUXDB_TOKEN",
        secret: true,
    },
    setting("influxdb.token_file", "INFLUXDB_TOKEN_FILE"),
    setting("influxdb.org", "INFLUXDB_ORG"),
    setting("influxdb.bucket", "INFLUXDB_BUCKET"),
    setting("influxdb.database", "INFLUXDB_DB"),
    setting("influxdb.retry_max", "INFLUXDB_RETRY_MAX"),
    setting("influxdb.retry_delay", "INFLUXDB_RETRY_DELAY"),
    setting("influxdb.retry_max_delay", "INFLUXDB_RETRY_MAX_DELAY"),
    setting("batch.size", "BATCH_SIZE"),
    setting("batch.wait", "BATCH_WAIT_MS"),
    setting("stats.fields", "STATS_FIELDS"),
    setting("stats.label_tags", "STATS_LABEL_TAGS"),
    setting("stats.sampling", "STATS_SAMPLING"),
    setting("stats.interval", "STATS_INTERVAL"),
    setting("stats.cgroup_root", "CGROUP_ROOT"),
    setting("stats.proc_root", "PROC_ROOT"),
    setting("health.listen", "HEALTH_LISTEN"),
];

pub fn by_key(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}
