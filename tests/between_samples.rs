//! What happens between two readings, from the cgroup source against the
//! real engine and a real InfluxDB: time stalled on CPU, memory and I/O,
//! the true peak of memory, and every process the OOM killer kills, on the
//! kernels each platform runs (cgroup v1 with systemd's hybrid mount here,
//! cgroup v2 on Linux 6.12 in the platform lane's VM).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::containers::{docker, TestContainers};
use support::influx::{shared, InfluxServer};
use support::samples::{stored_points, wait_for_event};
use support::service::Service;

const CGROUP_100MS: &[(&str, &str)] = &[("STATS_SAMPLING", "cgroup"), ("STATS_INTERVAL", "100ms")];
const MIB: u64 = 1 << 20;

type Points = BTreeMap<i64, HashMap<String, Value>>;

/// What this host's kernel offers per container.
struct Kernel {
    release: String,
    unified: bool,
    /// Pressure stall files for the container: cgroup v2, or v1 with the
    /// hybrid layout's unified mount.
    pressure: bool,
    /// `memory.peak` can be reset per reader: v2 on Linux 6.12 or later.
    peak_reset: bool,
}

impl Kernel {
    fn of_this_host() -> Kernel {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap()
            .trim()
            .to_string();
        let unified = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let hybrid = Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists();
        let mut numbers = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse::<u32>().unwrap_or(0));
        let version = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
        Kernel {
            pressure: unified || hybrid,
            peak_reset: unified && version >= (6, 12),
            unified,
            release,
        }
    }
}

/// A file of the container's own cgroup, found from its init process as
/// the kernel lists it (not as the service finds it): `controller` names
/// the v1 hierarchy, and is ignored on v2.
fn cgroup_file(id: &str, controller: &str, file: &str, kernel: &Kernel) -> PathBuf {
    let pid = docker(&["inspect", "--format", "{{.State.Pid}}", id]);
    let membership = std::fs::read_to_string(format!("/proc/{}/cgroup", pid.trim())).unwrap();
    let path = membership
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let wanted = if kernel.unified {
                controllers.is_empty()
            } else {
                controllers.split(',').any(|c| c == controller)
            };
            wanted.then(|| path.to_string())
        })
        .next()
        .expect("the container's cgroup");
    let mount = if kernel.unified {
        "/sys/fs/cgroup".to_string()
    } else {
        format!("/sys/fs/cgroup/{controller}")
    };
    PathBuf::from(format!("{mount}{path}/{file}"))
}

fn keyed(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text:?}"))
}

fn float(row: &HashMap<String, Value>, field: &str) -> Option<f64> {
    row.get(field).and_then(Value::as_f64)
}

/// An integer field, which must be stored as one.
fn int(row: &HashMap<String, Value>, field: &str) -> Option<u64> {
    let value = row.get(field).filter(|v| !v.is_null())?;
    Some(
        value
            .as_u64()
            .unwrap_or_else(|| panic!("{field} is stored as {value}, not an integer")),
    )
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The container's points from the cgroup source.
async fn cgroup_points(influx: &InfluxServer, db: &str, id: &str) -> Points {
    let mut points = stored_points(influx, db, id).await;
    points.retain(|_, row| row.get("source").and_then(Value::as_str) == Some("cgroup"));
    points
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// The block device that holds `dir`, for `--device-write-bps`.
fn device_of(dir: &str) -> String {
    let out = std::process::Command::new("findmnt")
        .args(["-no", "SOURCE", "-T", dir])
        .output()
        .expect("findmnt (util-linux)");
    let source = String::from_utf8(out.stdout).unwrap();
    let device = source.trim().split('[').next().unwrap().to_string();
    assert!(
        device.starts_with("/dev/"),
        "{dir} is not on a block device ({source:?})"
    );
    device
}

/// A directory on a real disk (not a tmpfs `/tmp`), removed at the end.
struct DiskDir(String);

impl DiskDir {
    fn new(name: &str) -> DiskDir {
        let dir = format!("/var/tmp/dss-test-{name}-{}", std::process::id());
        std::fs::create_dir_all(&dir).unwrap();
        DiskDir(dir)
    }
}

impl Drop for DiskDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stalls_peaks_and_oom_kills_between_readings_are_stored() {
    let kernel = Kernel::of_this_host();
    eprintln!(
        "kernel {}: cgroup {}, pressure per container {}, memory.peak reset per reader {}",
        kernel.release,
        if kernel.unified { "v2" } else { "v1" },
        kernel.pressure,
        kernel.peak_reset
    );
    let influx = shared();
    let db = "between_samples";
    let containers = TestContainers::new("between");
    let cache_dir = DiskDir::new("cache");
    let io_dir = DiskDir::new("io");
    let device = device_of(&io_dir.0);

    let cache_volume = format!("{}:/data", cache_dir.0);
    let io_volume = format!("{}:/data", io_dir.0);
    let write_limit = format!("{device}:1mb");
    // Started side by side: an emulated engine takes seconds per container.
    let [starved, idle, cache, io, oom, spiky] = std::thread::scope(|scope| {
        let started = [
            scope.spawn(|| containers.cpu_starved("starved")),
            scope.spawn(|| containers.idle("idle")),
            // Page cache written under a tight limit must be reclaimed first.
            scope.spawn(|| {
                containers.run(
                    "cache",
                    &["-m", "32m", "-v", &cache_volume],
                    &[
                        "sh",
                        "-c",
                        "while :; do dd if=/dev/zero of=/data/cache bs=1M count=128 2>/dev/null; done",
                    ],
                )
            }),
            // Direct writes held to 1 MB/s wait for the disk.
            scope.spawn(|| {
                containers.run(
                    "io",
                    &["--device-write-bps", &write_limit, "-v", &io_volume],
                    &[
                        "sh",
                        "-c",
                        "while :; do dd if=/dev/zero of=/data/io bs=64k count=16 oflag=direct 2>/dev/null; done",
                    ],
                )
            }),
            // A worker killed by the OOM killer under a shell that lives
            // on; it starts when the test says, once the service follows.
            scope.spawn(|| containers.oom_worker("oom")),
            // 40 MiB for as long as dd takes to fill it, once a second:
            // far shorter than the 100 ms between readings.
            scope.spawn(|| {
                containers.run(
                    "spiky",
                    &["-m", "256m"],
                    &[
                        "sh",
                        "-c",
                        "while :; do sleep 1; dd if=/dev/zero of=/dev/null bs=40M count=1 2>/dev/null; done",
                    ],
                )
            }),
        ];
        started.map(|container| container.join().expect("a started container"))
    });

    let mut service = Service::start(influx, db, CGROUP_100MS);
    service
        .wait_for_metric("dss_active_streams", 6.0, Duration::from_secs(60))
        .await;
    support::samples::wait_for_points(influx, db, &oom, Duration::from_secs(30)).await;
    let window_start = now_ns() + 1_000_000_000;
    tokio::time::sleep(Duration::from_secs(8)).await;

    // The throttling fields agree with the kernel's cpu.stat: a reading
    // taken before the file is read here holds at most its counts, one
    // taken after at least.
    let cpu_stat = cgroup_file(&starved, "cpu", "cpu.stat", &kernel);
    let before_read = now_ns();
    let stat = std::fs::read_to_string(&cpu_stat).unwrap();
    let after_read = now_ns();

    containers.kill_worker(&oom);
    let kill = wait_for_event(influx, db, &oom, "oom_kill", Duration::from_secs(30)).await;
    let oom_kills_seen = service.metric("dss_oom_kills_total").await;
    // Stats go on after the kill.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let window_end = now_ns();
    service.terminate().await;

    let in_window = |points: &Points| -> Vec<HashMap<String, Value>> {
        points
            .range(window_start..window_end)
            .map(|(_, row)| row.clone())
            .collect()
    };
    let starved_points = cgroup_points(influx, db, &starved).await;

    // CPU pressure and throttling.
    let throttled_before = starved_points
        .range(..before_read - 50_000_000)
        .next_back()
        .map(|(_, row)| row.clone())
        .expect("a reading before cpu.stat was read");
    let throttled_after = starved_points
        .range(after_read + 50_000_000..)
        .next()
        .map(|(_, row)| row.clone())
        .expect("a reading after cpu.stat was read");
    let throttled_time_key = if kernel.unified {
        "throttled_usec"
    } else {
        "throttled_time"
    };
    let ns_per_unit = if kernel.unified { 1_000 } else { 1 };
    for (field, key, scale) in [
        ("cpu_throttling_periods", "nr_periods", 1),
        ("cpu_throttled_periods", "nr_throttled", 1),
        ("cpu_throttled_time", throttled_time_key, ns_per_unit),
    ] {
        let file = keyed(&stat, key) * scale;
        let (before, after) = (
            int(&throttled_before, field).unwrap(),
            int(&throttled_after, field).unwrap(),
        );
        assert!(
            before <= file && file <= after,
            "{field}: cpu.stat's {key} was {file}, between readings of {before} and {after}"
        );
    }
    assert!(
        keyed(&stat, "nr_throttled") > 0,
        "the container was throttled"
    );

    let busy: Vec<HashMap<String, Value>> = in_window(&starved_points);
    let idle_points = in_window(&cgroup_points(influx, db, &idle).await);
    let shares = |rows: &[HashMap<String, Value>], field: &str| -> Vec<f64> {
        rows.iter().filter_map(|row| float(row, field)).collect()
    };
    if kernel.pressure {
        let busy_cpu = shares(&busy, "cpu_pressure_some_percent");
        let idle_cpu = shares(&idle_points, "cpu_pressure_some_percent");
        assert!(
            busy_cpu.len() * 10 >= busy.len() * 9,
            "cpu_pressure_some_percent in {} of {} readings",
            busy_cpu.len(),
            busy.len()
        );
        eprintln!(
            "cpu_pressure_some_percent: busy mean {:.1}, idle mean {:.2} (max {:.2})",
            mean(&busy_cpu),
            mean(&idle_cpu),
            idle_cpu.iter().cloned().fold(0.0, f64::max)
        );
        assert!(
            mean(&busy_cpu) > 20.0,
            "three threads held to half a core stalled {:.1}% of the time",
            mean(&busy_cpu)
        );
        assert!(
            mean(&idle_cpu) < 1.0,
            "an idle container stalled {:.2}% of the time",
            mean(&idle_cpu)
        );
        // Totals are integer counters that never go down.
        let totals: Vec<u64> = busy
            .iter()
            .filter_map(|row| int(row, "cpu_pressure_some_us"))
            .collect();
        assert!(totals.windows(2).all(|w| w[0] <= w[1]), "{totals:?}");

        let cache_points = in_window(&cgroup_points(influx, db, &cache).await);
        let memory = shares(&cache_points, "memory_pressure_some_percent");
        eprintln!(
            "memory_pressure_some_percent of the page cache writer: mean {:.2}, max {:.2}",
            mean(&memory),
            memory.iter().cloned().fold(0.0, f64::max)
        );
        assert!(
            mean(&memory) > 0.0,
            "writing page cache under a 32 MiB limit shows memory pressure"
        );
        let io_points = in_window(&cgroup_points(influx, db, &io).await);
        let io_shares = shares(&io_points, "io_pressure_some_percent");
        eprintln!(
            "io_pressure_some_percent of the 1 MB/s writer: mean {:.1}",
            mean(&io_shares)
        );
        assert!(
            mean(&io_shares) > 0.0,
            "writes held to 1 MB/s show I/O pressure"
        );
    } else {
        for row in busy.iter().chain(&idle_points) {
            assert!(
                row.iter()
                    .all(|(field, value)| !field.contains("_pressure_") || value.is_null()),
                "pressure fields are absent, not zero, without pressure files: {row:?}"
            );
        }
    }

    // The OOM kill: counted exactly once, stored as one event, and the
    // container lives on with its stats.
    assert_eq!(kill["oom_kills"].as_u64(), Some(1), "{kill:?}");
    assert_eq!(oom_kills_seen, Some(1.0), "dss_oom_kills_total");
    let kill_time = kill["time"].as_i64().unwrap();
    let oom_points = cgroup_points(influx, db, &oom).await;
    let kills: Vec<u64> = oom_points
        .values()
        .filter_map(|row| int(row, "mem_events_oom_kill"))
        .collect();
    assert_eq!(
        (kills.first(), kills.last()),
        (Some(&0), Some(&1)),
        "mem_events_oom_kill went from 0 to 1"
    );
    let after_kill = oom_points.range(kill_time + 1..).count();
    assert!(
        after_kill >= 10,
        "{after_kill} readings after the OOM kill: the container's stats go on"
    );
    let running = docker(&["inspect", "--format", "{{.State.Running}}", &oom]);
    assert_eq!(running.trim(), "true", "the container's shell survived");
    let last = oom_points.values().next_back().unwrap();
    assert!(
        int(last, "mem_events_max").unwrap() > 0,
        "usage reached the limit: {last:?}"
    );
    if kernel.unified {
        assert!(int(last, "mem_events_oom").unwrap() >= 1, "{last:?}");
    }

    // Peaks: a 40 MiB spike far shorter than the interval.
    let spiky_points = cgroup_points(influx, db, &spiky).await;
    let spiky_window = in_window(&spiky_points);
    let peak = spiky_window
        .iter()
        .filter_map(|row| int(row, "mem_peak"))
        .max()
        .expect("mem_peak");
    assert!(peak >= 40 * MIB, "mem_peak {peak} holds the 40 MiB spike");
    let caught: Vec<(u64, u64)> = spiky_window
        .iter()
        .filter_map(|row| Some((int(row, "mem_peak_interval")?, int(row, "mem_used")?)))
        .filter(|(interval_peak, used)| *interval_peak >= 40 * MIB && *used < 20 * MIB)
        .collect();
    if kernel.peak_reset {
        // About one spike a second over the window's ~12 s.
        eprintln!(
            "{} readings whose interval peak caught a spike their usage missed",
            caught.len()
        );
        assert!(
            caught.len() >= 5,
            "mem_peak_interval caught {} spikes: {caught:?}",
            caught.len()
        );
        let quiet = spiky_window
            .iter()
            .filter_map(|row| int(row, "mem_peak_interval"))
            .filter(|peak| *peak < 20 * MIB)
            .count();
        assert!(
            quiet * 2 >= spiky_window.len(),
            "the interval peak is reset between readings: {quiet} of {} readings are quiet",
            spiky_window.len()
        );
    } else {
        assert!(
            spiky_window
                .iter()
                .all(|row| int(row, "mem_peak_interval").is_none()),
            "mem_peak_interval is absent where the kernel cannot reset memory.peak per reader"
        );
    }
}
