//! The EventActor: follows Docker's event stream, tells the Supervisor which
//! containers started and stopped, and records lifecycle events as
//! `docker_events` points.
//!
//! Subscribing comes before listing: the actor opens the event stream (with
//! `since` a moment in the past, so nothing between the two is missed even if
//! the subscription takes a while to reach the daemon), then lists the
//! running containers, sends that list to the Supervisor to reconcile with,
//! and only then applies the events that arrived meanwhile, in order. When
//! the stream breaks it subscribes again from the last event it saw.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bollard::models::EventMessage;
use bollard::query_parameters::{EventsOptionsBuilder, ListContainersOptionsBuilder};
use bollard::Docker;
use futures_util::StreamExt;

use crate::clock::now_ns;
use crate::engine::events::{ContainerEvent, EventDetails, ResumePoint};
use crate::schema::event_point::event_point;
use crate::supervision::registry::{change_for, RegistryChange};
use crate::supervision::supervisor::{Reconcile, RegistryUpdate, Supervisor};
use crate::telemetry::counters::Counters;
use crate::telemetry::health::Health;
use crate::writer::WritePoint;

/// How far before "now" the first subscription starts.
const FIRST_SINCE_MARGIN: Duration = Duration::from_secs(1);
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReconcileCause {
    /// Right after (re)subscribing: failure means the engine is gone.
    Subscribed,
    /// The periodic check that catches events the daemon skipped.
    Periodic,
}

/// Stop following events.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopEvents;

pub struct EventActor {
    docker: Docker,
    host: String,
    supervisor: Addr<Supervisor>,
    writer: Recipient<WritePoint>,
    counters: Arc<Counters>,
    health: Arc<Health>,
    /// Events held back while the container list is fetched.
    held: Option<Vec<ContainerEvent>>,
    /// Where to resume after a reconnection, without repeats.
    resume: ResumePoint,
    /// Bumped on every subscription so a replaced stream is ignored.
    subscription: u64,
    /// Bumped on every reconciliation so only the newest list is applied.
    reconciliation: u64,
    /// Set while a container list is being fetched.
    listing: bool,
    reconcile_interval: Duration,
    /// Set while the engine cannot be reached, to log that once.
    disconnected_since: Option<std::time::Instant>,
    stream: Option<SpawnHandle>,
    resubscribe_pending: bool,
}

impl EventActor {
    pub fn new(
        docker: Docker,
        host: String,
        supervisor: Addr<Supervisor>,
        writer: Recipient<WritePoint>,
        counters: Arc<Counters>,
        health: Arc<Health>,
        reconcile_interval: Duration,
    ) -> Self {
        EventActor {
            docker,
            host,
            supervisor,
            writer,
            counters,
            health,
            held: None,
            resume: ResumePoint::default(),
            subscription: 0,
            reconciliation: 0,
            listing: false,
            reconcile_interval,
            disconnected_since: None,
            stream: None,
            resubscribe_pending: false,
        }
    }

    fn subscribe(&mut self, ctx: &mut Context<Self>) {
        self.resubscribe_pending = false;
        if let Some(stream) = self.stream.take() {
            ctx.cancel_future(stream);
        }
        self.subscription += 1;
        let subscription = self.subscription;
        let since_ns = if let Some(last) = self.resume.last_time_ns() {
            last
        } else {
            now_ns() - FIRST_SINCE_MARGIN.as_nanos() as i64
        };
        let options = EventsOptionsBuilder::new()
            .since(&format!(
                "{}.{:09}",
                since_ns / 1_000_000_000,
                since_ns % 1_000_000_000
            ))
            .filters(&HashMap::from([("type", vec!["container"])]))
            .build();
        let events = self
            .docker
            .events(Some(options))
            .map(move |item| (subscription, item));
        self.stream = Some(ctx.add_stream(events));
        self.reconcile(ReconcileCause::Subscribed, ctx);
    }

    /// Lists the running containers and hands the list to the Supervisor.
    /// Events that arrive while the list is fetched are held back and
    /// applied after it, in order, so a stale list never undoes them.
    ///
    /// A periodic check waits for a list in flight instead of replacing
    /// it: replaced every time by a newer one, a list slower than the
    /// interval would never be applied, and the events held for it never.
    /// A new subscription does replace it, as its list must come after.
    fn reconcile(&mut self, cause: ReconcileCause, ctx: &mut Context<Self>) {
        if self.listing && cause == ReconcileCause::Periodic {
            log::trace!("container list still in flight; periodic reconciliation skipped");
            return;
        }
        self.listing = true;
        self.held.get_or_insert_with(Vec::new);
        self.reconciliation += 1;
        let reconciliation = self.reconciliation;
        let docker = self.docker.clone();
        let list = async move {
            let options = ListContainersOptionsBuilder::new().all(false).build();
            docker.list_containers(Some(options)).await
        };
        ctx.spawn(list.into_actor(self).map(move |result, actor, ctx| {
            if actor.reconciliation != reconciliation {
                return; // A newer reconciliation will apply the held events.
            }
            actor.listing = false;
            match result {
                Ok(containers) => {
                    actor.health.docker.pass("the engine answers");
                    if !actor.resubscribe_pending {
                        actor.health.events.pass("subscribed");
                    }
                    if let Some(since) = actor.disconnected_since.take() {
                        log::info!(
                            "Docker engine reachable again after {}; reconciled with the running containers",
                            humantime::format_duration(std::time::Duration::from_secs(since.elapsed().as_secs()))
                        );
                    }
                    let running = containers.into_iter().filter_map(|c| c.id).collect();
                    actor.supervisor.do_send(Reconcile { running });
                    for event in actor.held.take().unwrap_or_default() {
                        actor.apply(event, ctx);
                    }
                }
                Err(error) => {
                    // Without a list, the events held back are still true.
                    for event in actor.held.take().unwrap_or_default() {
                        actor.apply(event, ctx);
                    }
                    actor.note_failure(&format!("cannot list running containers: {error}"));
                    if cause == ReconcileCause::Subscribed {
                        actor.resubscribe_later(ctx);
                    }
                }
            }
        }));
    }

    /// Logs a connection problem once when it starts; the rest is counted.
    fn note_failure(&mut self, message: &str) {
        self.health.docker.fail(message);
        self.health.events.fail(message);
        if self.disconnected_since.is_none() {
            log::error!(
                "{message}; retrying every {}s until the engine answers",
                RESUBSCRIBE_DELAY.as_secs()
            );
            self.disconnected_since = Some(std::time::Instant::now());
        } else {
            log::trace!("{message}");
        }
    }

    fn resubscribe_later(&mut self, ctx: &mut Context<Self>) {
        if self.resubscribe_pending || ctx.state() != ActorState::Running {
            return;
        }
        self.resubscribe_pending = true;
        Counters::add(&self.counters.event_reconnects, 1);
        ctx.run_later(RESUBSCRIBE_DELAY, |actor, ctx| actor.subscribe(ctx));
    }

    fn apply(&mut self, event: ContainerEvent, ctx: &mut Context<Self>) {
        let change = change_for(&event);
        if change != RegistryChange::None {
            self.supervisor.do_send(RegistryUpdate {
                id: event.id.clone(),
                change,
            });
        }
        self.record(event, ctx);
    }

    /// Writes the event point, first asking the engine for the OOM flag and
    /// restart count where they matter and the container still exists.
    fn record(&mut self, event: ContainerEvent, ctx: &mut Context<Self>) {
        let host = self.host.clone();
        let writer = self.writer.clone();
        if !matches!(event.action.as_str(), "start" | "die" | "restart") {
            if let Some(line) = event_point(&event, &EventDetails::default(), &host) {
                writer.do_send(WritePoint::new(line));
            }
            return;
        }
        let docker = self.docker.clone();
        ctx.spawn(
            async move {
                let details = match docker.inspect_container(&event.id, None).await {
                    Ok(inspect) => EventDetails {
                        oom_killed: inspect.state.as_ref().and_then(|s| s.oom_killed),
                        restart_count: inspect.restart_count,
                    },
                    Err(_) => EventDetails::default(),
                };
                if let Some(line) = event_point(&event, &details, &host) {
                    writer.do_send(WritePoint::new(line));
                }
            }
            .into_actor(self),
        );
    }
}

impl Actor for EventActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.subscribe(ctx);
        // The daemon skips events for a reader that falls behind and keeps
        // only its last 256; a periodic look at the truth catches the rest.
        ctx.run_interval(self.reconcile_interval, |actor, ctx| {
            actor.reconcile(ReconcileCause::Periodic, ctx)
        });
    }
}

type Subscribed = (u64, Result<EventMessage, bollard::errors::Error>);

impl StreamHandler<Subscribed> for EventActor {
    fn handle(&mut self, (subscription, item): Subscribed, ctx: &mut Self::Context) {
        if subscription != self.subscription {
            return;
        }
        match item {
            Ok(message) => {
                let Some(event) = ContainerEvent::from_message(&message) else {
                    return;
                };
                if !self.resume.is_new(&event) {
                    return;
                }
                match &mut self.held {
                    Some(held) => held.push(event),
                    None => self.apply(event, ctx),
                }
            }
            Err(error) => {
                self.note_failure(&format!("Docker event stream failed: {error}"));
                self.resubscribe_later(ctx);
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        if !self.resubscribe_pending && ctx.state() == ActorState::Running {
            self.note_failure("Docker event stream ended");
            self.resubscribe_later(ctx);
        }
    }
}

impl Handler<StopEvents> for EventActor {
    type Result = ();

    fn handle(&mut self, _: StopEvents, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
