//! Event frames recorded from this machine's engine (API 1.41), decoded frame
//! by frame into lifecycle events.

use bollard::models::EventMessage;
use docker_stats_service::engine::events::{ContainerEvent, EventDetails};
use docker_stats_service::schema::event_point::event_point;
use docker_stats_service::supervision::registry::{change_for, RegistryChange};

fn recorded() -> Vec<EventMessage> {
    recorded_from("engine_20_10_container_events.jsonl")
}

fn recorded_from(name: &str) -> Vec<EventMessage> {
    let path = format!(
        "{}/tests/fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("an event frame"))
        .collect()
}

#[test]
fn keeps_lifecycle_actions_and_drops_exec_noise() {
    let events: Vec<ContainerEvent> = recorded()
        .iter()
        .filter_map(ContainerEvent::from_message)
        .collect();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "create",
            "start",
            "health_status",
            "rename",
            "pause",
            "unpause",
            "create",
            "start",
            "oom",
            "die",
            "health_status",
            "kill",
            "die",
            "destroy",
            "destroy"
        ]
    );
    assert!(events.iter().all(|e| e.time_ns > 1_700_000_000_000_000_000));
}

#[test]
fn decodes_names_exit_codes_and_health_details() {
    let events: Vec<ContainerEvent> = recorded()
        .iter()
        .filter_map(ContainerEvent::from_message)
        .collect();
    let health = events.iter().find(|e| e.action == "health_status").unwrap();
    assert_eq!(health.health_status.as_deref(), Some("healthy"));
    assert_eq!(health.name.as_deref(), Some("dss-rec-ev"));
    let killed = events.iter().rfind(|e| e.action == "die").unwrap();
    assert_eq!(killed.exit_code, Some(137));
    let rename = events.iter().find(|e| e.action == "rename").unwrap();
    assert_eq!(rename.name.as_deref(), Some("dss-rec-ev2"));
    assert_eq!(
        rename.attributes.get("oldName").map(String::as_str),
        Some("/dss-rec-ev")
    );
}

#[test]
fn tells_the_supervisor_what_to_do() {
    let change = |action: &str| {
        let events: Vec<ContainerEvent> = recorded()
            .iter()
            .filter_map(ContainerEvent::from_message)
            .collect();
        change_for(events.iter().find(|e| e.action == action).unwrap())
    };
    assert_eq!(change("start"), RegistryChange::Watch);
    assert_eq!(change("unpause"), RegistryChange::Watch);
    assert_eq!(change("die"), RegistryChange::Unwatch);
    assert_eq!(change("destroy"), RegistryChange::Unwatch);
    assert_eq!(change("rename"), RegistryChange::Refresh);
    assert_eq!(change("pause"), RegistryChange::None);
    assert_eq!(change("health_status"), RegistryChange::None);
}

#[test]
fn event_points_carry_the_details_for_annotations() {
    let events: Vec<ContainerEvent> = recorded()
        .iter()
        .filter_map(ContainerEvent::from_message)
        .collect();
    let die = events.iter().rfind(|e| e.action == "die").unwrap();
    let details = EventDetails {
        oom_killed: Some(true),
        restart_count: Some(2),
    };
    let line = event_point(die, &details, "node 1").unwrap();
    let id = &die.id;
    assert_eq!(
        line,
        format!(
            "docker_events,action=die,container_id={id},container_name=dss-rec-ev2,host=node\\ 1 message=\"dss-rec-ev2: die (exit code 137) OOM killed\",exit_code=137i,oom_killed=true,restart_count=2i {}",
            die.time_ns
        )
    );
    let rename = events.iter().find(|e| e.action == "rename").unwrap();
    let line = event_point(rename, &EventDetails::default(), "h").unwrap();
    assert!(
        line.contains("message=\"dss-rec-ev2: rename from dss-rec-ev\""),
        "{line}"
    );
}

/// Docker 26 and 28.5, Podman 5.4 and 5.8 (recorded in the platform lane's VM) start and
/// stop containers with the same actions the Supervisor acts on; Podman
/// adds `init`, `cleanup` and `remove` (its `destroy`), which change nothing
/// the `die` before them did not.
#[test]
fn modern_engines_events_start_and_stop_the_same_way() {
    for (name, containers) in [
        ("engine_26_container_events.jsonl", 5),
        ("podman_5_container_events.jsonl", 5),
        ("engine_28_container_events.jsonl", 5),
        ("podman_5_8_container_events.jsonl", 5),
    ] {
        let events: Vec<ContainerEvent> = recorded_from(name)
            .iter()
            .filter_map(ContainerEvent::from_message)
            .collect();
        let with = |change: RegistryChange| {
            events
                .iter()
                .filter(|e| change_for(e) == change)
                .map(|e| e.id.clone())
                .collect::<std::collections::BTreeSet<_>>()
        };
        let (watched, let_go) = (with(RegistryChange::Watch), with(RegistryChange::Unwatch));
        assert_eq!(watched.len(), containers, "{name}");
        // The recording ends at a whole second (`until`), before some of
        // the last removals: each one recorded lets go of a started one.
        assert!(
            let_go.len() >= 3 && let_go.is_subset(&watched),
            "{name}: {let_go:?} of {watched:?}"
        );
        assert!(
            events
                .iter()
                .all(|e| e.name.as_deref().is_some_and(|n| n.starts_with("fx-"))),
            "{name}: every event names its container"
        );
        let die = events.iter().find(|e| e.action == "die").unwrap();
        assert!(die.exit_code.is_some(), "{name}: {die:?}");
    }
}
