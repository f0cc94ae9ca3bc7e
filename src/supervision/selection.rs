//! Container filters (`record --containers`, `report --containers`, the
//! selector of a budget): which containers are followed or summarised. A container is selected when any filter matches it (no filter
//! selects all).
//!
//! * `web-*`: a name glob (`*` any run of characters, `?` one character),
//!   which also matches a container whose id starts with it (`3f2a`);
//! * `label=KEY` or `label=KEY=VALUE`: a label (in a report: the tag
//!   `stats.label_tags` stored it as; `record` stores the labels its filters
//!   name);
//! * `compose=PROJECT` or `compose=PROJECT/SERVICE`: a Compose project or
//!   service.

use std::collections::BTreeMap;

use crate::schema::tags::{COMPOSE_PROJECT_LABEL, COMPOSE_SERVICE_LABEL};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerFilter {
    /// A name glob, or an id prefix.
    Name(String),
    Label {
        key: String,
        value: Option<String>,
    },
    Compose {
        project: String,
        service: Option<String>,
    },
}

impl ContainerFilter {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        let nonempty = |what: &str, text: &str| {
            if text.is_empty() {
                Err(format!("{spec:?} names no {what}; expected {FORMS}"))
            } else {
                Ok(text.to_string())
            }
        };
        if let Some(rest) = spec.strip_prefix("label=") {
            let (key, value) = match rest.split_once('=') {
                Some((key, value)) => (key, Some(value.to_string())),
                None => (rest, None),
            };
            return Ok(ContainerFilter::Label {
                key: nonempty("label", key)?,
                value,
            });
        }
        if let Some(rest) = spec.strip_prefix("compose=") {
            let (project, service) = match rest.split_once('/') {
                Some((project, service)) => (project, Some(nonempty("service", service)?)),
                None => (rest, None),
            };
            return Ok(ContainerFilter::Compose {
                project: nonempty("project", project)?,
                service,
            });
        }
        if spec.contains('=') {
            return Err(format!(
                "{spec:?} is not a filter; expected {FORMS} (only `label=` and `compose=` take a `=`)"
            ));
        }
        Ok(ContainerFilter::Name(nonempty("name", spec)?))
    }

    /// Whether the container with this id, name and labels is selected.
    pub fn matches<'a>(
        &self,
        id: &str,
        name: &str,
        label: impl Fn(&str) -> Option<&'a str>,
    ) -> bool {
        match self {
            ContainerFilter::Name(pattern) => {
                glob_matches(pattern, name) || id.starts_with(pattern.as_str())
            }
            ContainerFilter::Label { key, value } => match label(key) {
                Some(found) => value.as_deref().is_none_or(|v| v == found),
                None => false,
            },
            ContainerFilter::Compose { project, service } => {
                label(COMPOSE_PROJECT_LABEL) == Some(project.as_str())
                    && service
                        .as_deref()
                        .is_none_or(|s| label(COMPOSE_SERVICE_LABEL) == Some(s))
            }
        }
    }

    /// The same, for a container known by the tags of its stored points:
    /// Compose labels are stored as `compose_project` and
    /// `compose_service`, other labels under their own name.
    pub fn matches_tags(&self, id: &str, name: &str, tags: &BTreeMap<String, String>) -> bool {
        self.matches(id, name, |label| {
            let tag = match label {
                COMPOSE_PROJECT_LABEL => "compose_project",
                COMPOSE_SERVICE_LABEL => "compose_service",
                other => other,
            };
            tags.get(tag).map(String::as_str)
        })
    }

    /// The label a filter needs stored as a tag for a later report to
    /// apply it to stored points.
    pub fn label_key(&self) -> Option<&str> {
        match self {
            ContainerFilter::Label { key, .. } => Some(key),
            _ => None,
        }
    }
}

const FORMS: &str =
    "a name glob (`web-*`), an id prefix, `label=KEY[=VALUE]` or `compose=PROJECT[/SERVICE]`";

/// Whether any of `filters` selects a container known by its stored tags;
/// no filter selects all.
pub fn selected_by_tags(
    filters: &[ContainerFilter],
    id: &str,
    name: &str,
    tags: &BTreeMap<String, String>,
) -> bool {
    filters.is_empty() || filters.iter().any(|f| f.matches_tags(id, name, tags))
}

/// `*` matches any run of characters, `?` exactly one; everything else
/// itself.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point (the last `*`).
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn check(filter: &str, id: &str, name: &str, labels: &[(&str, &str)]) -> bool {
        let labels: HashMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ContainerFilter::parse(filter)
            .unwrap()
            .matches(id, name, |key| labels.get(key).map(String::as_str))
    }

    #[test]
    fn names_globs_and_id_prefixes() {
        assert!(check("web-*", "abc", "web-1", &[]));
        assert!(!check("web-*", "abc", "db-1", &[]));
        assert!(check("w?b", "abc", "web", &[]));
        assert!(check("*", "abc", "anything", &[]));
        assert!(check("a*c*e", "x", "abcde", &[]));
        assert!(!check("a*c*e", "x", "abcd", &[]));
        assert!(check("3f2a", "3f2a99", "db", &[]));
        assert!(
            !check("web", "abc", "web-1", &[]),
            "a name without glob is exact"
        );
    }

    #[test]
    fn labels_and_compose() {
        assert!(check("label=tier", "a", "n", &[("tier", "front")]));
        assert!(check("label=tier=front", "a", "n", &[("tier", "front")]));
        assert!(!check("label=tier=back", "a", "n", &[("tier", "front")]));
        let compose = [
            (COMPOSE_PROJECT_LABEL, "shop"),
            (COMPOSE_SERVICE_LABEL, "web"),
        ];
        assert!(check("compose=shop", "a", "n", &compose));
        assert!(check("compose=shop/web", "a", "n", &compose));
        assert!(!check("compose=shop/db", "a", "n", &compose));
        assert!(!check("compose=other", "a", "n", &compose));
    }

    #[test]
    fn stored_points_carry_compose_labels_as_their_own_tags() {
        let tags: BTreeMap<String, String> = [("compose_project", "shop"), ("tier", "db")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let filter = |spec: &str| ContainerFilter::parse(spec).unwrap();
        assert!(filter("compose=shop").matches_tags("a", "n", &tags));
        assert!(filter("label=tier=db").matches_tags("a", "n", &tags));
        assert!(!filter("label=tier=web").matches_tags("a", "n", &tags));
    }

    #[test]
    fn malformed_filters_say_what_is_accepted() {
        for bad in ["", "label=", "compose=", "compose=p/", "foo=bar"] {
            let error = ContainerFilter::parse(bad).unwrap_err();
            assert!(error.contains("label=KEY"), "{bad}: {error}");
        }
    }
}
