//! The StatsActor's cgroup source (`stats.sampling = "cgroup"`): instead of
//! the engine's stream it reads the container's cgroup files on a steady
//! clock, every `stats.interval` or the container's `docker-stats.interval`.
//!
//! Ticks fall on multiples of the interval counted from one process-wide
//! instant, so every container sampled at the same interval is read in the
//! same wake-up, and a slow tick is skipped, never made up for: the next
//! reading happens on the next multiple, and the gap is counted.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::{ExitReason, StatsActor};
use crate::clock::now_ns;
use crate::config::MIN_INTERVAL;
use crate::engine::container::short;
use crate::engine::container::ContainerInfo;
use crate::sources::cgroup::fields::{compute_fields, Context as FieldContext};
use crate::sources::cgroup::files::CgroupReading;
use crate::sources::cgroup::paths::CgroupLayout;
use crate::sources::cgroup::sampler::CgroupSampler;
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

/// One container's cgroup sampling state.
pub(super) struct CgroupSource {
    sampler: CgroupSampler,
    interval: Duration,
    context: FieldContext,
    previous: Option<(CgroupReading, Instant)>,
    last_tick: Option<Instant>,
}

/// A tick of a container's sampling clock: when it was due.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Tick(Instant);

impl StatsActor {
    /// Starts sampling the container's cgroup; `Err` says why it cannot,
    /// and the caller falls back to the stream.
    pub(super) fn start_cgroup_source(
        &mut self,
        settings: &CgroupSettings,
        info: &ContainerInfo,
        ctx: &mut Context<Self>,
    ) -> Result<(), String> {
        let pid = info.pid.ok_or("the engine reports no process for it")?;
        let cgroup = settings
            .layout
            .locate(&info.id, &info.cgroup_parent)
            .map_err(|e| e.to_string())?;
        let selected = &self.links.settings.fields;
        let sampler = CgroupSampler::open(&cgroup, &settings.proc_root, pid, selected)
            .map_err(|e| e.to_string())?;
        let interval = self.interval_for(info, settings.interval);
        self.cgroup = Some(CgroupSource {
            sampler,
            interval,
            context: FieldContext {
                cpu_limit_cores: info.cpu_limit_cores,
                host_memory: settings.host_memory,
                online_cpus: settings.online_cpus,
            },
            previous: None,
            last_tick: None,
        });
        let mut ticks = tokio::time::interval_at(aligned_start(interval).into(), interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        ctx.add_stream(futures_util::stream::unfold(ticks, |mut ticks| async {
            let due = ticks.tick().await.into_std();
            Some((Tick(due), ticks))
        }));
        Ok(())
    }

    /// How often the container is sampled from its cgroup, if it is.
    pub(super) fn cgroup_interval(&self) -> Option<Duration> {
        self.cgroup.as_ref().map(|source| source.interval)
    }

    /// The container's `docker-stats.interval`, or the service's interval
    /// when it has none or an unusable one (said once, at start).
    fn interval_for(&self, info: &ContainerInfo, default: Duration) -> Duration {
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

    fn sample_cgroup(&mut self, due: Instant, ctx: &mut Context<Self>) {
        let Some(source) = &mut self.cgroup else {
            return;
        };
        if let Some(last) = source.last_tick.replace(due) {
            let periods = (due - last).as_nanos() / source.interval.as_nanos().max(1);
            let skipped = periods.saturating_sub(1) as u64;
            if skipped > 0 {
                Counters::add(&self.links.counters.cgroup_ticks_skipped, skipped);
            }
        }
        let read_at = Instant::now();
        let timestamp = now_ns();
        let reading = match source.sampler.read(read_at) {
            Ok(reading) => reading,
            Err(error) => {
                // The files go when the container stops; the Supervisor
                // decides from the engine whether it still runs.
                log::debug!(
                    "cgroup of container {} no longer readable: {error}",
                    short(&self.id)
                );
                self.stop_with(ExitReason::StreamEnded, ctx);
                return;
            }
        };
        let previous = source
            .previous
            .as_ref()
            .map(|(before, at)| (before, read_at - *at));
        let fields = compute_fields(&reading, previous, source.context);
        source.previous = Some((reading, read_at));
        self.emit(&fields, timestamp);
    }
}

impl StreamHandler<Tick> for StatsActor {
    fn handle(&mut self, Tick(due): Tick, ctx: &mut Self::Context) {
        if ctx.state() == ActorState::Running {
            self.sample_cgroup(due, ctx);
        }
    }

    fn finished(&mut self, _: &mut Self::Context) {
        // The clock never ends on its own.
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
