//! What the service knows about one container: identity, the tags its points
//! carry, and its CPU limit. Built from the engine's inspect response.

use std::collections::HashMap;

use bollard::models::ContainerInspectResponse;

use crate::schema::line_protocol::SeriesKey;

pub const STATS_MEASUREMENT: &str = "docker_stats";
pub const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";
pub const COMPOSE_SERVICE_LABEL: &str = "com.docker.compose.service";

/// Tag names the service writes itself; a label tag may not reuse them.
pub const BUILT_IN_TAGS: &[&str] = &[
    "container_id",
    "container_name",
    "host",
    "image",
    "compose_project",
    "compose_service",
    "source",
    "action",
];

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerInfo {
    pub id: String,
    /// Without the leading `/` the engine puts in front of names.
    pub name: String,
    pub image: String,
    pub labels: HashMap<String, String>,
    pub running: bool,
    /// The CPU limit in cores (`--cpus`, or quota / period), if any.
    pub cpu_limit_cores: Option<f64>,
    /// The init process, in the engine's (the host's) PID namespace.
    pub pid: Option<u32>,
    /// `HostConfig.CgroupParent`; empty when the engine's default applies.
    pub cgroup_parent: String,
}

impl ContainerInfo {
    pub fn from_inspect(inspect: &ContainerInspectResponse) -> Option<Self> {
        let id = inspect.id.clone()?;
        let host_config = inspect.host_config.as_ref();
        let config = inspect.config.as_ref();
        Some(ContainerInfo {
            name: trim_name(inspect.name.as_deref().unwrap_or(&id)).to_string(),
            image: config.and_then(|c| c.image.clone()).unwrap_or_default(),
            labels: config.and_then(|c| c.labels.clone()).unwrap_or_default(),
            running: inspect
                .state
                .as_ref()
                .and_then(|s| s.running)
                .unwrap_or(false),
            cpu_limit_cores: cpu_limit_cores(
                host_config.and_then(|h| h.nano_cpus),
                host_config.and_then(|h| h.cpu_quota),
                host_config.and_then(|h| h.cpu_period),
            ),
            pid: inspect
                .state
                .as_ref()
                .and_then(|s| s.pid)
                .and_then(|pid| u32::try_from(pid).ok())
                .filter(|pid| *pid > 0),
            cgroup_parent: host_config
                .and_then(|h| h.cgroup_parent.clone())
                .unwrap_or_default(),
            id,
        })
    }

    /// The series key of this container's stats points; `source` says
    /// which sampling source produced them (`stream` or `cgroup`).
    pub fn stats_series(&self, host: &str, label_tags: &[LabelTag], source: &str) -> SeriesKey {
        let mut tags: Vec<(&str, &str)> = vec![
            ("container_id", &self.id),
            ("container_name", &self.name),
            ("host", host),
            ("image", &self.image),
            ("source", source),
        ];
        if let Some(project) = self.labels.get(COMPOSE_PROJECT_LABEL) {
            tags.push(("compose_project", project));
        }
        if let Some(service) = self.labels.get(COMPOSE_SERVICE_LABEL) {
            tags.push(("compose_service", service));
        }
        for label in label_tags {
            if let Some(value) = self.labels.get(&label.label) {
                tags.push((&label.tag, value));
            }
        }
        SeriesKey::new(STATS_MEASUREMENT, tags)
    }
}

/// A container label copied into a tag: `label` or `label=tag_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelTag {
    pub label: String,
    pub tag: String,
}

impl LabelTag {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (label, tag) = match spec.split_once('=') {
            Some((label, tag)) => (label.trim(), tag.trim()),
            None => (spec.trim(), spec.trim()),
        };
        if label.is_empty() || tag.is_empty() {
            return Err(format!("{spec:?} is not `label` or `label=tag_name`"));
        }
        if BUILT_IN_TAGS.contains(&tag) {
            return Err(format!(
                "label {label:?} would overwrite the built-in tag `{tag}`; rename it with `{label}=another_name`"
            ));
        }
        Ok(LabelTag {
            label: label.into(),
            tag: tag.into(),
        })
    }
}

pub fn trim_name(name: &str) -> &str {
    name.strip_prefix('/').unwrap_or(name)
}

/// The container's CPU limit in cores: `NanoCpus` (`--cpus`) when set, else
/// `CpuQuota / CpuPeriod` (`--cpu-quota`, period defaulting to the kernel's
/// 100 ms). `None` when the container may use every core.
pub fn cpu_limit_cores(
    nano_cpus: Option<i64>,
    quota: Option<i64>,
    period: Option<i64>,
) -> Option<f64> {
    if let Some(nano) = nano_cpus.filter(|n| *n > 0) {
        return Some(nano as f64 / 1e9);
    }
    let quota = quota.filter(|q| *q > 0)?;
    let period = period.filter(|p| *p > 0).unwrap_or(100_000);
    Some(quota as f64 / period as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_limit_comes_from_nano_cpus_or_quota() {
        assert_eq!(cpu_limit_cores(Some(500_000_000), None, None), Some(0.5));
        assert_eq!(
            cpu_limit_cores(Some(0), Some(150_000), Some(100_000)),
            Some(1.5)
        );
        assert_eq!(cpu_limit_cores(None, Some(50_000), Some(0)), Some(0.5));
        assert_eq!(cpu_limit_cores(Some(0), Some(-1), Some(100_000)), None);
    }

    #[test]
    fn label_tags_cannot_shadow_built_in_tags() {
        assert_eq!(
            LabelTag::parse("com.example.team=team").unwrap(),
            LabelTag {
                label: "com.example.team".into(),
                tag: "team".into()
            }
        );
        assert!(LabelTag::parse("host")
            .unwrap_err()
            .contains("built-in tag `host`"));
        assert!(LabelTag::parse("=x").is_err());
    }

    #[test]
    fn series_has_compose_and_allowed_label_tags_only() {
        let info = ContainerInfo {
            id: "abc".into(),
            name: "web-1".into(),
            image: "nginx:1".into(),
            labels: HashMap::from([
                (COMPOSE_PROJECT_LABEL.to_string(), "shop".to_string()),
                (COMPOSE_SERVICE_LABEL.to_string(), "web".to_string()),
                ("team".to_string(), "core".to_string()),
                ("secret.ignored".to_string(), "x".to_string()),
            ]),
            running: true,
            cpu_limit_cores: None,
            pid: Some(42),
            cgroup_parent: String::new(),
        };
        let series = info.stats_series("node1", &[LabelTag::parse("team").unwrap()], "stream");
        assert_eq!(
            series.as_str(),
            "docker_stats,compose_project=shop,compose_service=web,container_id=abc,container_name=web-1,host=node1,image=nginx:1,source=stream,team=core"
        );
    }
}
