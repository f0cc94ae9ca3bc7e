//! The StatsActor: follows one container's streaming stats and turns every
//! sample into a `docker_stats` point for the BatchWriter.
//!
//! It inspects its container once at start (for tags and the CPU limit),
//! then consumes the engine's stream. It never restarts itself: when its
//! stream fails, ends or stalls it stops and tells the Supervisor why, and
//! the Supervisor decides whether and when to start a new one.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use bollard::Docker;

use crate::clock::now_ms;
use crate::engine::client::Platform;
use crate::engine::container::{short, ContainerInfo};
use crate::engine::stats_stream::{self, StatsItem, StreamError, StreamTarget};
use crate::schema::fields::FieldSelection;
use crate::schema::line_protocol::SeriesKey;
use crate::schema::point::{encode_point, Field};
use crate::schema::tags::{stats_series, LabelTag};
use crate::sources::stream::fields::{compute_fields, read_time_ns};
use crate::sources::stream::sample::Sample;
use crate::telemetry::counters::Counters;
use crate::telemetry::health::Health;
use crate::writer::WritePoint;

mod cgroup_source;

pub use cgroup_source::{CgroupSettings, INTERVAL_LABEL};

/// What every StatsActor shares: fixed for the life of the service.
#[derive(Debug)]
pub struct StatsSettings {
    pub host: String,
    pub platform: Platform,
    pub fields: FieldSelection,
    pub label_tags: Vec<LabelTag>,
    /// The socket, API version, frame limits, read pacing and stall timeout
    /// of the stats streams.
    pub stream_target: StreamTarget,
    /// Requested fields already warned about as missing, across containers.
    pub missing_field_warnings: Mutex<HashSet<String>>,
    /// Set when containers are sampled from their cgroups.
    pub cgroup: Option<CgroupSettings>,
}

/// Why a StatsActor stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum ExitReason {
    /// The Supervisor asked it to.
    Requested,
    /// The container exists but does not run.
    NotRunning,
    /// The container no longer exists.
    Gone,
    /// The stream ended although nobody asked.
    StreamEnded,
    StreamError(String),
    /// No frame for longer than the stall timeout.
    Stalled(Duration),
    InspectFailed(String),
}

impl ExitReason {
    /// Whether the container still wants watching, so a new actor should be
    /// started after a backoff.
    pub fn wants_restart(&self) -> bool {
        matches!(
            self,
            ExitReason::StreamEnded
                | ExitReason::StreamError(_)
                | ExitReason::Stalled(_)
                | ExitReason::InspectFailed(_)
        )
    }
}

/// Sent to the Supervisor when a StatsActor stops, for whatever reason.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChildExited {
    pub id: String,
    pub generation: u64,
    pub reason: ExitReason,
}

/// Asks a StatsActor to close its stream and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopStream;

/// What a StatsActor is connected to: the engine, the shared settings, the
/// writer it feeds and the Supervisor it reports to.
#[derive(Clone)]
pub struct StatsLinks {
    pub docker: Docker,
    pub settings: Arc<StatsSettings>,
    pub writer: Recipient<WritePoint>,
    pub supervisor: Recipient<ChildExited>,
    pub counters: Arc<Counters>,
    pub health: Arc<Health>,
}

pub struct StatsActor {
    id: String,
    generation: u64,
    links: StatsLinks,
    series: Option<SeriesKey>,
    cpu_limit_cores: Option<f64>,
    /// Where `/metrics` reads the time of this container's last sample.
    last_sample_ms: Option<Arc<std::sync::atomic::AtomicI64>>,
    /// Bad frames are logged once per stream and counted.
    bad_frame_logged: bool,
    /// Set while the container is sampled from its cgroup.
    cgroup: Option<cgroup_source::CgroupSource>,
    /// Stopping at shutdown: the stream's end is the requested stop.
    draining: bool,
    /// StopStream senders, answered when the actor has stopped.
    stop_waiters: Vec<tokio::sync::oneshot::Sender<()>>,
    exit: ExitReason,
}

impl StatsActor {
    pub fn new(id: String, generation: u64, links: StatsLinks) -> Self {
        StatsActor {
            id,
            generation,
            links,
            series: None,
            cpu_limit_cores: None,
            last_sample_ms: None,
            bad_frame_logged: false,
            cgroup: None,
            draining: false,
            stop_waiters: Vec::new(),
            exit: ExitReason::StreamEnded,
        }
    }

    /// Stops with `reason`; the first reason given is the one reported.
    /// While draining at shutdown, however the stream ends, it was asked to.
    fn stop_with(&mut self, reason: ExitReason, ctx: &mut Context<Self>) {
        if ctx.state() == ActorState::Running {
            self.exit = if self.draining {
                ExitReason::Requested
            } else {
                reason
            };
            ctx.stop();
        }
    }

    fn follow(&mut self, info: ContainerInfo, ctx: &mut Context<Self>) {
        let settings = Arc::clone(&self.links.settings);
        self.cpu_limit_cores = info.cpu_limit_cores;
        self.last_sample_ms = Some(self.links.health.stream_started(
            &self.id,
            self.generation,
            &info.name,
        ));
        if let Some(cgroup) = &settings.cgroup {
            match self.start_cgroup_source(cgroup, &info, ctx) {
                Ok(()) => {
                    self.series = Some(stats_series(
                        &info,
                        &settings.host,
                        &settings.label_tags,
                        "cgroup",
                    ));
                    log::debug!(
                        "sampling container {} ({}) from its cgroup every {}",
                        info.name,
                        short(&self.id),
                        humantime::format_duration(self.cgroup_interval().unwrap_or_default())
                    );
                    return;
                }
                Err(why) => self.fall_back_to_stream(&info, &why),
            }
        }
        self.series = Some(stats_series(
            &info,
            &settings.host,
            &settings.label_tags,
            "stream",
        ));
        log::debug!(
            "following stats of container {} ({})",
            info.name,
            short(&self.id)
        );
        ctx.add_stream(stats_stream::open(
            settings.stream_target.clone(),
            self.id.clone(),
        ));
    }

    /// The container's cgroup cannot be sampled: counted every time, said
    /// once while the container is followed (the mark goes with it).
    fn fall_back_to_stream(&self, info: &ContainerInfo, why: &str) {
        Counters::add(&self.links.counters.cgroup_fallbacks, 1);
        if self.links.health.first_cgroup_fallback(&self.id) {
            log::warn!(
                "cannot sample container {} ({}) from its cgroup: {why}; using the engine's stats stream for it (check stats.cgroup_root and stats.proc_root)",
                info.name,
                short(&self.id)
            );
        }
    }

    fn record(&mut self, frame: &[u8]) {
        let stats = match Sample::decode(frame) {
            Ok(stats) => stats,
            Err(error) => {
                Counters::add(&self.links.counters.frames_malformed, 1);
                self.log_bad_frame(&format!("a malformed stats frame ({error})"));
                return;
            }
        };
        let Some(timestamp) = read_time_ns(&stats) else {
            // The engine keeps the stream open after the container stopped
            // and sends empty samples; they carry no measurement.
            Counters::add(&self.links.counters.samples_empty, 1);
            return;
        };
        let settings = &self.links.settings;
        let fields = compute_fields(&stats, settings.platform, self.cpu_limit_cores);
        self.warn_about_missing_fields(&fields);
        self.emit(&fields, timestamp);
    }

    /// Counts one sample, whichever source took it, and hands its point
    /// to the writer.
    fn emit(&self, fields: &[Field], timestamp: i64) {
        let Some(series) = &self.series else { return };
        Counters::add(&self.links.counters.samples_received, 1);
        if let Some(cell) = &self.last_sample_ms {
            cell.store(now_ms() as i64, std::sync::atomic::Ordering::Relaxed);
        }
        let selection = &self.links.settings.fields;
        if let Some(line) = encode_point(series, fields, selection, timestamp) {
            self.links
                .writer
                .do_send(WritePoint::stamped(line, timestamp));
        }
    }

    fn log_bad_frame(&mut self, what: &str) {
        if !self.bad_frame_logged {
            self.bad_frame_logged = true;
            log::warn!(
                "skipped {what} from container {}; further bad frames of this stream are only counted",
                short(&self.id)
            );
        }
    }

    fn warn_about_missing_fields(&self, fields: &[Field]) {
        for wanted in self.links.settings.fields.expected() {
            if fields.iter().any(|(name, _)| name == wanted) {
                continue;
            }
            let mut warned = self
                .links
                .settings
                .missing_field_warnings
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if warned.insert(wanted.to_string()) {
                log::warn!(
                    "field {wanted} is selected in STATS_FIELDS but the engine's samples do not have it (first seen for container {}); it is left out of those points",
                    short(&self.id)
                );
            }
        }
    }
}

impl Actor for StatsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let docker = self.links.docker.clone();
        let id = self.id.clone();
        let inspect = async move { docker.inspect_container(&id, None).await };
        ctx.wait(
            inspect
                .into_actor(self)
                .map(|result, actor, ctx| match result {
                    Ok(inspect) => match ContainerInfo::from_inspect(&inspect) {
                        Some(info) if info.running => actor.follow(info, ctx),
                        Some(_) => actor.stop_with(ExitReason::NotRunning, ctx),
                        None => actor.stop_with(
                            ExitReason::InspectFailed("inspect response had no id".into()),
                            ctx,
                        ),
                    },
                    Err(error) if is_not_found(&error) => actor.stop_with(ExitReason::Gone, ctx),
                    Err(error) => {
                        actor.stop_with(ExitReason::InspectFailed(error.to_string()), ctx)
                    }
                }),
        );
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        for waiter in self.stop_waiters.drain(..) {
            let _ = waiter.send(());
        }
        self.links.health.stream_stopped(&self.id, self.generation);
        self.links.supervisor.do_send(ChildExited {
            id: self.id.clone(),
            generation: self.generation,
            reason: self.exit.clone(),
        });
    }
}

impl StreamHandler<Result<StatsItem, StreamError>> for StatsActor {
    fn handle(&mut self, item: Result<StatsItem, StreamError>, ctx: &mut Self::Context) {
        if ctx.state() != ActorState::Running {
            return; // Stopping: nothing more goes to the writer.
        }
        match item {
            Ok(StatsItem::Frame(frame)) => self.record(&frame),
            Ok(StatsItem::Oversized(size)) => {
                Counters::add(&self.links.counters.frames_oversized, 1);
                self.log_bad_frame(&format!(
                    "a stats frame of {size}+ bytes, over STATS_LINE_SIZE"
                ));
            }
            Err(StreamError::NotFound) => self.stop_with(ExitReason::Gone, ctx),
            Err(StreamError::Stalled(silent)) => self.stop_with(ExitReason::Stalled(silent), ctx),
            Err(error) => self.stop_with(ExitReason::StreamError(error.to_string()), ctx),
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        self.stop_with(ExitReason::StreamEnded, ctx);
    }
}

/// How long a stream may take to hand over what its socket still holds at
/// shutdown.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

impl Handler<StopStream> for StatsActor {
    type Result = ResponseFuture<()>;

    /// Answers when the actor has stopped. At shutdown (the pacer drains) a
    /// stream first reads what its socket holds: samples the engine already
    /// sent are written, not dropped.
    fn handle(&mut self, _: StopStream, ctx: &mut Self::Context) -> Self::Result {
        let (stopped, answer) = tokio::sync::oneshot::channel();
        self.stop_waiters.push(stopped);
        let drains = self.links.settings.stream_target.pacer.is_draining()
            && self.cgroup.is_none()
            && self.series.is_some();
        if drains && !self.draining {
            self.draining = true;
            ctx.run_later(DRAIN_GRACE, |actor, ctx| {
                actor.stop_with(ExitReason::Requested, ctx)
            });
        } else if !drains {
            self.stop_with(ExitReason::Requested, ctx);
        }
        Box::pin(async move {
            let _ = answer.await;
        })
    }
}

pub fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Makes the actor panic, as a bug would: how `tests/supervision.rs` proves
/// that a dead child is replaced. Reachable only through an actor address.
#[doc(hidden)]
#[derive(Message)]
#[rtype(result = "()")]
pub struct InjectPanic;

impl Handler<InjectPanic> for StatsActor {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, _: &mut Self::Context) {
        panic!("injected panic in the StatsActor of {}", short(&self.id));
    }
}
