//! The shapes later Engine API versions answer in, made from payloads
//! recorded on Docker 28.5 (API 1.51, in the platform lane's forky VM:
//! tests/platform/record-fixtures.sh) by the changes moby's API changelog
//! lists for 1.52 and Docker 29. The service speaks at most 1.51
//! (`engine::api_version`), so no engine sends it these today; these tests
//! show that it reads them the same, so raising that version would not
//! change a field.

use bollard::models::{ContainerInspectResponse, EventMessage};
use docker_stats_service::engine::client::Platform;
use docker_stats_service::engine::container::ContainerInfo;
use docker_stats_service::engine::events::ContainerEvent;
use docker_stats_service::sources::stream::fields::compute_fields;
use docker_stats_service::sources::stream::sample::Sample;
use serde_json::Value;

fn fixture(path: &str) -> String {
    let path = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `value` with the top-level `keys` removed, after checking that it had
/// each of them (else the test would prove nothing).
fn without(mut value: Value, keys: &[&str]) -> Value {
    let object = value.as_object_mut().expect("a JSON object");
    for key in keys {
        assert!(object.remove(*key).is_some(), "no {key} in {object:?}");
    }
    value
}

/// API 1.52 stops sending the top-level `status`, `id` and `from` of an
/// event (deprecated since 1.22); `Action` and `Actor` carry them. bollard's
/// event type has no field for them, so this holds by construction today;
/// the test keeps it so should a later bollard read them.
#[test]
fn events_without_status_id_and_from_decode_the_same() {
    let frames: Vec<Value> = fixture("events/engine_28_container_events.jsonl")
        .lines()
        .map(|line| serde_json::from_str(line).expect("an event frame"))
        .collect();
    let mut decoded = 0;
    for frame in frames {
        let as_recorded: EventMessage = serde_json::from_value(frame.clone()).unwrap();
        let as_1_52: EventMessage =
            serde_json::from_value(without(frame, &["status", "id", "from"])).unwrap();
        let event = ContainerEvent::from_message(&as_recorded);
        assert_eq!(event, ContainerEvent::from_message(&as_1_52));
        decoded += usize::from(event.is_some());
    }
    assert!(decoded >= 10, "only {decoded} lifecycle events recorded");
}

/// API 1.52 drops the deprecated addresses at the top of an inspect
/// response's `NetworkSettings`; the service reads nothing of
/// `NetworkSettings` at all, so it is taken away whole here.
#[test]
fn inspect_without_network_settings_reads_the_same() {
    let recorded: Value =
        serde_json::from_str(&fixture("engines/docker28_v2_inspect.json")).unwrap();
    let as_recorded: ContainerInspectResponse = serde_json::from_value(recorded.clone()).unwrap();
    let as_1_52: ContainerInspectResponse =
        serde_json::from_value(without(recorded, &["NetworkSettings"])).unwrap();
    let info = ContainerInfo::from_inspect(&as_recorded).expect("a container");
    assert_eq!(Some(info.clone()), ContainerInfo::from_inspect(&as_1_52));
    // The recording is the -m 64m container of record-fixtures.sh.
    assert_eq!(info.name, "fx-mem");
    assert!(info.running);
    assert!(info.pid.is_some());
}

/// Docker 29 adds `os_type` to each stats sample.
#[test]
fn stats_with_os_type_give_the_same_fields() {
    for name in [
        "docker28_v2_cpu_limited.json",
        "docker28_v2_mem_limited.json",
    ] {
        let recorded: Value = serde_json::from_str(&fixture(&format!("stats/{name}"))).unwrap();
        assert!(recorded.get("os_type").is_none(), "{name}");
        let mut with_os_type = recorded.clone();
        with_os_type["os_type"] = Value::from("linux");
        let (recorded, with_os_type) = (recorded.to_string(), with_os_type.to_string());
        let fields = |text: &str| {
            compute_fields(
                &Sample::decode(text.as_bytes()).unwrap(),
                Platform::Linux,
                None,
            )
        };
        let expected = fields(&recorded);
        assert!(expected.len() > 20, "{name}: {expected:?}");
        assert_eq!(expected, fields(&with_os_type), "{name}");
    }
}
