//! One container's cgroup source: its files read on a steady clock, every
//! `stats.interval` or the container's `docker-stats.interval`, each reading
//! turned into the `docker_stats` fields.
//!
//! Ticks fall on multiples of the interval counted from one process-wide
//! instant, so every container sampled at the same interval is read in the
//! same wake-up, and a slow tick is skipped, never made up for: the next
//! reading happens on the next multiple, and the gap is counted.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures_util::Stream;

use crate::clock::now_ns;
use crate::config::{Sampling, StatsConfig, MIN_INTERVAL};
use crate::engine::client::{Engine, Platform};
use crate::engine::container::{short, ContainerInfo};
use crate::schema::fields::FieldSelection;
use crate::sources::cgroup::cpu::system_cpu;
use crate::sources::cgroup::fields::{compute_fields, Context as FieldContext};
use crate::sources::cgroup::files::{CgroupReading, ReadError};
use crate::sources::cgroup::paths::{CgroupDriver, CgroupLayout, NotFound, Owner, Runtime};
use crate::sources::cgroup::sampler::{CgroupSampler, OpenError};
use crate::sources::Reading;
use crate::telemetry::counters::Counters;

/// The label that sets a container's own interval, e.g. `50ms`.
pub const INTERVAL_LABEL: &str = "docker-stats.interval";

/// What every cgroup-sampled container shares; set when the service samples
/// cgroups.
#[derive(Debug)]
pub struct CgroupSettings {
    pub layout: CgroupLayout,
    pub proc_root: PathBuf,
    pub interval: Duration,
    pub host_memory: Option<u64>,
    pub online_cpus: u32,
}

impl CgroupSettings {
    /// The facts every cgroup-sampled container shares, when `stats.sampling`
    /// is `cgroup`: where the engine puts containers, the host's CPUs and memory.
    pub fn for_engine(config: &StatsConfig, engine: &Engine) -> Option<Self> {
        if config.sampling != Sampling::Cgroup || !engine.has_container_cgroups() {
            return None;
        }
        let driver = engine.cgroup_driver.as_deref().unwrap_or("cgroupfs");
        let driver = CgroupDriver::from_engine(driver).unwrap_or_else(|| {
        log::warn!("the engine's cgroup driver {driver:?} is not cgroupfs or systemd; looking for cgroupfs paths");
        CgroupDriver::Cgroupfs
    });
        let runtime = match engine.platform {
            Platform::Podman => Runtime::Podman,
            Platform::Linux | Platform::Windows => Runtime::Docker,
        };
        // The socket's owner is the engine's user, unless it shows root
        // (a proxy's socket, or the service inside a user namespace).
        let owner = match (engine.rootless, engine.rootless_user) {
            (false, _) => Owner::Root,
            (true, Some(uid)) if uid != 0 => Owner::User(uid),
            (true, _) => Owner::UnknownUser,
        };
        let layout = CgroupLayout::detect(&config.cgroup_root, driver)
            .with_runtime(runtime)
            .owned_by(owner);
        let online_cpus = std::fs::read_to_string(config.proc_root.join("stat"))
            .ok()
            .and_then(|text| system_cpu(&text))
            .map(|cpu| cpu.online)
            .or_else(|| {
                std::thread::available_parallelism()
                    .ok()
                    .map(|n| n.get() as u32)
            })
            .unwrap_or(1);
        let rootless = match owner {
            Owner::Root => String::new(),
            Owner::User(uid) => format!(", rootless under user@{uid}.service"),
            Owner::UnknownUser => ", rootless under a user's systemd manager".into(),
        };
        log::info!(
            "sampling containers from their cgroups ({:?}, {driver:?} driver{rootless}, under {}) every {}",
            layout.version(),
            config.cgroup_root.display(),
            humantime::format_duration(config.interval)
        );
        Some(CgroupSettings {
            layout,
            proc_root: config.proc_root.clone(),
            interval: config.interval,
            host_memory: engine.memory,
            online_cpus,
        })
    }
}

/// Why a container cannot be sampled from its cgroup.
#[derive(Debug)]
pub enum CannotSample {
    /// The engine reports no process for it (it is stopping).
    NoProcess,
    /// Its cgroup directory is not where the engine puts containers.
    NotFound(NotFound),
    /// A file the selected fields need cannot be opened or read.
    Open(OpenError),
}

impl std::fmt::Display for CannotSample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CannotSample::NoProcess => f.write_str("the engine reports no process for it"),
            CannotSample::NotFound(error) => error.fmt(f),
            CannotSample::Open(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for CannotSample {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CannotSample::NoProcess => None,
            CannotSample::NotFound(error) => Some(error),
            CannotSample::Open(error) => Some(error),
        }
    }
}

/// One container's cgroup sampling state.
pub struct CgroupSource {
    sampler: CgroupSampler,
    interval: Duration,
    context: FieldContext,
    previous: Option<(CgroupReading, Instant)>,
    last_tick: Option<Instant>,
}

impl CgroupSource {
    /// Opens the container's files; `Err` says why they cannot be read, and
    /// the caller falls back to the stream.
    pub fn open(
        settings: &CgroupSettings,
        info: &ContainerInfo,
        selection: &FieldSelection,
    ) -> Result<Self, CannotSample> {
        let pid = info.pid.ok_or(CannotSample::NoProcess)?;
        let cgroup = settings
            .layout
            .locate(&info.id, &info.cgroup_parent)
            .map_err(CannotSample::NotFound)?;
        let sampler = CgroupSampler::open(&cgroup, &settings.proc_root, pid, selection)
            .map_err(CannotSample::Open)?;
        Ok(CgroupSource {
            sampler,
            interval: interval_for(info, settings.interval),
            context: FieldContext {
                cpu_limit_cores: info.cpu_limit_cores,
                host_memory: settings.host_memory,
                online_cpus: settings.online_cpus,
            },
            previous: None,
            last_tick: None,
        })
    }

    /// How often the container is sampled.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The ticks of this container's sampling clock: when each was due.
    pub fn ticks(&self) -> impl Stream<Item = Instant> {
        let interval = self.interval;
        let mut ticks = tokio::time::interval_at(aligned_start(interval).into(), interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        futures_util::stream::unfold(ticks, |mut ticks| async {
            let due = ticks.tick().await.into_std();
            Some((due, ticks))
        })
    }

    /// Reads the files for the tick that was due at `due`. `Err` when they
    /// can no longer be read: they go when the container stops.
    pub fn read(&mut self, due: Instant, counters: &Counters) -> Result<Reading, ReadError> {
        if let Some(last) = self.last_tick.replace(due) {
            let periods = (due - last).as_nanos() / self.interval.as_nanos().max(1);
            let skipped = periods.saturating_sub(1) as u64;
            if skipped > 0 {
                Counters::add(&counters.cgroup_ticks_skipped, skipped);
            }
        }
        let read_at = Instant::now();
        let timestamp = now_ns();
        let reading = self.sampler.read(read_at)?;
        let previous = self
            .previous
            .as_ref()
            .map(|(before, at)| (before, read_at - *at));
        let fields = compute_fields(&reading, previous, self.context);
        let oom_kills = previous.map_or(0, |(before, _)| oom_kills_between(before, &reading));
        self.previous = Some((reading, read_at));
        Ok(Reading {
            fields,
            timestamp,
            oom_kills,
        })
    }
}

/// Processes the OOM killer killed between two readings. Kills before the
/// first reading (before the service followed the container) are in the
/// counter but are no event of this run.
fn oom_kills_between(before: &CgroupReading, after: &CgroupReading) -> u64 {
    match (before.mem_events.oom_kill, after.mem_events.oom_kill) {
        (Some(before), Some(after)) => after.saturating_sub(before),
        _ => 0,
    }
}

/// The container's `docker-stats.interval`, or the service's interval
/// when it has none or an unusable one (said once, at start).
fn interval_for(info: &ContainerInfo, default: Duration) -> Duration {
    let Some(text) = info.labels.get(INTERVAL_LABEL) else {
        return default;
    };
    match humantime::parse_duration(text.trim()) {
        Ok(interval) if interval >= MIN_INTERVAL => interval,
        Ok(_) | Err(_) => {
            log::warn!(
                "container {} ({}): label {INTERVAL_LABEL}={text:?} is not a duration of at least {}; sampling every {}",
                info.name,
                short(&info.id),
                humantime::format_duration(MIN_INTERVAL),
                humantime::format_duration(default)
            );
            default
        }
    }
}

/// The first multiple of `interval`, counted from the first call in this
/// process, that is still ahead: containers sharing an interval tick
/// together.
fn aligned_start(interval: Duration) -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    let periods = epoch.elapsed().as_nanos() / interval.as_nanos().max(1) + 1;
    epoch + Duration::from_nanos((periods * interval.as_nanos()) as u64)
}
