//! The `docker_events` point: one container lifecycle event, with what an
//! inspect added to it, as a Grafana annotation can show it.

use crate::engine::container::trim_name;
use crate::engine::events::{ContainerEvent, EventDetails};
use crate::schema::line_protocol::{PointBuilder, SeriesKey};

pub const EVENTS_MEASUREMENT: &str = "docker_events";

/// Encodes the `docker_events` point: tags `container_id`, `container_name`,
/// `action`, `host`; a human-readable `message` field (for annotations) and
/// the exit code, OOM flag, restart count and health status where known.
pub fn event_point(event: &ContainerEvent, details: &EventDetails, host: &str) -> Option<String> {
    let name = event.name.as_deref().unwrap_or(&event.id);
    let series = SeriesKey::new(
        EVENTS_MEASUREMENT,
        [
            ("container_id", event.id.as_str()),
            ("container_name", name),
            ("action", event.action.as_str()),
            ("host", host),
        ],
    );
    let oom_killed = details
        .oom_killed
        .or((event.action == "oom").then_some(true));
    let mut point = PointBuilder::new(&series);
    point.string("message", &describe(event, name, oom_killed));
    if let Some(code) = event.exit_code {
        point.int("exit_code", code);
    }
    if let Some(oom) = oom_killed {
        point.boolean("oom_killed", oom);
    }
    if let Some(count) = details.restart_count {
        point.int("restart_count", count);
    }
    if let Some(status) = &event.health_status {
        point.string("health_status", status);
    }
    point.finish(event.time_ns)
}

fn describe(event: &ContainerEvent, name: &str, oom_killed: Option<bool>) -> String {
    let mut text = format!("{name}: {}", event.action);
    if let Some(status) = &event.health_status {
        text.push_str(&format!(" {status}"));
    }
    if let Some(code) = event.exit_code {
        text.push_str(&format!(" (exit code {code})"));
    }
    if oom_killed == Some(true) && event.action != "oom" {
        text.push_str(" OOM killed");
    }
    if event.action == "rename" {
        if let Some(old) = event.attributes.get("oldName") {
            text.push_str(&format!(" from {}", trim_name(old)));
        }
    }
    text
}
