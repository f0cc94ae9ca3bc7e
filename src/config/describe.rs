//! `check-config`: the effective configuration as TOML-like lines, each
//! with where its value came from. Secrets are masked.

use std::fmt::Write;

use super::{settings, Config};
use crate::schema::tags::LabelTag;

// How values are written, for the `show` of each declared setting.

pub(super) fn duration(d: std::time::Duration) -> String {
    quoted(&humantime::format_duration(d).to_string())
}

pub(super) fn quoted(text: &str) -> String {
    format!("{text:?}")
}

/// An enum's name as the file writes it: `"info"`, `"v1"`, `"cgroup"`.
pub(super) fn lowercase(value: &impl std::fmt::Debug) -> String {
    format!("\"{value:?}\"").to_lowercase()
}

pub(super) fn masked(secret: &super::Secret) -> String {
    if secret.expose().is_empty() {
        "\"\"".into()
    } else {
        "\"***\"".into()
    }
}

/// A path, or `""` with what being unset means.
pub(super) fn optional_path(path: Option<&std::path::Path>, unset: &str) -> String {
    match path {
        Some(path) => quoted(&path.display().to_string()),
        None => format!("\"\" {unset}"),
    }
}

pub(super) fn label_tags(tags: &[LabelTag]) -> String {
    let specs: Vec<String> = tags
        .iter()
        .map(|t| {
            if t.label == t.tag {
                t.label.clone()
            } else {
                format!("{}={}", t.label, t.tag)
            }
        })
        .collect();
    format!("{specs:?}")
}

/// What a `_file` setting shows: its content went into the secret.
pub(super) const READ_INTO_SECRET: &str = "(read into the secret above)";

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
            (setting.show)(config),
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
        assert_eq!(text.lines().count(), settings::SETTINGS.len() + 1);
    }
}
