//! `stats.sampling = "cgroup"` end to end: the real service samples real
//! containers from their cgroups every 100 ms into a real InfluxDB, and the
//! figures agree with the engine's own stats stream.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::Value;
use support::containers::{docker, TestContainers};
use support::influx::{shared, InfluxServer};
use support::samples::{
    cli_cpu_percent, cli_mem_used, preread_ns, read_ns, record_sample_count, stored_points,
};
use support::service::Service;

/// The tests of this file each run a service that samples every container
/// on the host ten times a second; one at a time keeps them from timing
/// each other.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CGROUP_100MS: &[(&str, &str)] = &[("STATS_SAMPLING", "cgroup"), ("STATS_INTERVAL", "100ms")];

fn float(row: &HashMap<String, Value>, field: &str) -> Option<f64> {
    row.get(field).and_then(Value::as_f64)
}

/// The container's stored points from the cgroup source, by timestamp.
async fn cgroup_points(
    influx: &InfluxServer,
    db: &str,
    id: &str,
) -> BTreeMap<i64, HashMap<String, Value>> {
    let mut points = stored_points(influx, db, id).await;
    points.retain(|_, row| row.get("source").and_then(Value::as_str) == Some("cgroup"));
    points
}

/// One engine sample beside the cgroup readings of the same second.
#[derive(Debug)]
#[allow(dead_code)] // Read through Debug in failure messages.
struct Second {
    /// `docker stats`' figure.
    engine_cpu: f64,
    /// The engine's container CPU counter over its own `preread..read`.
    exact: f64,
    /// The cgroup source's readings of that second, averaged over the time
    /// each covers.
    cgroup_cpu: f64,
    /// How long those readings cover, in seconds.
    covered: f64,
    engine_mem: f64,
    /// The cgroup readings just before and just after the engine's, as
    /// (lower, higher).
    cgroup_mem: (f64, f64),
}

/// CPU % from the engine's container counter over the engine's own
/// timestamps: the same quantity as `cpu_percent`, without the host CPU
/// time the engine reads at another moment.
fn engine_counter_percent(sample: &bollard::models::ContainerStatsResponse) -> Option<f64> {
    let now = sample.cpu_stats.as_ref()?.cpu_usage.as_ref()?.total_usage?;
    let before = sample
        .precpu_stats
        .as_ref()?
        .cpu_usage
        .as_ref()?
        .total_usage?;
    let window = read_ns(sample) - preread_ns(sample);
    (before > 0 && window > 0).then(|| now.saturating_sub(before) as f64 / window as f64 * 100.0)
}

/// The cgroup readings taken within the engine's second `from..=to`, each
/// covering the time since the reading before it: their `cpu_percent`
/// averaged over the time each covers, the seconds they cover together, and
/// how many there are. A reading that came late covers more time and so
/// weighs more, as it does in the container's usage.
fn time_weighted_cpu(
    points: &BTreeMap<i64, HashMap<String, Value>>,
    from: i64,
    to: i64,
) -> Option<(f64, f64, usize)> {
    let mut previous = points.range(..=from).next_back().map(|(t, _)| *t);
    let (mut weighted, mut covered, mut readings) = (0.0, 0i64, 0);
    for (&at, row) in points.range(from + 1..=to) {
        if let (Some(before), Some(cpu)) = (previous, float(row, "cpu_percent")) {
            weighted += cpu * (at - before) as f64;
            covered += at - before;
            readings += 1;
        }
        previous = Some(at);
    }
    (covered > 0).then(|| (weighted / covered as f64, covered as f64 / 1e9, readings))
}

#[tokio::test(flavor = "multi_thread")]
async fn cpu_and_memory_agree_with_the_engines_stream_second_by_second() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let influx = shared();
    let db = "cgroup_agreement";
    let containers = TestContainers::new("cgroup-agree");
    let busy = containers.run(
        "busy",
        &["--cpus", "0.5", "--memory", "64m"],
        &["sh", "-c", "while :; do :; done"],
    );
    let idle = containers.idle("idle");
    let mut service = Service::start(influx, db, CGROUP_100MS);
    service.wait_for_following(Duration::from_secs(20)).await;

    // The engine's own samples of both containers over the same seconds:
    // ten, the first without a previous one. Counted, not timed: an engine
    // under emulation in the platform lane sent only 6 in 8 s.
    let limit = Duration::from_secs(40);
    let (busy_samples, idle_samples) = tokio::join!(
        record_sample_count(busy.clone(), 10, limit),
        record_sample_count(idle.clone(), 10, limit)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    service.terminate().await;

    // What the kernel holds each container to, where it holds it: a loop
    // that never sleeps under a quota of half a core gets exactly 50 ms of
    // every 100 ms period.
    let cases = [
        ("busy", &busy, busy_samples, Some(50.0)),
        ("idle", &idle, idle_samples, None),
    ];
    for (name, id, samples, held_at) in cases {
        let points = cgroup_points(influx, db, id).await;
        let mut seconds = Vec::new();
        for sample in &samples {
            // Only samples with a previous one (and so a `preread`).
            let Some(engine_cpu) = cli_cpu_percent(sample) else {
                continue;
            };
            let Some(exact) = engine_counter_percent(sample) else {
                continue;
            };
            // The cgroup readings taken over the same second as the
            // engine's sample, each covering the 100 ms before it.
            let (from, to) = (preread_ns(sample), read_ns(sample));
            let Some((average, covered, readings)) = time_weighted_cpu(&points, from, to) else {
                panic!("{name}: no cgroup readings in the engine's second {from}..{to}");
            };
            assert!(
                readings >= 7,
                "{name}: only {readings} cgroup readings in the engine's second {from}..{to}"
            );
            // The engine read memory at `to`, between two cgroup readings:
            // the last before and the first after. Memory may move between
            // them (an idle container's fell by 48 KiB, 10% of it, in the
            // lane), so the engine's figure is judged against both.
            let mem_at = |row: &HashMap<String, Value>| row["mem_used"].as_f64().unwrap();
            let before = points.range(..=to).next_back().map(|(_, row)| mem_at(row));
            let after = points.range(to + 1..).next().map(|(_, row)| mem_at(row));
            let (low, high) = match (before, after) {
                (Some(b), Some(a)) => (b.min(a), b.max(a)),
                (Some(only), None) | (None, Some(only)) => (only, only),
                (None, None) => panic!("{name}: no reading near the engine's at {to}"),
            };
            seconds.push(Second {
                engine_cpu,
                exact,
                cgroup_cpu: average,
                covered,
                engine_mem: cli_mem_used(sample) as f64,
                cgroup_mem: (low, high),
            });
        }
        assert!(
            seconds.len() >= 5,
            "{name}: only {} engine samples compared",
            seconds.len()
        );
        // Second by second the reference is the kernel where it holds the
        // container to a figure, and the engine's own CPU counter where it
        // does not (an idle container, whose counter barely moves). The
        // engine's counter is a poor per-second reference for a busy one:
        // the engine reads its clock and the counter apart (through the
        // shim, one RPC away), and on a busy 2-core host that gap varies by
        // tens of milliseconds, so a container the kernel held at 50 read
        // 47.9, 52.0, 47.9, 51.9 second after second in CI while the cgroup
        // source read 49.7 to 50.3. Those errors cancel over the window,
        // where the two are compared below.
        //
        // The kernel holds a quota per 100 ms period, not per second: in a
        // period cut by either end of the readings' span, the container's
        // share q of it may fall inside or outside the span, which moves
        // the span's usage by at most q (1 - q) of a period at each end (a
        // quarter period, 25 ms, at half a core). So the bound is 50 ms
        // over the span: 5 points for a second. In CI one
        // second read 47.79 that way beside its neighbours' 49.9 to 50.4.
        // The idle container's counter barely moves; 2 points is 40 ms of
        // the source's own delay at half a core. Under emulation a vCPU can
        // stall for tens of milliseconds at each end of a second while the
        // guest's clock runs on: 60 ms more, so 6 points for the idle one
        // and 11 for the busy one.
        let stalls = if support::emulated_cpu() { 0.060 } else { 0.0 };
        const PERIOD_S: f64 = 0.100;
        for second in &seconds {
            let (reference, bound, judge) = match held_at {
                Some(quota) => (
                    quota,
                    {
                        let share = quota / 100.0;
                        let both_edges = 2.0 * share * (1.0 - share) * PERIOD_S;
                        100.0 * (both_edges + stalls) / second.covered
                    },
                    "the kernel's quota held it at",
                ),
                None => (
                    second.exact,
                    if support::emulated_cpu() { 6.0 } else { 2.0 },
                    "the engine's counter says it was",
                ),
            };
            assert!(
                (second.cgroup_cpu - reference).abs() <= bound,
                "{name}: cgroup cpu_percent averaged {:.2} over {:.3} s in which {judge} {reference:.2} (bound {bound:.2}); every second: {seconds:.2?}",
                second.cgroup_cpu,
                second.covered,
            );
            let (low, high) = second.cgroup_mem;
            let margin = 0.02 * second.engine_mem;
            assert!(
                second.engine_mem >= low - margin && second.engine_mem <= high + margin,
                "{name}: the engine's mem_used {} is not within 2% of the cgroup readings around it ({low}..{high}); every second: {seconds:.2?}",
                second.engine_mem
            );
        }
        // Over the whole window both timing errors average out: each
        // second's error at its end is the next second's opposite error at
        // its start. So the means agree within 2 points on any platform.
        let mean =
            |f: fn(&Second) -> f64| seconds.iter().map(f).sum::<f64>() / seconds.len() as f64;
        let (engine_mean, exact_mean, cgroup_mean) = (
            mean(|s| s.engine_cpu),
            mean(|s| s.exact),
            mean(|s| s.cgroup_cpu),
        );
        let widest = seconds
            .iter()
            .map(|s| (s.cgroup_cpu - s.exact).abs())
            .fold(0.0, f64::max);
        let engine_widest = seconds
            .iter()
            .map(|s| (s.engine_cpu - s.exact).abs())
            .fold(0.0, f64::max);
        eprintln!(
            "{name}: cgroup vs engine counter at most {widest:.2} points apart; the engine's printed figure at most {engine_widest:.2}; means {engine_mean:.2} (engine) {exact_mean:.2} (engine counter) {cgroup_mean:.2} (cgroup)"
        );
        assert!(
            (exact_mean - cgroup_mean).abs() <= 2.0,
            "{name}: the engine's counter averaged {exact_mean:.2}, the cgroup source's cpu_percent {cgroup_mean:.2}; every second: {seconds:.2?}"
        );
        // The printed figure's host time is read apart from the counter, in
        // 10 ms ticks; under emulation its first seconds ran up to 7 points
        // high (57.4 for a container held at 50), which 8 seconds average
        // down to about 2.5.
        let printed = if support::emulated_cpu() { 4.0 } else { 2.0 };
        assert!(
            (engine_mean - cgroup_mean).abs() <= printed,
            "{name}: the engine's cpu_percent averaged {engine_mean:.2}, the cgroup source's {cgroup_mean:.2}; every second: {seconds:.2?}"
        );
        if name == "busy" {
            let mut throttled = points
                .values()
                .filter_map(|r| float(r, "cpu_throttled_periods"));
            assert!(
                throttled.next_back().unwrap_or(0.0) > 0.0,
                "a container held at half a core is throttled"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_containers_at_100ms_get_nearly_every_sample_100ms_apart() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let influx = shared();
    let db = "cgroup_rate";
    let containers = TestContainers::new("cgroup-rate");
    let names = containers.run_many("c", 20);
    let fast = containers.run(
        "fast",
        &["--label", "docker-stats.interval=50ms"],
        &["sleep", "3600"],
    );
    let mut service = Service::start(influx, db, CGROUP_100MS);
    service.wait_for_following(Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    service.terminate().await;

    // Judge 8 whole seconds in the middle, away from start-up and shutdown.
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let (from, to) = (now_ns - 11_000_000_000, now_ns - 3_000_000_000);
    let spacing = |points: &BTreeMap<i64, HashMap<String, Value>>| -> Vec<i64> {
        let times: Vec<i64> = points.range(from..to).map(|(t, _)| *t).collect();
        times.windows(2).map(|w| w[1] - w[0]).collect()
    };
    // A tick the CPU reaches too late is skipped, not made up. Natively 95%
    // are read; under emulation 21 sampling tasks share two TCG vCPUs with
    // the engine, and on a host where the whole lane ran 2.5 times slower
    // 75 of 80 were (94%): 88% leaves room below that.
    let least_readings = if support::emulated_cpu() { 70 } else { 76 };
    let mut gaps = Vec::new();
    for name in &names {
        let id = docker(&["inspect", "--format", "{{.Id}}", name]);
        let points = cgroup_points(influx, db, id.trim()).await;
        let stored = points.range(from..to).count();
        assert!(
            (least_readings..=81).contains(&stored),
            "{name}: {stored} readings stored of the 80 requested in 8 s (at least {least_readings}, and none made up)"
        );
        gaps.extend(spacing(&points));
    }
    // The timer fires on time; what moves a reading is the CPU getting to
    // it. Natively 95% of readings are within 10 ms of 100 ms apart. Under
    // emulation 21 sampling tasks share two TCG vCPUs with the engine and
    // influxd, and how late the CPU gets to a tick has no bound: the p95
    // was 15 ms on one host and 49.5 and 72.8 ms on a slower one. There the
    // count above proves no tick is lost, and the median gap proves the
    // clock: a late reading makes one gap longer and the next shorter, so
    // the middle gap stays at the interval.
    let off_by = |gap: &i64| (gap - 100_000_000).abs();
    if support::emulated_cpu() {
        gaps.sort();
        let median = gaps[gaps.len() / 2];
        assert!(
            off_by(&median) <= 5_000_000,
            "the median gap between readings is {:.1} ms, not 100 ms",
            median as f64 / 1e6
        );
    } else {
        gaps.sort_by_key(off_by);
        let p95 = off_by(&gaps[gaps.len() * 95 / 100]);
        assert!(
            p95 <= 10_000_000,
            "95% of readings are within {:.1} ms of 100 ms apart, not 10 ms",
            p95 as f64 / 1e6
        );
    }

    // Its ticks coincide with the others' every 100 ms and it may be read
    // after them then, so its gaps alternate around 50 ms; their count is
    // what shows the interval. Its tick between two of theirs comes only
    // if the readings of all 21 at the shared tick end within 50 ms: they
    // take about 1.5 ms natively, but more than 50 ms on two TCG vCPUs
    // (82 readings were seen there once a reading held the pressure, peak
    // and memory events files too), and a late tick is skipped, never made
    // up. So the VM proves it is read no less often than the others and
    // never more than asked; the host proves the 50 ms.
    let fast_points = cgroup_points(influx, db, &fast).await;
    let fast_stored = fast_points.range(from..to).count();
    let expected = if support::emulated_cpu() {
        least_readings..=162
    } else {
        152..=162
    };
    assert!(
        expected.contains(&fast_stored),
        "the docker-stats.interval=50ms container has {fast_stored} readings in 8 s, not {expected:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_without_readable_cgroup_files_falls_back_to_the_stream_once() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let influx = shared();
    let db = "cgroup_fallback";
    let containers = TestContainers::new("cgroup-fallback");
    let id = containers.idle("idle");
    // A cgroup root with nothing under it: no container's files are found.
    let empty_root = support::influx::tempdir("dss-no-cgroups");
    let mut env = CGROUP_100MS.to_vec();
    env.push(("CGROUP_ROOT", &empty_root));
    let mut service = Service::start(influx, db, &env);
    support::samples::wait_for_points(influx, db, &id, Duration::from_secs(20)).await;
    service.terminate().await;

    let points = stored_points(influx, db, &id).await;
    assert!(
        points
            .values()
            .all(|row| row.get("source").and_then(Value::as_str) == Some("stream")),
        "every point came from the stream"
    );
    let logs = service.logs();
    let short = &id[..12];
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("cannot sample container") && l.contains(short))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning for the container: {logs}");
    assert!(
        warnings[0].contains(&empty_root) && warnings[0].contains("stats stream"),
        "the warning names the paths tried and what happens instead: {}",
        warnings[0]
    );
    let _ = std::fs::remove_dir_all(&empty_root);
}

#[tokio::test(flavor = "multi_thread")]
async fn essential_fields_alone_are_stored_and_follow_a_limit_changed_by_docker_update() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let influx = shared();
    let db = "cgroup_essential";
    let containers = TestContainers::new("cgroup-essential");
    let id = containers.run("limited", &["--memory", "64m"], &["sleep", "3600"]);
    let mut env = CGROUP_100MS.to_vec();
    env.push(("STATS_FIELDS", "ESSENTIAL"));
    let mut service = Service::start(influx, db, &env);
    service.wait_for_following(Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let updated_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    docker(&["update", "--memory", "96m", "--memory-swap", "192m", &id]);
    // The new limit is in the cgroup once the CLI returns; under emulation
    // the CLI alone takes seconds (3 s seen), so "after" counts from here.
    let applied_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    tokio::time::sleep(Duration::from_secs(4)).await;
    service.terminate().await;

    let field_keys = influx.rows(db, "SHOW FIELD KEYS FROM docker_stats").await;
    let mut stored: Vec<&str> = field_keys
        .iter()
        .map(|row| row["fieldKey"].as_str().unwrap())
        .collect();
    stored.sort_unstable();
    let mut essential = docker_stats_service::schema::fields::ESSENTIAL.to_vec();
    essential.sort_unstable();
    assert_eq!(stored, essential, "the fields stored");

    let points = cgroup_points(influx, db, &id).await;
    // Every reading in [from, to) has `mib` as its mem_total, and there are
    // at least `at_least` of them.
    let expect_mem_total = |from: i64, to: i64, mib: f64, at_least: usize, when: &str| {
        let totals: Vec<Option<f64>> = points
            .range(from..to)
            .map(|(_, row)| float(row, "mem_total"))
            .collect();
        assert!(totals.len() >= at_least, "{} readings {when}", totals.len());
        assert!(
            totals
                .iter()
                .all(|total| *total == Some(mib * 1024.0 * 1024.0)),
            "mem_total {when}: {totals:?}"
        );
    };
    expect_mem_total(0, updated_at, 64.0, 20, "before the update");
    let settled = applied_at + 2_000_000_000;
    expect_mem_total(settled, i64::MAX, 96.0, 10, "from 2 s after the update");
}
