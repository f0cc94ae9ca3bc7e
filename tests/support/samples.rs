//! What the engine itself says, for comparison with what the service stored.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::models::ContainerStatsResponse;
use bollard::query_parameters::StatsOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;
use serde_json::Value;

use super::eventually;
use super::influx::InfluxServer;

/// Subscribes to a container's stats the way `docker stats` does and keeps
/// every sample for `window`.
pub async fn record_samples(id: String, window: Duration) -> Vec<ContainerStatsResponse> {
    record(id, usize::MAX, window).await
}

/// Like `record_samples`, but stops at `count` samples, or at `limit` if the
/// engine is slower than one a second (a TCG-emulated engine is).
pub async fn record_sample_count(
    id: String,
    count: usize,
    limit: Duration,
) -> Vec<ContainerStatsResponse> {
    record(id, count, limit).await
}

async fn record(id: String, count: usize, limit: Duration) -> Vec<ContainerStatsResponse> {
    let docker = Docker::connect_with_local_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap();
    let options = StatsOptionsBuilder::new().stream(true).build();
    let mut stream = docker.stats(&id, Some(options));
    let deadline = tokio::time::Instant::now() + limit;
    let mut samples = Vec::new();
    while samples.len() < count {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(item)) => samples.push(item.expect("a stats sample")),
            _ => break,
        }
    }
    samples
}

/// The Docker CLI's CPU % formula, written out again here so the test does
/// not trust the service's own implementation. `None` without a previous sample.
pub fn cli_cpu_percent(s: &ContainerStatsResponse) -> Option<f64> {
    let cpu = s.cpu_stats.as_ref()?;
    let pre = s.precpu_stats.as_ref()?;
    let pre_total = pre.cpu_usage.as_ref()?.total_usage?;
    let pre_system = pre.system_cpu_usage?;
    if pre_total == 0 || pre_system == 0 {
        return None;
    }
    let cpu_delta = cpu.cpu_usage.as_ref()?.total_usage? as f64 - pre_total as f64;
    let system_delta = cpu.system_cpu_usage? as f64 - pre_system as f64;
    let online = cpu.online_cpus? as f64;
    Some(if cpu_delta > 0.0 && system_delta > 0.0 {
        cpu_delta / system_delta * online * 100.0
    } else {
        0.0
    })
}

/// The CLI's "used" memory: usage less the inactive page cache, named
/// `total_inactive_file` by cgroup v1 engines and `inactive_file` by v2
/// ones; Podman sends neither, and then it is the usage.
pub fn cli_mem_used(s: &ContainerStatsResponse) -> u64 {
    let m = s.memory_stats.as_ref().unwrap();
    let usage = m.usage.unwrap();
    let stats = m.stats.as_ref();
    let inactive = stats
        .and_then(|stats| stats.get("total_inactive_file"))
        .or_else(|| stats.and_then(|stats| stats.get("inactive_file")));
    match inactive {
        Some(&inactive) if inactive < usage => usage - inactive,
        _ => usage,
    }
}

/// A sample's `read` time in nanoseconds.
pub fn read_ns(sample: &ContainerStatsResponse) -> i64 {
    rfc3339_ns(sample.read.as_deref().unwrap())
}

/// A sample's `preread` time (its previous sample's `read`) in nanoseconds.
pub fn preread_ns(sample: &ContainerStatsResponse) -> i64 {
    rfc3339_ns(sample.preread.as_deref().unwrap())
}

fn rfc3339_ns(text: &str) -> i64 {
    let time = humantime::parse_rfc3339_weak(text).unwrap();
    time.duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Stored `docker_stats` points of one container, by timestamp.
pub async fn stored_points(
    influx: &InfluxServer,
    db: &str,
    id: &str,
) -> BTreeMap<i64, HashMap<String, Value>> {
    let rows = influx
        .rows(
            db,
            &format!("SELECT * FROM docker_stats WHERE container_id = '{id}'"),
        )
        .await;
    rows.into_iter()
        .map(|row| (row["time"].as_i64().unwrap(), row))
        .collect()
}

pub async fn count_points(influx: &InfluxServer, db: &str, id: &str) -> u64 {
    let q = format!("SELECT count(mem_used) FROM docker_stats WHERE container_id = '{id}'");
    influx.count(db, &q).await
}

/// Waits (up to a minute) until `id` has at least `at_least` points.
pub async fn wait_for_count(influx: &InfluxServer, db: &str, id: &str, at_least: u64) {
    eventually(Duration::from_secs(60), "points", || async {
        (count_points(influx, db, id).await >= at_least).then_some(())
    })
    .await;
}

/// A stored point's field as a number.
pub fn float(row: &HashMap<String, Value>, field: &str) -> Option<f64> {
    row.get(field).and_then(Value::as_f64)
}

/// The mean of a field over the points after the first `skip`.
pub fn mean_after(points: &BTreeMap<i64, HashMap<String, Value>>, field: &str, skip: usize) -> f64 {
    let values: Vec<f64> = points
        .values()
        .skip(skip)
        .filter_map(|row| float(row, field))
        .collect();
    assert!(!values.is_empty(), "no {field} stored");
    values.iter().sum::<f64>() / values.len() as f64
}

pub async fn wait_for_points(influx: &InfluxServer, db: &str, id: &str, timeout: Duration) {
    let what = format!("points of container {id}");
    eventually(timeout, &what, || async {
        (count_points(influx, db, id).await > 0).then_some(())
    })
    .await;
}

/// Waits for the one `docker_events` point of `action` for the container,
/// and returns it (with its `time` in nanoseconds); more than one fails.
pub async fn wait_for_event(
    influx: &InfluxServer,
    db: &str,
    id: &str,
    action: &str,
    timeout: Duration,
) -> HashMap<String, Value> {
    let query =
        format!("SELECT * FROM docker_events WHERE action = '{action}' AND container_id = '{id}'");
    let mut rows = eventually(
        timeout,
        &format!("a docker_events {action} point"),
        || async {
            let rows = influx.rows(db, &query).await;
            (!rows.is_empty()).then_some(rows)
        },
    )
    .await;
    assert_eq!(rows.len(), 1, "one {action} point: {rows:?}");
    rows.remove(0)
}

/// Every point stored in `db` (stats and events): with the service's
/// written count, this shows that nothing was written twice, since InfluxDB
/// keeps one point per series and timestamp.
pub async fn all_points(influx: &InfluxServer, db: &str) -> u64 {
    influx
        .count(db, "SELECT count(mem_used) FROM docker_stats")
        .await
        + influx
            .count(db, "SELECT count(message) FROM docker_events")
            .await
}

/// Waits until every sample is stored and returns nothing; panics naming
/// the first one missing.
pub async fn wait_until_all_stored(
    influx: &InfluxServer,
    db: &str,
    id: &str,
    samples: &[ContainerStatsResponse],
    timeout: Duration,
) {
    let wanted: Vec<i64> = samples.iter().map(read_ns).collect();
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let stored = stored_points(influx, db, id).await;
        let missing: Vec<&i64> = wanted.iter().filter(|t| !stored.contains_key(t)).collect();
        if missing.is_empty() {
            return;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "{} of {} samples of {id} were never stored, first at {}",
                missing.len(),
                wanted.len(),
                missing[0]
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The books against counts the service did not make: over the window the
/// test recorded from the daemon itself, InfluxDB holds exactly those
/// samples of `id` (none missing, none extra), and the service's `written`
/// is what InfluxDB holds in `db` (one point per series and timestamp, so a
/// point written twice would show as one less).
pub async fn assert_books_match_the_daemon_and_influxdb(
    influx: &InfluxServer,
    db: &str,
    id: &str,
    samples: &[ContainerStatsResponse],
    books: &docker_stats_service::telemetry::counters::BooksLine,
) {
    let recorded: std::collections::BTreeSet<i64> = samples.iter().map(read_ns).collect();
    let (Some(first), Some(last)) = (recorded.first(), recorded.last()) else {
        panic!("no samples recorded for {id}");
    };
    let stored: std::collections::BTreeSet<i64> = stored_points(influx, db, id)
        .await
        .into_keys()
        .filter(|t| (first..=last).contains(&t))
        .collect();
    let missing: Vec<&i64> = recorded.difference(&stored).collect();
    let extra: Vec<&i64> = stored.difference(&recorded).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "over the recorded window of {id}: {} daemon samples not stored, {} stored points the daemon never sent (first missing {:?}, first extra {:?})",
        missing.len(),
        extra.len(),
        missing.first(),
        extra.first()
    );
    assert_eq!(
        books.written,
        all_points(influx, db).await,
        "the service's written count is not what InfluxDB holds"
    );
}
