//! The health checks `/health` answers from (engine, events, InfluxDB,
//! write capability, samples, storage), as the actors report them, with the latency
//! histograms and each followed container's last sample time that
//! `/metrics` shows beside the counters.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use crate::clock::now_ms;
use crate::telemetry::counters::Counters;

/// Bytes the service may still write on the filesystem of `dir`: what is
/// free to unprivileged users, or to root when running as root.
fn free_bytes(dir: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: an all-zero statvfs is a valid value to be filled in.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statvfs to fill; geteuid cannot fail.
    let (result, euid) = unsafe { (libc::statvfs(path.as_ptr(), &mut stats), libc::geteuid()) };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    let blocks = if euid == 0 {
        stats.f_bfree
    } else {
        stats.f_bavail
    };
    Ok(blocks as u64 * stats.f_frsize as u64)
}

/// One health check: passing or not, and what the last report said.
#[derive(Debug, Default)]
pub struct Check {
    ok: AtomicBool,
    detail: Mutex<String>,
}

impl Check {
    pub fn pass(&self, detail: impl Into<String>) {
        self.ok.store(true, Ordering::Relaxed);
        *self.detail.lock().unwrap_or_else(|e| e.into_inner()) = detail.into();
    }

    pub fn fail(&self, detail: impl Into<String>) {
        self.ok.store(false, Ordering::Relaxed);
        *self.detail.lock().unwrap_or_else(|e| e.into_inner()) = detail.into();
    }

    pub fn is_ok(&self) -> bool {
        self.ok.load(Ordering::Relaxed)
    }

    fn view(&self) -> CheckView {
        CheckView {
            ok: self.is_ok(),
            detail: self
                .detail
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// A histogram with fixed upper bounds, for Prometheus.
#[derive(Debug)]
pub struct Histogram {
    pub bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// The sum, in millionths, to keep it an integer atomic.
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            if value <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((value * 1e6).round().max(0.0) as u64, Ordering::Relaxed);
    }

    /// Cumulative counts per bound, the total count and the sum.
    pub fn snapshot(&self) -> (Vec<u64>, u64, f64) {
        let buckets = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (buckets, self.count.load(Ordering::Relaxed), sum)
    }
}

const LATENCY_BOUNDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const AGE_BOUNDS: &[f64] = &[
    0.1, 0.25, 0.5, 0.75, 1.0, 1.1, 1.25, 1.5, 2.0, 2.1, 2.25, 2.5, 3.0, 5.0, 10.0, 30.0, 60.0,
];
const BATCH_BOUNDS: &[f64] = &[
    1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0,
];

/// A container the Supervisor follows, whether or not an actor for it runs
/// right now (between restarts none does): its time without samples counts
/// from when it was first followed, across restarts.
#[derive(Debug)]
struct Followed {
    name: String,
    /// When the Supervisor started following it (Unix milliseconds).
    since_ms: i64,
    /// Where its StatsActor stores the time of each sample (Unix
    /// milliseconds; 0 before the first).
    last_sample_ms: Arc<AtomicI64>,
    /// The generation of the actor reading it now, if one is.
    generation: Option<u64>,
    /// Whether falling back from its cgroup to the stream was said.
    fallback_said: bool,
    /// Whether its tag values cut to fit InfluxDB's limits were said.
    tags_cut_said: bool,
}

impl Followed {
    /// Seconds since the last sample, or since it was followed.
    fn silent_for(&self, now_ms: i64) -> f64 {
        let last = self
            .last_sample_ms
            .load(Ordering::Relaxed)
            .max(self.since_ms);
        (now_ms - last).max(0) as f64 / 1000.0
    }
}

/// How long a followed container may go without a sample before `/health`
/// names it, unless `with_sample_age_limit` says otherwise.
const DEFAULT_SAMPLE_AGE_LIMIT: Duration = Duration::from_secs(30);

/// Everything `/health` and `/metrics` report. Shared by the actors.
#[derive(Debug)]
pub struct Health {
    pub counters: Arc<Counters>,
    pub docker: Check,
    pub events: Check,
    pub influxdb: Check,
    /// Fails on errors that need the operator (credentials, database name).
    pub write_capability: Check,
    /// Unix milliseconds of the last acknowledged write; 0 before the first.
    last_write_ms: AtomicU64,
    /// How old the last write may be, while points wait, before it counts
    /// as a failure.
    write_age_limit: Duration,
    pub write_duration: Histogram,
    pub batch_points: Histogram,
    /// From a sample's own time to InfluxDB acknowledging its point.
    pub sample_to_stored: Histogram,
    write_errors: Mutex<BTreeMap<&'static str, u64>>,
    /// Every followed container, by id.
    followed: Mutex<HashMap<String, Followed>>,
    /// Fails while a followed container has had no sample for this long.
    sample_age_limit: Duration,
    /// The directories points are kept in (disk buffer or spool), with the
    /// setting that names each: the `storage` check fails while one's disk
    /// is full.
    storage: Vec<(&'static str, PathBuf)>,
}

#[derive(Debug, Serialize)]
pub struct CheckView {
    pub ok: bool,
    pub detail: String,
}

/// What `healthcheck` judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthScope {
    /// Every check of `/health`.
    All,
    /// `--liveness`: only the checks a restart of the collector could cure.
    Liveness,
}

/// The checks a restart of the collector cannot cure: those about InfluxDB
/// (the database, its address or its credentials are what is wrong) and a
/// full disk; while it restarts the samples the engine emits are lost,
/// and the points already collected wait in the buffer either way.
/// `healthcheck --liveness` leaves them out.
pub const RESTART_CANNOT_CURE: [&str; 4] =
    ["influxdb", "write_capability", "last_write", "storage"];

/// The failing checks of a `/health` body that a restart could cure, or
/// why the body cannot be read.
pub fn failing_for_liveness(body: &str) -> Result<Vec<String>, String> {
    let report: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("unreadable /health answer: {e}"))?;
    let failing = report["failing"]
        .as_array()
        .ok_or("the /health answer names no failing checks")?;
    Ok(failing
        .iter()
        .filter_map(|check| check.as_str())
        .filter(|check| !RESTART_CANNOT_CURE.contains(check))
        .map(str::to_string)
        .collect())
}

/// The `/health` body.
#[derive(Debug, Serialize)]
pub struct Report {
    pub status: &'static str,
    pub failing: Vec<&'static str>,
    pub checks: BTreeMap<&'static str, CheckView>,
    pub last_write: Option<String>,
    pub last_write_age_seconds: Option<f64>,
    pub containers_watched: u64,
    pub points_buffered: u64,
    pub points_dropped: u64,
    pub points_rejected: u64,
    pub points_written: u64,
}

impl Health {
    pub fn new(counters: Arc<Counters>, write_age_limit: Duration) -> Self {
        let health = Health {
            counters,
            docker: Check::default(),
            events: Check::default(),
            influxdb: Check::default(),
            write_capability: Check::default(),
            last_write_ms: AtomicU64::new(0),
            write_age_limit,
            write_duration: Histogram::new(LATENCY_BOUNDS),
            batch_points: Histogram::new(BATCH_BOUNDS),
            sample_to_stored: Histogram::new(AGE_BOUNDS),
            write_errors: Mutex::new(BTreeMap::new()),
            followed: Mutex::new(HashMap::new()),
            sample_age_limit: DEFAULT_SAMPLE_AGE_LIMIT,
            storage: Vec::new(),
        };
        health.docker.fail("not connected yet");
        health.events.fail("not subscribed yet");
        health.influxdb.fail("no answer yet");
        health.write_capability.pass("no error so far");
        health
    }

    pub fn write_succeeded(&self, points: usize, took: Duration) {
        self.last_write_ms.store(now_ms(), Ordering::Relaxed);
        self.write_duration.observe(took.as_secs_f64());
        self.batch_points.observe(points as f64);
        self.influxdb.pass("writes succeed");
        self.write_capability.pass("writes succeed");
    }

    pub fn write_failed(&self, class: &'static str, detail: String, needs_operator: bool) {
        *self
            .write_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(class)
            .or_default() += 1;
        if needs_operator {
            self.influxdb.pass("reachable");
            self.write_capability.fail(detail);
        } else {
            self.influxdb.fail(detail);
        }
    }

    pub fn write_errors(&self) -> BTreeMap<&'static str, u64> {
        self.write_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How long a followed container may go without a sample before the
    /// `samples` check names it (the stats stream's stall timeout).
    pub fn with_sample_age_limit(mut self, limit: Duration) -> Self {
        self.sample_age_limit = limit;
        self
    }

    /// Points are kept in `dir`, named by the setting `key`.
    pub fn with_storage(mut self, key: &'static str, dir: PathBuf) -> Self {
        self.storage.push((key, dir));
        self
    }

    /// The `storage` check: fails while the disk of a directory points are
    /// kept in is full.
    fn storage_check(&self) -> CheckView {
        if self.storage.is_empty() {
            return CheckView {
                ok: true,
                detail: "points are kept in memory only".into(),
            };
        }
        let mut ok = true;
        let mut details = Vec::new();
        for (key, dir) in &self.storage {
            let detail = match free_bytes(dir) {
                Ok(0) => {
                    ok = false;
                    format!("{key} {}: the disk is full; new points are dropped oldest first until delivery frees room", dir.display())
                }
                Ok(free) => format!(
                    "{key} {}: {:.1} MiB free",
                    dir.display(),
                    free as f64 / (1 << 20) as f64
                ),
                Err(error) => {
                    ok = false;
                    format!(
                        "{key} {}: cannot tell the free space: {error}",
                        dir.display()
                    )
                }
            };
            details.push(detail);
        }
        CheckView {
            ok,
            detail: details.join("; "),
        }
    }

    fn followed(&self) -> std::sync::MutexGuard<'_, HashMap<String, Followed>> {
        self.followed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The Supervisor follows a container from now on.
    pub fn container_followed(&self, id: &str) {
        self.followed()
            .entry(id.to_string())
            .or_insert_with(|| Followed {
                name: id.chars().take(12).collect(),
                since_ms: now_ms() as i64,
                last_sample_ms: Arc::new(AtomicI64::new(0)),
                generation: None,
                fallback_said: false,
                tags_cut_said: false,
            });
    }

    /// The Supervisor no longer follows a container.
    pub fn container_unfollowed(&self, id: &str) {
        self.followed().remove(id);
    }

    /// An actor reads a followed container's stats; the returned cell is
    /// where it stores the time of each sample.
    pub fn stream_started(&self, id: &str, generation: u64, name: &str) -> Arc<AtomicI64> {
        self.container_followed(id);
        let mut followed = self.followed();
        let entry = followed.get_mut(id).expect("inserted above");
        entry.name = name.to_string();
        entry.generation = Some(generation);
        Arc::clone(&entry.last_sample_ms)
    }

    /// Whether the cut of a followed container's tag values is said (and
    /// counted) for the first time: a restarted stream makes its series
    /// key again.
    pub fn first_tags_cut(&self, id: &str) -> bool {
        self.followed()
            .get_mut(id)
            .is_some_and(|entry| !std::mem::replace(&mut entry.tags_cut_said, true))
    }

    /// Whether this is the first cgroup fallback of a followed container
    /// (to be said once; later ones are only counted).
    pub fn first_cgroup_fallback(&self, id: &str) -> bool {
        self.followed()
            .get_mut(id)
            .is_some_and(|entry| !std::mem::replace(&mut entry.fallback_said, true))
    }

    /// The actor of that generation stopped (a newer one may have started).
    pub fn stream_stopped(&self, id: &str, generation: u64) {
        if let Some(entry) = self.followed().get_mut(id) {
            if entry.generation == Some(generation) {
                entry.generation = None;
            }
        }
    }

    /// (id, name, seconds since the last sample, or since it was followed
    /// when none came yet) per followed container.
    pub fn sample_ages(&self) -> Vec<(String, String, f64)> {
        let now = now_ms() as i64;
        let mut ages: Vec<_> = self
            .followed()
            .iter()
            .map(|(id, f)| (id.clone(), f.name.clone(), f.silent_for(now)))
            .collect();
        ages.sort_by(|a, b| a.0.cmp(&b.0));
        ages
    }

    /// Followed containers that have not had their first sample yet.
    pub fn awaiting_first_sample(&self) -> usize {
        self.followed()
            .values()
            .filter(|f| f.last_sample_ms.load(Ordering::Relaxed) == 0)
            .count()
    }

    /// Followed containers an actor is reading right now.
    pub fn active_streams(&self) -> usize {
        self.followed()
            .values()
            .filter(|f| f.generation.is_some())
            .count()
    }

    /// The `samples` check: names the containers silent for too long.
    fn samples_check(&self) -> CheckView {
        let limit = self.sample_age_limit.as_secs_f64();
        let silent: Vec<String> = self
            .sample_ages()
            .into_iter()
            .filter(|(_, _, age)| *age > limit)
            .map(|(_, name, age)| format!("{name} ({age:.0}s)"))
            .collect();
        CheckView {
            ok: silent.is_empty(),
            detail: if silent.is_empty() {
                "every followed container sampled recently".into()
            } else {
                format!(
                    "no sample for over {}s from {} container(s): {}",
                    limit,
                    silent.len(),
                    silent.join(", ")
                )
            },
        }
    }

    pub fn report(&self) -> Report {
        let last_write_ms = self.last_write_ms.load(Ordering::Relaxed);
        let age =
            (last_write_ms > 0).then(|| now_ms().saturating_sub(last_write_ms) as f64 / 1000.0);
        let buffered = Counters::get(&self.counters.points_buffered);
        let stale = buffered > 0 && age.is_some_and(|a| a > self.write_age_limit.as_secs_f64());
        let writes = CheckView {
            ok: !stale,
            detail: match age {
                _ if stale => format!(
                    "{buffered} point(s) waiting and no write for over {}s",
                    self.write_age_limit.as_secs()
                ),
                Some(a) => format!("last write {a:.1}s ago"),
                None => "no write yet".into(),
            },
        };
        let mut checks = BTreeMap::new();
        checks.insert("docker", self.docker.view());
        checks.insert("events", self.events.view());
        checks.insert("influxdb", self.influxdb.view());
        checks.insert("write_capability", self.write_capability.view());
        checks.insert("last_write", writes);
        checks.insert("samples", self.samples_check());
        checks.insert("storage", self.storage_check());
        let failing: Vec<&'static str> = checks
            .iter()
            .filter(|(_, c)| !c.ok)
            .map(|(n, _)| *n)
            .collect();
        Report {
            status: if failing.is_empty() {
                "healthy"
            } else {
                "unhealthy"
            },
            failing,
            checks,
            last_write: (last_write_ms > 0).then(|| {
                humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(last_write_ms))
                    .to_string()
            }),
            last_write_age_seconds: age,
            containers_watched: Counters::get(&self.counters.containers_watched),
            points_buffered: buffered,
            points_dropped: Counters::get(&self.counters.points_dropped),
            points_rejected: Counters::get(&self.counters.points_rejected),
            points_written: Counters::get(&self.counters.points_written),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_unhealthy_until_docker_events_and_influxdb_report() {
        let health = Health::new(Arc::new(Counters::default()), Duration::from_secs(60));
        let report = health.report();
        assert_eq!(report.status, "unhealthy");
        assert_eq!(report.failing, ["docker", "events", "influxdb"]);
        health.docker.pass("connected");
        health.events.pass("subscribed");
        health.write_succeeded(10, Duration::from_millis(3));
        assert_eq!(health.report().status, "healthy");
    }

    #[test]
    fn liveness_leaves_out_only_the_database_checks() {
        let health = Health::new(Arc::new(Counters::default()), Duration::from_secs(60));
        health.docker.pass("ok");
        health.events.pass("ok");
        health.write_failed("auth", "authentication failed".into(), true);
        let body = serde_json::to_string(&health.report()).unwrap();
        assert_eq!(failing_for_liveness(&body).unwrap(), Vec::<String>::new());
        health.docker.fail("gone");
        let body = serde_json::to_string(&health.report()).unwrap();
        assert_eq!(failing_for_liveness(&body).unwrap(), ["docker"]);
        assert!(failing_for_liveness("<html>").is_err());
    }

    #[test]
    fn an_operator_error_fails_write_capability_not_reachability() {
        let health = Health::new(Arc::new(Counters::default()), Duration::from_secs(60));
        health.write_failed("auth", "authentication failed".into(), true);
        let report = health.report();
        assert!(report.failing.contains(&"write_capability"));
        assert!(!report.failing.contains(&"influxdb"));
        assert_eq!(health.write_errors()["auth"], 1);
    }

    #[test]
    fn a_container_without_samples_is_named_and_its_silence_spans_restarts() {
        let health = Health::new(Arc::new(Counters::default()), Duration::from_secs(60))
            .with_sample_age_limit(Duration::from_millis(50));
        health.container_followed("abc");
        health.stream_started("abc", 1, "web-1");
        assert!(health.samples_check().ok);
        std::thread::sleep(Duration::from_millis(120));
        health.stream_stopped("abc", 1);
        let cell = health.stream_started("abc", 2, "web-1");
        let check = health.samples_check();
        assert!(!check.ok && check.detail.contains("web-1"), "{check:?}");
        assert_eq!(health.sample_ages().len(), 1);
        cell.store(now_ms() as i64, Ordering::Relaxed);
        assert!(health.samples_check().ok);
        assert!(health.first_cgroup_fallback("abc"));
        assert!(!health.first_cgroup_fallback("abc"));
        health.container_unfollowed("abc");
        assert!(health.sample_ages().is_empty());
        // Nothing is kept of a container no longer followed.
        assert!(!health.first_cgroup_fallback("abc"));
        assert!(health.followed().is_empty());
    }

    #[test]
    fn histograms_are_cumulative() {
        let h = Histogram::new(&[1.0, 10.0]);
        h.observe(0.5);
        h.observe(5.0);
        h.observe(50.0);
        let (buckets, count, sum) = h.snapshot();
        assert_eq!((buckets, count), (vec![1, 2], 3));
        assert!((sum - 55.5).abs() < 1e-9);
    }
}
