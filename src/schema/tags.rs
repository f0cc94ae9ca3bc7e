//! The tags of a `docker_stats` point: the built-in ones, the container
//! labels copied in by `stats.label_tags`, and the series key they make.

use crate::engine::container::ContainerInfo;
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
    "run_id",
];

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

/// The series key of a container's stats points; `source` says which
/// sampling source produced them (`stream` or `cgroup`), `run_id` which
/// `record` run took them (none for the long-running collector).
pub fn stats_series(
    container: &ContainerInfo,
    host: &str,
    label_tags: &[LabelTag],
    source: &str,
    run_id: Option<&str>,
) -> SeriesKey {
    let mut tags: Vec<(&str, &str)> = vec![
        ("container_id", &container.id),
        ("container_name", &container.name),
        ("host", host),
        ("image", &container.image),
        ("source", source),
    ];
    if let Some(project) = container.labels.get(COMPOSE_PROJECT_LABEL) {
        tags.push(("compose_project", project));
    }
    if let Some(service) = container.labels.get(COMPOSE_SERVICE_LABEL) {
        tags.push(("compose_service", service));
    }
    if let Some(run_id) = run_id {
        tags.push(("run_id", run_id));
    }
    for label in label_tags {
        if let Some(value) = container.labels.get(&label.label) {
            tags.push((&label.tag, value));
        }
    }
    SeriesKey::new(STATS_MEASUREMENT, tags)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

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
        let series = stats_series(
            &info,
            "node1",
            &[LabelTag::parse("team").unwrap()],
            "stream",
            None,
        );
        assert_eq!(
            series.as_str(),
            "docker_stats,compose_project=shop,compose_service=web,container_id=abc,container_name=web-1,host=node1,image=nginx:1,source=stream,team=core"
        );
    }
}
