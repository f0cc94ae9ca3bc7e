//! `check-config`: the effective configuration as TOML-like lines, each
//! with where its value came from. Secrets are masked.

use std::fmt::Write;

use super::{settings, Config};

fn duration(d: std::time::Duration) -> String {
    format!("{:?}", humantime::format_duration(d).to_string())
}

fn masked(secret: &super::Secret) -> String {
    if secret.expose().is_empty() {
        "\"\"".into()
    } else {
        "\"***\"".into()
    }
}

/// The value of one setting, as it would be written in the file.
fn value(config: &Config, key: &str) -> String {
    let i = &config.influxdb;
    let d = &config.docker;
    match key {
        "log_level" => format!("\"{:?}\"", config.log_level).to_lowercase(),
        "shutdown_timeout" => duration(config.shutdown_timeout),
        "max_buffer_bytes" => config.max_buffer_bytes.to_string(),
        "spool_dir" => config.spool_dir.as_ref().map_or("\"\" (off)".into(), |p| {
            format!("{:?}", p.display().to_string())
        }),
        "docker.in_container" => d.in_container.to_string(),
        "docker.socket_path" => format!("{:?}", d.socket_path),
        "docker.stats_buffer_size" => d.stats_buffer_size.to_string(),
        "docker.stats_line_size" => d.stats_line_size.to_string(),
        "docker.stats_parse_timeout" => duration(d.stats_parse_timeout),
        "docker.stats_read_interval" => duration(d.stats_read_interval),
        "docker.reconcile_interval" => duration(d.reconcile_interval),
        "influxdb.api" => format!("\"{:?}\"", i.api).to_lowercase(),
        "influxdb.protocol" => format!("\"{}\"", i.protocol.as_str()),
        "influxdb.ca_file" => match &i.ca_file {
            Some(path) => format!("{:?}", path.display().to_string()),
            None => "\"\" (system roots only)".into(),
        },
        "influxdb.host" => format!("{:?}", i.host),
        "influxdb.port" => i.port.to_string(),
        "influxdb.user" => format!("{:?}", i.user),
        "influxdb.password" => masked(&i.password),
        "influxdb.token" => masked(&i.token),
        "influxdb.password_file" | "influxdb.token_file" => "(read into the secret above)".into(),
        "influxdb.database" => format!("{:?}", i.database),
        "influxdb.org" => format!("{:?}", i.org),
        "influxdb.bucket" => format!("{:?}", i.bucket),
        "influxdb.retry_max" => i.retry_max.to_string(),
        "influxdb.retry_delay" => duration(i.retry_delay),
        "influxdb.retry_max_delay" => duration(i.retry_max_delay),
        "batch.size" => config.batch.size.to_string(),
        "batch.wait" => duration(config.batch.wait),
        "stats.fields" => format!("{:?}", config.stats.fields.to_string()),
        "stats.label_tags" => {
            let tags: Vec<String> = config
                .stats
                .label_tags
                .iter()
                .map(|t| {
                    if t.label == t.tag {
                        t.label.clone()
                    } else {
                        format!("{}={}", t.label, t.tag)
                    }
                })
                .collect();
            format!("{tags:?}")
        }
        "stats.sampling" => format!("\"{:?}\"", config.stats.sampling).to_lowercase(),
        "stats.interval" => duration(config.stats.interval),
        "stats.cgroup_root" => format!("{:?}", config.stats.cgroup_root.display().to_string()),
        "stats.proc_root" => format!("{:?}", config.stats.proc_root.display().to_string()),
        "health.listen" => config
            .health_listen
            .as_ref()
            .map_or("\"\" (off)".into(), |l| format!("{l:?}")),
        _ => "?".into(),
    }
}

pub fn describe(config: &Config) -> String {
    let mut out = String::from("# effective configuration (secrets masked)\n");
    for setting in settings::SETTINGS {
        let origin = config
            .origins
            .get(setting.key)
            .map_or("default", String::as_str);
        let _ = writeln!(
            out,
            "{} = {}  # {} ({})",
            setting.key,
            value(config, setting.key),
            origin,
            setting.env
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, Overrides};

    #[test]
    fn every_setting_is_described_and_secrets_are_masked() {
        let env = [
            ("INFLUXDB_PASS", "hunter2"),
            ("INFLUXDB_TOKEN", "tok-secret"),
            ("BATCH_SIZE", "7"),
        ];
        let config = load(&Overrides::default(), |name| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
        .unwrap();
        let text = describe(&config);
        assert!(
            !text.contains("hunter2") && !text.contains("tok-secret"),
            "{text}"
        );
        assert!(
            text.contains("influxdb.password = \"***\"  # environment variable INFLUXDB_PASS"),
            "{text}"
        );
        assert!(
            text.contains("batch.size = 7  # environment variable BATCH_SIZE (BATCH_SIZE)"),
            "{text}"
        );
        assert!(
            !text.contains(" = ?"),
            "a setting without a description:\n{text}"
        );
        assert_eq!(text.lines().count(), settings::SETTINGS.len() + 1);
    }
}
