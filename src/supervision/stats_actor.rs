//! The StatsActor: follows one container and turns every sample into a
//! `docker_stats` point for the BatchWriterActor.
//!
//! It inspects its container once at start (for tags, the CPU limit and
//! where its cgroup is), then reads it with one of the two sources: the
//! cgroup files on a steady clock when the service samples cgroups and they
//! can be read, the engine's stats stream otherwise. It never restarts
//! itself: when its source fails, ends or stalls it stops and tells the
//! Supervisor why, and the Supervisor decides whether and when to start a
//! new one.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bollard::Docker;

use crate::clock::now_ms;
use crate::engine::container::{short, ContainerInfo};
use crate::engine::stats_stream::{self, StatsItem, StreamError};
use crate::schema::event_point::oom_kill_point;
use crate::schema::fields::FieldSelection;
use crate::schema::line_protocol::{SeriesKey, CUT_MARKER, MAX_TAG_VALUE_BYTES};
use crate::schema::point::encode_point;
use crate::schema::tags::{stats_series, LabelTag};
use crate::sources::cgroup::source::{CannotSample, CgroupSettings, CgroupSource};
use crate::sources::stream::source::{StreamSettings, StreamSource};
use crate::sources::Reading;
use crate::supervision::selection::ContainerFilter;
use crate::telemetry::counters::Counters;
use crate::telemetry::health::Health;
use crate::writer::WritePoint;

/// What every StatsActor shares: fixed for the life of the service.
#[derive(Debug)]
pub struct StatsSettings {
    pub host: String,
    pub fields: FieldSelection,
    pub label_tags: Vec<LabelTag>,
    pub stream: StreamSettings,
    /// Set when containers are sampled from their cgroups.
    pub cgroup: Option<CgroupSettings>,
    /// Which containers to follow (`record --containers`); empty: all.
    pub selection: Vec<ContainerFilter>,
    /// The `record` run whose points these are (tag `run_id`).
    pub run_id: Option<String>,
}

/// Why a StatsActor stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum ExitReason {
    /// The Supervisor asked it to.
    Requested,
    /// The container exists but does not run.
    NotRunning,
    /// The container is not one the selection names: it is left alone.
    NotSelected,
    /// The container no longer exists.
    Gone,
    /// The stream ended although nobody asked.
    StreamEnded,
    StreamError(String),
    /// No frame for longer than the stall timeout.
    Stalled(Duration),
    /// The container's cgroup files could no longer be read (they go when
    /// it stops; the engine says whether it still runs).
    CgroupUnreadable(String),
    InspectFailed(String),
    /// The actor died without a word: a panic in one of its handlers.
    Died,
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
                | ExitReason::CgroupUnreadable(_)
                | ExitReason::InspectFailed(_)
                | ExitReason::Died
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

/// Asks a StatsActor to stop; answered once it has. With `drain` (at
/// shutdown) a stream first hands over what its socket still holds, so
/// samples the engine already sent are written, not dropped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopStream {
    pub drain: bool,
}

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

/// The source a StatsActor reads its container with.
enum Source {
    Stream(StreamSource),
    // Boxed: its open files and last reading are most of an actor's size.
    Cgroup(Box<CgroupSource>),
}

pub struct StatsActor {
    id: String,
    generation: u64,
    links: StatsLinks,
    series: Option<SeriesKey>,
    /// The container's name, for the events its readings show.
    name: String,
    /// Where `/metrics` reads the time of this container's last sample.
    last_sample_ms: Option<Arc<AtomicI64>>,
    /// Set once the container is inspected and followed.
    source: Option<Source>,
    /// Stopping at shutdown: the stream's end is the requested stop.
    draining: bool,
    /// StopStream senders, answered when the actor has stopped.
    stop_waiters: Vec<tokio::sync::oneshot::Sender<()>>,
    exit: ExitReason,
}

/// A tick of a container's cgroup sampling clock: when it was due.
#[derive(Message)]
#[rtype(result = "()")]
struct Tick(Instant);

impl StatsActor {
    pub fn new(id: String, generation: u64, links: StatsLinks) -> Self {
        StatsActor {
            id,
            generation,
            links,
            series: None,
            name: String::new(),
            last_sample_ms: None,
            source: None,
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

    fn selects(&self, info: &ContainerInfo) -> bool {
        let filters = &self.links.settings.selection;
        filters.is_empty()
            || filters.iter().any(|filter| {
                filter.matches(&info.id, &info.name, |key| {
                    info.labels.get(key).map(String::as_str)
                })
            })
    }

    fn follow(&mut self, info: ContainerInfo, ctx: &mut Context<Self>) {
        let settings = Arc::clone(&self.links.settings);
        self.name = info.name.clone();
        self.last_sample_ms = Some(self.links.health.stream_started(
            &self.id,
            self.generation,
            &info.name,
        ));
        if let Some(cgroup) = &settings.cgroup {
            match CgroupSource::open(cgroup, &info, &settings.fields) {
                Ok(source) => {
                    log::debug!(
                        "sampling container {} ({}) from its cgroup every {}",
                        info.name,
                        short(&self.id),
                        humantime::format_duration(source.interval())
                    );
                    ctx.add_stream(futures_util::StreamExt::map(source.ticks(), Tick));
                    self.source = Some(Source::Cgroup(Box::new(source)));
                    self.set_series(&info, "cgroup");
                    return;
                }
                Err(why) => self.fall_back_to_stream(&info, &why),
            }
        }
        self.set_series(&info, "stream");
        log::debug!(
            "following stats of container {} ({})",
            info.name,
            short(&self.id)
        );
        self.source = Some(Source::Stream(StreamSource::new(
            &self.id,
            info.cpu_limit_cores,
        )));
        ctx.add_stream(stats_stream::open(
            settings.stream.target.clone(),
            self.id.clone(),
        ));
    }

    /// The container's series key; tag values cut to fit InfluxDB's limits
    /// are said once for the container, and counted.
    fn set_series(&mut self, info: &ContainerInfo, source: &str) {
        let settings = &self.links.settings;
        let series = stats_series(
            info,
            &settings.host,
            &settings.label_tags,
            source,
            settings.run_id.as_deref(),
        );
        let cut = series.cut_tags();
        if !cut.is_empty() && self.links.health.first_tags_cut(&self.id) {
            Counters::add(&self.links.counters.tag_values_cut, cut.len() as u64);
            log::warn!(
                "container {} ({}): the value of tag(s) {} is longer than InfluxDB takes in a series key; written cut to at most {MAX_TAG_VALUE_BYTES} bytes, ending in {CUT_MARKER}",
                info.name,
                short(&self.id),
                cut.join(", ")
            );
        }
        self.series = Some(series);
    }

    /// The container's cgroup cannot be sampled: counted every time, said
    /// once while the container is followed (the mark goes with it).
    fn fall_back_to_stream(&self, info: &ContainerInfo, why: &CannotSample) {
        Counters::add(&self.links.counters.cgroup_fallbacks, 1);
        if self.links.health.first_cgroup_fallback(&self.id) {
            log::warn!(
                "cannot sample container {} ({}) from its cgroup: {why}; using the engine's stats stream for it (check stats.cgroup_root and stats.proc_root)",
                info.name,
                short(&self.id)
            );
        }
    }

    /// Counts one sample, whichever source took it, and hands its point
    /// to the writer.
    fn emit(&self, reading: Reading) {
        let Some(series) = &self.series else { return };
        Counters::add(&self.links.counters.samples_received, 1);
        if let Some(cell) = &self.last_sample_ms {
            cell.store(now_ms() as i64, Ordering::Relaxed);
        }
        let selection = &self.links.settings.fields;
        if let Some(line) = encode_point(series, &reading.fields, selection, reading.timestamp) {
            self.links
                .writer
                .do_send(WritePoint::stamped(line, reading.timestamp));
        }
        if reading.oom_kills > 0 {
            self.report_oom_kills(reading.oom_kills, reading.timestamp);
        }
    }

    /// Processes the OOM killer killed since the last reading: counted,
    /// said, and written as a `docker_events` point, since the container
    /// may well go on running without the engine saying anything.
    fn report_oom_kills(&self, killed: u64, timestamp: i64) {
        Counters::add(&self.links.counters.oom_kills, killed);
        log::warn!(
            "container {} ({}): the OOM killer killed {killed} of its processes",
            self.name,
            short(&self.id)
        );
        let host = &self.links.settings.host;
        if let Some(line) = oom_kill_point(&self.id, &self.name, host, killed, timestamp) {
            self.links
                .writer
                .do_send(WritePoint::stamped(line, timestamp));
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
                        Some(info) if !actor.selects(&info) => {
                            actor.stop_with(ExitReason::NotSelected, ctx)
                        }
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
        let Some(Source::Stream(source)) = &mut self.source else {
            return;
        };
        match item {
            Ok(item) => {
                let links = &self.links;
                let settings = &links.settings;
                if let Some(reading) =
                    source.read(item, &settings.stream, &settings.fields, &links.counters)
                {
                    self.emit(reading);
                }
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

impl StreamHandler<Tick> for StatsActor {
    fn handle(&mut self, Tick(due): Tick, ctx: &mut Self::Context) {
        if ctx.state() != ActorState::Running {
            return;
        }
        let Some(Source::Cgroup(source)) = &mut self.source else {
            return;
        };
        match source.read(due, &self.links.counters) {
            Ok(reading) => self.emit(reading),
            Err(error) => {
                log::debug!(
                    "cgroup of container {} no longer readable: {error}",
                    short(&self.id)
                );
                self.stop_with(ExitReason::CgroupUnreadable(error.to_string()), ctx);
            }
        }
    }

    fn finished(&mut self, _: &mut Self::Context) {
        // The clock never ends on its own.
    }
}

/// How long a stream may take to hand over what its socket still holds at
/// shutdown.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

impl Handler<StopStream> for StatsActor {
    type Result = ResponseFuture<()>;

    /// Answers when the actor has stopped. Draining applies to a stream
    /// only: a cgroup reading has nothing in flight.
    fn handle(&mut self, stop: StopStream, ctx: &mut Self::Context) -> Self::Result {
        let (stopped, answer) = tokio::sync::oneshot::channel();
        self.stop_waiters.push(stopped);
        let drains = stop.drain && matches!(self.source, Some(Source::Stream(_)));
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
