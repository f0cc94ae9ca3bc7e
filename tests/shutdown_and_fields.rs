//! Shutdown when InfluxDB cannot take the points, and `STATS_FIELDS`
//! selection, with the real binary and engine.

mod support;

use std::time::Duration;

use support::containers::TestContainers;
use support::eventually;
use support::influx::shared;
use support::service::Service;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_with_influxdb_unreachable_reports_undelivered_points_and_exits_1() {
    let containers = TestContainers::new("undelivered");
    containers.idle("idle");
    let nowhere = support::free_port().to_string();
    let influx = shared();
    let mut service = Service::start(
        influx,
        "never_written",
        &[
            ("INFLUXDB_PORT", &nowhere),
            ("SHUTDOWN_TIMEOUT_MS", "1500"),
            ("INFLUXDB_RETRY_DELAY", "100"),
        ],
    );
    service
        .wait_for_metric(
            r#"dss_write_errors_total{class="unreachable"}"#,
            1.0,
            Duration::from_secs(20),
        )
        .await;
    service.wait_for_collected(Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let started = std::time::Instant::now();
    let status = service.terminate().await;
    let took = started.elapsed();
    assert_eq!(status.code(), Some(1), "log:\n{}", service.logs());
    assert!(
        took < Duration::from_secs(5),
        "shutdown took {took:?} with a 1.5 s timeout"
    );
    let logs = service.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("were not delivered"))
        .unwrap_or_else(|| panic!("no undelivered count in log:\n{logs}"));
    let undelivered: u64 = line
        .split("shutdown timeout reached: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(undelivered >= 2, "{line}");
    assert_eq!(
        logs.matches("is unreachable").count(),
        1,
        "the outage is logged once, not once per attempt:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn essential_fields_store_exactly_the_five_essential_fields() {
    let influx = shared();
    let db = "essential_fields";
    let containers = TestContainers::new("essential");
    let id = containers.idle("idle");
    let mut service = Service::start(influx, db, &[("STATS_FIELDS", "ESSENTIAL")]);
    let q = format!("SELECT * FROM docker_stats WHERE container_id = '{id}'");
    let rows = eventually(Duration::from_secs(20), "two points", || async {
        let rows = influx.rows(db, &q).await;
        (rows.len() >= 2).then_some(rows)
    })
    .await;
    assert!(service.terminate().await.success());
    let tags = [
        "time",
        "container_id",
        "container_name",
        "host",
        "image",
        "source",
    ];
    assert_eq!(rows[0]["source"], "stream", "the default source");
    let mut fields: Vec<&str> = rows[0]
        .keys()
        .map(String::as_str)
        .filter(|k| !tags.contains(k))
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "cpu_percent",
            "mem_total",
            "mem_used",
            "net_in_bytes",
            "net_out_bytes"
        ]
    );
    assert!(rows.iter().skip(1).all(|r| r["cpu_percent"].is_number()));
    // Ratios are floats and counters integers, whatever the value.
    let types = influx.rows(db, "SHOW FIELD KEYS FROM docker_stats").await;
    let type_of = |field: &str| {
        types
            .iter()
            .find(|r| r["fieldKey"] == field)
            .map(|r| r["fieldType"].as_str().unwrap().to_string())
    };
    assert_eq!(type_of("cpu_percent").as_deref(), Some("float"));
    assert_eq!(type_of("mem_used").as_deref(), Some("integer"));
    assert_eq!(type_of("net_in_bytes").as_deref(), Some("integer"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_selected_field_the_engine_lacks_is_warned_about_once() {
    let influx = shared();
    let db = "missing_field";
    let containers = TestContainers::new("missing");
    // `mem_commit_bytes` comes from Windows engines only. (A pids limit is no
    // such field: with the systemd driver each container's scope has one.)
    let first = containers.idle("one");
    let second = containers.idle("two");
    let mut service = Service::start(influx, db, &[("STATS_FIELDS", "mem_used,mem_commit_bytes")]);
    for id in [&first, &second] {
        let q = format!("SELECT count(mem_used) FROM docker_stats WHERE container_id = '{id}'");
        eventually(Duration::from_secs(20), "three points", || async {
            let rows = influx.rows(db, &q).await;
            (rows.first().and_then(|r| r["count"].as_u64()).unwrap_or(0) >= 3).then_some(())
        })
        .await;
    }
    assert!(service.terminate().await.success());
    let warnings = service
        .logs()
        .matches("field mem_commit_bytes is selected")
        .count();
    assert_eq!(warnings, 1, "log:\n{}", service.logs());
}
