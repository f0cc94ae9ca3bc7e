//! The service against Podman's Docker-compatible API (`podman system
//! service`), in the platform lane's VM: discovery through Podman's events,
//! its stats stream, inspect for names, images and labels, and the cgroup
//! source under `machine.slice/libpod-<id>.scope`. Podman is not installed on
//! the host, so this target is built with `test = false` and run by
//! scripts/platform-lane (tests/platform/tests).

mod support;

use std::time::Duration;

use serde_json::Value;
use support::containers::stats_mem_usage;
use support::influx::shared;
use support::podman::{podman, podman_containers, PodmanApi};
use support::samples::{float, mean_after, stored_points, wait_for_count, wait_for_points};
use support::service::Service;

const BUSY: &[&str] = &["sh", "-c", "while :; do :; done"];
/// 20 MB of anonymous memory: dd's buffer, filled and then held while dd
/// waits to write into a pipe nobody reads.
const HOLDS_MEMORY: &[&str] = &["sh", "-c", "dd if=/dev/zero bs=20M count=1 | sleep 3600"];

/// The last `mem_used` stored for `id`, checked to be within 5% of what
/// `podman stats` showed.
async fn assert_mem_used_near(
    influx: &support::influx::Influx,
    db: &str,
    id: &str,
    shown: f64,
) -> f64 {
    let stored = stored_points(influx, db, id)
        .await
        .values()
        .last()
        .and_then(|row| row["mem_used"].as_f64())
        .unwrap();
    assert!(
        (stored - shown).abs() <= 0.05 * shown,
        "mem_used {stored} vs podman stats {shown}"
    );
    stored
}

/// Both sources at once, each service writing to its own database, on the
/// same containers.
#[tokio::test(flavor = "multi_thread")]
async fn both_sources_follow_podman_containers_with_correct_figures() {
    let api = PodmanApi::start();
    let influx = shared();
    let (stream_db, cgroup_db) = ("podman_stream", "podman_cgroup");
    let containers = podman_containers("podman");
    let busy = containers.run("busy", &["--cpus", "0.5", "--label", "team=load"], BUSY);
    let memory = containers.run("memory", &[], HOLDS_MEMORY);
    let mut stream = Service::start(
        influx,
        stream_db,
        &[
            ("DOCKER_SOCKET_PATH", api.socket.as_str()),
            ("STATS_LABEL_TAGS", "team"),
        ],
    );
    let mut cgroup = Service::start(
        influx,
        cgroup_db,
        &[
            ("DOCKER_SOCKET_PATH", api.socket.as_str()),
            ("STATS_SAMPLING", "cgroup"),
            ("STATS_INTERVAL", "100ms"),
        ],
    );
    stream
        .wait_for_log(
            "connected to Podman's Docker-compatible API",
            Duration::from_secs(30),
        )
        .await;
    // Podman's stream sends a sample every 5 s; the first has no CPU %.
    wait_for_count(influx, stream_db, &busy, 4).await;
    wait_for_count(influx, stream_db, &memory, 2).await;
    wait_for_count(influx, cgroup_db, &busy, 40).await;
    wait_for_count(influx, cgroup_db, &memory, 40).await;
    let shown = stats_mem_usage("podman", &containers.name("memory"));

    // A container started now is found through Podman's events.
    let late = containers.run("late", &[], &["sleep", "3600"]);
    let started_at = humantime::parse_rfc3339_weak(&podman(&[
        "inspect",
        "--format",
        "{{.State.StartedAt.UTC.Format \"2006-01-02T15:04:05.999999999Z\"}}",
        &late,
    ]))
    .unwrap();
    wait_for_points(influx, stream_db, &late, Duration::from_secs(30)).await;
    // When its first point was taken (its own timestamp, the time of the
    // engine's reading), not when it could be read back: writing and the
    // wait's polling are not discovery, and a first reading taken before
    // the new cgroup had memory figures carries no `mem_used`, which the
    // wait counts.
    let first_ns = *stored_points(influx, stream_db, &late)
        .await
        .keys()
        .next()
        .expect("a point of the later container");
    let started_ns = started_at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let delay = Duration::from_nanos(first_ns.saturating_sub(started_ns).max(0) as u64);
    assert!(stream.terminate().await.success(), "{}", stream.logs());
    assert!(cgroup.terminate().await.success(), "{}", cgroup.logs());
    eprintln!("a later Podman container's first point: {delay:?} after it started");
    // Its start event, an inspect and the stream's first sample (Podman
    // sends it at once, the next ones 5 s apart): 1.8 to 2.9 s seen under
    // TCG, where Podman's API answers slower than Docker's. The issue does
    // not bind Podman to Docker's 3 s; 5 s keeps the test about discovery.
    // (One CI run measured 7.9 s by the time the point could be read back;
    // that time also held the writer's batch, InfluxDB and the polling.)
    assert!(
        delay <= Duration::from_secs(5),
        "a later container's first point came {delay:?} after it started"
    );

    // The stream source.
    let points = stored_points(influx, stream_db, &busy).await;
    let first = points.values().next().unwrap();
    assert_eq!(first["container_name"], containers.name("busy"));
    assert_eq!(first["team"], "load");
    assert!(
        first["image"]
            .as_str()
            .unwrap()
            .contains("dss-test/busybox"),
        "{first:?}"
    );
    // Held at half a core: every sample after the first says so.
    for (time, row) in points.iter().skip(1) {
        let cpu = float(row, "cpu_percent").expect("cpu_percent after the first sample");
        assert!((cpu - 50.0).abs() <= 4.0, "cpu_percent {cpu} at {time}");
        for wrong in [
            "cpu_kernel_usage",
            "cpu_throttled_periods",
            "cpu_system_usage",
        ] {
            assert!(row.get(wrong).is_none_or(Value::is_null), "{wrong} stored");
        }
    }
    let stored = assert_mem_used_near(influx, stream_db, &memory, shown).await;
    assert!(stored > 20e6, "dd holds 20 MB, mem_used {stored}");

    // The cgroup source, from machine.slice/libpod-<id>.scope.
    let logs = cgroup.logs();
    assert!(!logs.contains("cannot sample container"), "{logs}");
    let points = stored_points(influx, cgroup_db, &busy).await;
    assert!(points
        .values()
        .all(|row| row["source"].as_str() == Some("cgroup")));
    let cpu = mean_after(&points, "cpu_percent", 1);
    assert!((cpu - 50.0).abs() <= 4.0, "mean cpu_percent {cpu}");
    // Throttling from cpu.stat, which Podman's own stats leave at zero.
    let throttled = points
        .values()
        .filter_map(|row| float(row, "cpu_throttled_periods"))
        .fold(0.0, f64::max);
    assert!(
        throttled > 0.0,
        "a container held at half a core is throttled"
    );
    assert_mem_used_near(influx, cgroup_db, &memory, shown).await;
}
