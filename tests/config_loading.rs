//! Configuration: precedence (defaults < file < environment < flags) and the
//! errors that stop the service before it does any work.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use docker_stats_service::config::{self, Overrides};
use docker_stats_service::docker::fields::FieldSelection;
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
        (&[], &["--frobnicate"], "unknown argument"),
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
