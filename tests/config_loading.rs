//! Configuration: precedence (defaults < file < environment < flags) and the
//! errors that stop the service before it does any work.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use docker_stats_service::config::{self, Overrides};
use docker_stats_service::schema::fields::FieldSelection;
use support::service::run_to_exit;

fn write_file(contents: &str) -> tempfile_path::TempFile {
    tempfile_path::TempFile::new(contents)
}

/// A file removed when dropped.
mod tempfile_path {
    pub struct TempFile(pub std::path::PathBuf);
    impl TempFile {
        pub fn new(contents: &str) -> Self {
            let dir = crate::support::influx::tempdir("dss-config");
            let path = std::path::Path::new(&dir).join("docker-stats.toml");
            let mut file = std::fs::File::create(&path).unwrap();
            std::io::Write::write_all(&mut file, contents.as_bytes()).unwrap();
            TempFile(path)
        }
        pub fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }
    impl Drop for TempFile {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

fn load(
    file: Option<&str>,
    env: &[(&str, &str)],
    set: &[(&str, &str)],
) -> Result<config::Config, config::ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let overrides = Overrides {
        config_file: file.map(Into::into),
        set: set
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    config::load(&overrides, |name| env.get(name).cloned())
}

#[test]
fn defaults_are_the_original_services() {
    let c = load(None, &[], &[]).unwrap();
    assert_eq!(c.influxdb.base_url(), "http://localhost:8086");
    assert_eq!(
        (c.influxdb.user.as_str(), c.influxdb.password.expose()),
        ("admin", "admin")
    );
    assert_eq!(c.influxdb.database, "docker-stats");
    assert_eq!(c.influxdb.retry_max, 5);
    assert_eq!(c.influxdb.retry_delay, Duration::from_millis(1000));
    assert_eq!(c.influxdb.retry_max_delay, Duration::from_millis(10000));
    assert_eq!(c.shutdown_timeout, Duration::from_millis(10000));
    assert_eq!(
        (c.batch.size, c.batch.wait),
        (100, Duration::from_millis(2000))
    );
    assert_eq!(c.docker.socket_path, "/var/run/docker.sock");
    assert_eq!(c.docker.stats_buffer_size, 1_048_576);
    assert_eq!(c.docker.stats_line_size, 102_400);
    assert_eq!(c.docker.stats_parse_timeout, Duration::from_millis(30000));
    assert_eq!(c.docker.stats_read_interval, Duration::from_secs(1));
    let c = load(None, &[("BATCH_WAIT_MS", "300")], &[]).unwrap();
    assert_eq!(
        c.docker.stats_read_interval,
        Duration::from_millis(300),
        "no beat longer than a sample may wait"
    );
    assert_eq!(c.stats.fields, FieldSelection::All);
    assert_eq!(c.origins["batch.size"], "default");
}

#[test]
fn with_the_disk_buffer_a_batch_waits_no_longer_than_its_sync_interval_unless_told() {
    let buffer = [("BUFFER_DIR", "/tmp/dss-config-buffer")];
    let c = load(None, &buffer, &[]).unwrap();
    assert_eq!(c.batch.wait, Duration::from_secs(1), "the default interval");
    let c = load(None, &[buffer[0], ("BUFFER_FSYNC_INTERVAL", "300")], &[]).unwrap();
    assert_eq!(c.batch.wait, Duration::from_millis(300));
    assert_eq!(c.docker.stats_read_interval, Duration::from_millis(300));
    let c = load(None, &[buffer[0], ("BUFFER_FSYNC_INTERVAL", "5s")], &[]).unwrap();
    assert_eq!(
        c.batch.wait,
        Duration::from_secs(2),
        "never longer than 2 s"
    );
    let c = load(None, &[buffer[0], ("BATCH_WAIT_MS", "3000")], &[]).unwrap();
    assert_eq!(c.batch.wait, Duration::from_secs(3), "a wait set is kept");
}

#[test]
fn docker_true_makes_the_default_host_the_docker_host() {
    let c = load(None, &[("DOCKER", "true")], &[]).unwrap();
    assert_eq!(c.influxdb.host, "host.docker.internal");
    let c = load(
        None,
        &[("DOCKER", "true"), ("INFLUXDB_HOST", "influxdb")],
        &[],
    )
    .unwrap();
    assert_eq!(c.influxdb.host, "influxdb");
}

#[test]
fn file_overrides_defaults_environment_overrides_file_flags_override_environment() {
    let file = write_file(
        r#"
[batch]
size = 10
wait = "500ms"
[influxdb]
database = "from-file"
port = 9999
"#,
    );
    let c = load(
        Some(file.path()),
        &[("BATCH_SIZE", "20"), ("INFLUXDB_DB", "from-env")],
        &[("batch.size", "30")],
    )
    .unwrap();
    assert_eq!(c.batch.size, 30, "flag wins");
    assert_eq!(c.influxdb.database, "from-env", "environment beats file");
    assert_eq!(c.influxdb.port, 9999, "file beats default");
    assert_eq!(c.batch.wait, Duration::from_millis(500));
    assert_eq!(c.origins["batch.size"], "flag --set batch.size");
    assert_eq!(
        c.origins["influxdb.database"],
        "environment variable INFLUXDB_DB"
    );
    assert!(c.origins["influxdb.port"].starts_with("file "));
}

#[test]
fn environment_durations_are_milliseconds_or_humantime() {
    let c = load(
        None,
        &[("BATCH_WAIT_MS", "250"), ("STATS_PARSE_TIMEOUT", "1m")],
        &[],
    )
    .unwrap();
    assert_eq!(c.batch.wait, Duration::from_millis(250));
    assert_eq!(c.docker.stats_parse_timeout, Duration::from_secs(60));
}

#[test]
fn stats_fields_accepts_essential_lists_and_arrays() {
    let c = load(None, &[("STATS_FIELDS", "ESSENTIAL")], &[]).unwrap();
    assert!(c.stats.fields.wants("net_out_bytes") && !c.stats.fields.wants("pids_current"));
    let file =
        write_file("[stats]\nfields = [\"cpu_percent\", \"mem_used\"]\nlabel_tags = [\"team\"]\n");
    let c = load(Some(file.path()), &[], &[]).unwrap();
    assert!(c.stats.fields.wants("mem_used") && !c.stats.fields.wants("mem_total"));
    assert_eq!(c.stats.label_tags[0].label, "team");
    let e = error(None, &[("STATS_LABEL_TAGS", "team,host")]);
    assert!(
        e.contains("stats.label_tags")
            && e.contains("built-in tag `host`")
            && e.contains("STATS_LABEL_TAGS"),
        "{e}"
    );
}

fn error(file: Option<&str>, env: &[(&str, &str)]) -> String {
    load(file, env, &[]).unwrap_err().to_string()
}

#[test]
fn bad_values_name_the_variable_and_the_problem() {
    let e = error(None, &[("BATCH_SIZE", "lots")]);
    assert!(
        e.contains("BATCH_SIZE") && e.contains("\"lots\" is not a whole number"),
        "{e}"
    );
    let e = error(None, &[("SHUTDOWN_TIMEOUT_MS", "-5")]);
    assert!(
        e.contains("SHUTDOWN_TIMEOUT_MS") && e.contains("negative"),
        "{e}"
    );
    let e = error(None, &[("LOG_LEVEL", "loud")]);
    assert!(
        e.contains("LOG_LEVEL") && e.contains("not a log level"),
        "{e}"
    );
    let e = error(None, &[("INFLUXDB_PORT", "70000")]);
    assert!(
        e.contains("INFLUXDB_PORT") && e.contains("too large"),
        "{e}"
    );
    let e = error(None, &[("STATS_FIELDS", "cpu_percent,cpu_precent")]);
    assert!(
        e.contains("STATS_FIELDS") && e.contains("cpu_precent"),
        "{e}"
    );
    let e = error(
        None,
        &[
            ("INFLUXDB_RETRY_DELAY", "5s"),
            ("INFLUXDB_RETRY_MAX_DELAY", "1s"),
        ],
    );
    assert!(
        e.contains("influxdb.retry_max_delay") && e.contains("INFLUXDB_RETRY_MAX_DELAY"),
        "{e}"
    );
    let e = error(None, &[("STATS_READ_INTERVAL", "40s")]);
    assert!(
        e.contains("STATS_READ_INTERVAL") && e.contains("shorter than docker.stats_parse_timeout"),
        "{e}"
    );
}

#[test]
fn file_errors_give_the_file_line_and_key() {
    let file = write_file("[batch]\nsize = 10\nflush = \"1s\"\n");
    let e = error(Some(file.path()), &[]);
    assert!(
        e.contains(file.path()) && e.contains("line 3") && e.contains("unknown field `flush`"),
        "{e}"
    );

    let file = write_file("[influxdb]\nretry_delay = \"-2s\"\n");
    let e = error(Some(file.path()), &[]);
    assert!(e.contains("line 2") && e.contains("negative"), "{e}");

    let file = write_file("[batch\nsize = 1\n");
    let e = error(Some(file.path()), &[]);
    assert!(e.contains("line 1"), "{e}");

    let e = error(Some("/nonexistent/docker-stats.toml"), &[]);
    assert!(
        e.contains("cannot read config file /nonexistent/docker-stats.toml"),
        "{e}"
    );
}

#[test]
fn a_file_error_on_a_secret_line_names_the_place_but_never_the_secret() {
    let cases = [
        "[influxdb]\nhost = \"db\"\npassword = \"s3cr3t-typo\n",
        "[influxdb]\npassword = s3cr3t-typo\n",
        "[influxdb]\ntoken = [\"s3cr3t-typo\"]\n",
        "[influxdb]\ntoken = \"s3cr3t-typo\" trailing\n",
        "[influxdb]\npasword = \"s3cr3t-typo\n",
    ];
    for text in cases {
        let file = write_file(text);
        let e = error(Some(file.path()), &[]);
        assert!(!e.contains("s3cr3t"), "the secret is printed: {e}");
        assert!(e.contains(file.path()) && e.contains("line "), "{e}");
        assert!(e.contains("key `influxdb."), "no key named: {e}");
    }
    let file = write_file("[influxdb]\nhost = \"db\"\npassword = \"s3cr3t-typo\n");
    let (code, stderr) = run_to_exit(&[], &["--config", file.path()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("line 3, column") && stderr.contains("key `influxdb.password`"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cr3t"), "{stderr}");
}

#[test]
fn extreme_values_are_configuration_errors_naming_the_accepted_range() {
    let cases: &[(&str, &str, &str)] = &[
        ("INFLUXDB_RETRY_DELAY", "1ns", "10ms"),
        ("INFLUXDB_RETRY_MAX_DELAY", "100years", "1h"),
        ("SHUTDOWN_TIMEOUT_MS", "0", "100ms"),
        ("BATCH_WAIT_MS", "18446744073709551615", "1h"),
        ("STATS_PARSE_TIMEOUT", "99999999999999s", "1h"),
        ("RECONCILE_INTERVAL", "1ns", "100ms"),
        ("STATS_INTERVAL", "5ms", "10ms"),
        ("INFLUXDB_RETRY_MAX", "4000000000", "100"),
    ];
    for (var, value, range) in cases {
        let e = error(None, &[(var, value)]);
        assert!(
            e.contains(var) && e.contains("accepted range") && e.contains(range),
            "{var}={value}: {e}"
        );
    }
    // And the binary says so with exit 2 instead of panicking.
    for (var, value, _) in cases {
        let (code, stderr) = run_to_exit(&[(var, value)], &["check-config"]);
        assert_eq!(code, Some(2), "{var}={value}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn a_malformed_influxdb_host_is_a_configuration_error() {
    for host in [
        "http://influx",
        "influx:8086",
        "influx db",
        "influx/write",
        "user@influx",
        "-influx",
        "",
    ] {
        let e = error(None, &[("INFLUXDB_HOST", host)]);
        assert!(
            e.contains("INFLUXDB_HOST") && e.contains("influxdb.protocol"),
            "{host:?}: {e}"
        );
    }
    for host in [
        "influx",
        "influx.example.com",
        "10.0.0.7",
        "::1",
        "[::1]",
        "host_1",
    ] {
        let c = load(None, &[("INFLUXDB_HOST", host)], &[]);
        assert!(c.is_ok(), "{host:?}: {:?}", c.err());
    }
}

#[test]
fn a_value_that_is_not_utf8_is_named_not_ignored() {
    use std::os::unix::ffi::OsStrExt;
    let output = std::process::Command::new(support::service::BINARY)
        .arg("check-config")
        .env_clear()
        .env(
            "INFLUXDB_PASS",
            std::ffi::OsStr::from_bytes(b"secret-\xff-value"),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("INFLUXDB_PASS") && stderr.contains("not valid UTF-8"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret-"), "{stderr}");
}

#[test]
fn secrets_are_not_printed_by_debug() {
    let c = load(None, &[("INFLUXDB_PASS", "hunter2-secret")], &[]).unwrap();
    assert!(!format!("{c:?}").contains("hunter2-secret"));
}

#[test]
fn the_binary_exits_2_with_the_message_before_doing_any_work() {
    // The socket and InfluxDB point nowhere: a configuration error must be
    // reported before either is tried.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: &[Case] = &[
        (
            &[("BATCH_SIZE", "lots")],
            &[],
            "environment variable BATCH_SIZE",
        ),
        (&[("SHUTDOWN_TIMEOUT_MS", "-1")], &[], "negative"),
        (&[("LOG_LEVEL", "chatty")], &[], "LOG_LEVEL"),
        (
            &[],
            &["--set", "batch.nope=1"],
            "`batch.nope` is not a setting",
        ),
        (&[], &["--frobnicate"], "unexpected argument '--frobnicate'"),
    ];
    for (env, args, expected) in cases {
        let mut env = env.to_vec();
        env.push(("DOCKER_SOCKET_PATH", "/nonexistent.sock"));
        let (code, stderr) = run_to_exit(&env, args);
        assert_eq!(code, Some(2), "{env:?} {args:?}: {stderr}");
        assert!(stderr.contains(expected), "{env:?} {args:?}: {stderr}");
        assert!(
            !stderr.contains("Docker socket"),
            "it must not have tried Docker: {stderr}"
        );
    }

    let file = write_file("log_level = \"info\"\nbogus_key = 1\n");
    let (code, stderr) = run_to_exit(&[], &["--config", file.path()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("line 2") && stderr.contains("bogus_key"),
        "{stderr}"
    );
}

#[test]
fn the_example_config_file_loads_and_matches_the_defaults() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/docker-stats.toml");
    let example = load(Some(path), &[], &[]).unwrap();
    let defaults = load(None, &[], &[]).unwrap();
    let strip = |c: &config::Config| {
        let mut c = c.clone();
        c.origins.clear();
        format!("{c:?}")
    };
    assert_eq!(
        strip(&example),
        strip(&defaults),
        "config/docker-stats.toml should show every default"
    );
    let _ = std::io::stdout().flush();
}

/// Every setting's dotted key as `config/docker-stats.toml` writes it
/// (set, or commented out when it has no default), under its table.
fn keys_in_example_file() -> Vec<String> {
    let text = include_str!("../config/docker-stats.toml");
    let mut table = String::new();
    let mut keys = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            table = header.to_string();
            continue;
        }
        let line = line.strip_prefix("# ").unwrap_or(line);
        let Some((key, _)) = line.split_once(" = ") else {
            continue;
        };
        if key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            keys.push(if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            });
        }
    }
    keys
}

#[test]
fn the_example_file_lists_exactly_the_declared_settings_with_their_variables() {
    let mut example = keys_in_example_file();
    example.sort();
    let mut declared: Vec<String> = config::settings::SETTINGS
        .iter()
        .map(|s| s.key.to_string())
        .collect();
    declared.sort();
    assert_eq!(example, declared, "config/docker-stats.toml");
    let text = include_str!("../config/docker-stats.toml");
    for setting in config::settings::SETTINGS {
        assert!(
            text.contains(setting.env),
            "config/docker-stats.toml does not name {} (`{}`)",
            setting.env,
            setting.key
        );
    }
}

#[test]
fn the_configuration_reference_table_is_the_declared_settings() {
    let reference = include_str!("../docs/configuration.md");
    let table = config::settings::reference_table();
    assert!(
        reference.contains(&table),
        "docs/configuration.md's configuration table differs from src/config/settings.rs; it should read:\n\n{table}"
    );
}

#[test]
fn the_metrics_table_is_what_the_service_exposes() {
    let reference = include_str!("../docs/monitoring.md");
    let table = docker_stats_service::telemetry::metrics::reference_table();
    assert!(
        reference.contains(&table),
        "docs/monitoring.md's /metrics table differs from what src/telemetry writes; it should read:\n\n{table}"
    );
}

/// Without `DOCKER_SOCKET_PATH` the socket is found as the docker CLI finds
/// it (`engine::discovery`): `DOCKER_HOST` first, and a `DOCKER_HOST` the
/// service cannot speak to is a configuration error that does not repeat
/// the address. A configured socket path beats both.
#[test]
fn docker_host_names_the_socket_unless_one_is_configured() {
    let c = load(
        None,
        &[("DOCKER_HOST", "unix:///run/user/1000/docker.sock")],
        &[],
    )
    .unwrap();
    assert_eq!(c.docker.socket_path, "/run/user/1000/docker.sock");
    assert_eq!(
        c.origin("docker.socket_path"),
        "environment variable DOCKER_HOST"
    );
    let c = load(
        None,
        &[
            ("DOCKER_HOST", "unix:///run/user/1000/docker.sock"),
            ("DOCKER_SOCKET_PATH", "/srv/docker.sock"),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(c.docker.socket_path, "/srv/docker.sock");
    // An error for the commands that connect (run, record, check-config),
    // not for those that never reach an engine.
    let e = load(None, &[("DOCKER_HOST", "tcp://10.0.0.7:2376")], &[])
        .unwrap()
        .engine_error()
        .unwrap()
        .to_string();
    assert!(
        e.contains("DOCKER_HOST") && e.contains("tcp://") && e.contains("Unix socket"),
        "{e}"
    );
    assert!(!e.contains("10.0.0.7"), "{e}");
    let (code, stderr) = run_to_exit(&[("DOCKER_HOST", "ssh://me@build-host")], &["check-config"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(!stderr.contains("build-host"), "{stderr}");
}
