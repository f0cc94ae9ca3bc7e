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

/// The action of the point written when a container's cgroup counts new
/// OOM kills.
pub const OOM_KILL_ACTION: &str = "oom_kill";

/// The `docker_events` point for processes the OOM killer killed in a
/// container, which may still be running: the engine's own `oom` event
/// does not say how many, and a worker killed under a surviving shell can
/// go without one. `killed` is how many since the previous reading.
pub fn oom_kill_point(
    id: &str,
    name: &str,
    host: &str,
    killed: u64,
    time_ns: i64,
) -> Option<String> {
    let series = SeriesKey::new(
        EVENTS_MEASUREMENT,
        [
            ("container_id", id),
            ("container_name", name),
            ("action", OOM_KILL_ACTION),
            ("host", host),
        ],
    );
    let mut point = PointBuilder::new(&series);
    let processes = if killed == 1 { "process" } else { "processes" };
    point.string(
        "message",
        &format!("{name}: {OOM_KILL_ACTION} ({killed} {processes} killed)"),
    );
    point.int("oom_kills", killed as i64);
    point.finish(time_ns)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oom_kill_point_says_how_many_processes_were_killed() {
        let line = oom_kill_point("abc", "web", "node1", 2, 1_700_000_000_000_000_000).unwrap();
        assert_eq!(
            line,
            "docker_events,action=oom_kill,container_id=abc,container_name=web,host=node1 \
             message=\"web: oom_kill (2 processes killed)\",oom_kills=2i 1700000000000000000"
        );
    }
}
