//! The engine's event stream, decoded: which container lifecycle events
//! matter, and where a resubscription resumes without repeating any.

use std::collections::{HashMap, HashSet};

use bollard::models::{EventMessage, EventMessageTypeEnum};

use crate::engine::container::trim_name;

/// The container actions the service records and reacts to.
pub const LIFECYCLE_ACTIONS: &[&str] = &[
    "create",
    "start",
    "restart",
    "die",
    "stop",
    "kill",
    "pause",
    "unpause",
    "rename",
    "update",
    "oom",
    "health_status",
    "destroy",
];

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerEvent {
    pub id: String,
    /// The action without its detail: `health_status`, not `health_status: healthy`.
    pub action: String,
    pub name: Option<String>,
    pub image: Option<String>,
    pub time_ns: i64,
    pub exit_code: Option<i64>,
    pub health_status: Option<String>,
    pub attributes: HashMap<String, String>,
}

impl ContainerEvent {
    /// Decodes one event frame; `None` for other object types and for actions
    /// that are not lifecycle changes (exec, attach, resize, ...).
    pub fn from_message(message: &EventMessage) -> Option<Self> {
        if message.typ != Some(EventMessageTypeEnum::CONTAINER) {
            return None;
        }
        let raw_action = message.action.as_deref()?;
        let (action, detail) = match raw_action.split_once(':') {
            Some((action, detail)) => (action.trim(), Some(detail.trim())),
            None => (raw_action, None),
        };
        if !LIFECYCLE_ACTIONS.contains(&action) {
            return None;
        }
        let actor = message.actor.as_ref()?;
        let id = actor.id.clone()?;
        let attributes = actor.attributes.clone().unwrap_or_default();
        let time_ns = message
            .time_nano
            .or_else(|| message.time.map(|s| s * 1_000_000_000))
            .unwrap_or(0);
        Some(ContainerEvent {
            id,
            action: action.to_string(),
            name: attributes.get("name").map(|n| trim_name(n).to_string()),
            image: attributes.get("image").cloned(),
            time_ns,
            exit_code: attributes.get("exitCode").and_then(|c| c.parse().ok()),
            health_status: detail
                .filter(|_| action == "health_status")
                .map(str::to_string),
            attributes,
        })
    }
}

/// Where the event stream left off: the time of the newest event seen and
/// the events seen at exactly that time. Docker's `since` is inclusive, so a
/// resubscription from that time repeats them; they are recognised here.
#[derive(Debug, Default)]
pub struct ResumePoint {
    last_time_ns: i64,
    seen_at_last_time: HashSet<(String, String)>,
}

impl ResumePoint {
    pub fn last_time_ns(&self) -> Option<i64> {
        (self.last_time_ns > 0).then_some(self.last_time_ns)
    }

    /// Whether `event` was not seen before; remembers it.
    pub fn is_new(&mut self, event: &ContainerEvent) -> bool {
        if event.time_ns < self.last_time_ns {
            return false;
        }
        if event.time_ns > self.last_time_ns {
            self.last_time_ns = event.time_ns;
            self.seen_at_last_time.clear();
        }
        self.seen_at_last_time
            .insert((event.id.clone(), event.action.clone()))
    }
}

/// Details an inspect adds to an event, when the container still exists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventDetails {
    pub oom_killed: Option<bool>,
    pub restart_count: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, action: &str, time_ns: i64) -> ContainerEvent {
        ContainerEvent {
            id: id.into(),
            action: action.into(),
            name: None,
            image: None,
            time_ns,
            exit_code: None,
            health_status: None,
            attributes: HashMap::new(),
        }
    }

    #[test]
    fn a_resubscription_repeats_nothing_and_misses_nothing() {
        let mut resume = ResumePoint::default();
        assert_eq!(resume.last_time_ns(), None);
        assert!(resume.is_new(&event("a", "start", 10)));
        assert!(resume.is_new(&event("b", "start", 20)));
        assert!(
            resume.is_new(&event("c", "start", 20)),
            "same time, other container"
        );
        assert_eq!(resume.last_time_ns(), Some(20));
        // Resubscribed with since=20: the daemon repeats the events at 20.
        assert!(!resume.is_new(&event("b", "start", 20)));
        assert!(!resume.is_new(&event("c", "start", 20)));
        assert!(!resume.is_new(&event("a", "start", 10)));
        assert!(
            resume.is_new(&event("c", "die", 20)),
            "another action at the same time is new"
        );
        assert!(resume.is_new(&event("d", "start", 30)));
    }
}
