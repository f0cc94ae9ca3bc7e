//! The Supervisor: owns the registry `container id -> StatsActor` and keeps it
//! equal to the set of running containers.
//!
//! The EventActor tells it what changed (and, after every (re)subscription,
//! the full list of running containers to reconcile with). A child whose
//! source fails is replaced by a new one after an exponential backoff; a
//! child that died without saying so (a panic closes its mailbox silently) is
//! noticed by a periodic liveness check and replaced the same way.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::backoff::Backoff;
use crate::engine::container::short;
use crate::supervision::registry::RegistryChange;
use crate::supervision::stats_actor::{
    ChildExited, ExitReason, StatsActor, StatsLinks, StopStream,
};
use crate::telemetry::counters::Counters;

/// A change for one container, decided from a Docker event.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RegistryUpdate {
    pub id: String,
    pub change: RegistryChange,
}

/// The complete list of running containers: start what is missing, stop
/// what is not in it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reconcile {
    pub running: Vec<String>,
}

/// Stop every child and take no new ones; answers how many were stopped.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct StopAll;

const RESTART_BACKOFF: Backoff = Backoff {
    first: Duration::from_secs(1),
    max: Duration::from_secs(30),
};
/// A child that ran this long before failing starts its backoff afresh.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
const LIVENESS_CHECK_EVERY: Duration = Duration::from_secs(5);

enum ChildState {
    Running(Addr<StatsActor>),
    RestartPending(SpawnHandle),
    /// Outside the selection: kept in the registry so that reconciling does
    /// not start an actor for it again, until it stops or changes.
    NotSelected,
}

struct Child {
    generation: u64,
    state: ChildState,
    started: Instant,
    consecutive_failures: u32,
}

pub struct Supervisor {
    /// What every child is connected to, this Supervisor included.
    links: StatsLinks,
    children: HashMap<String, Child>,
    next_generation: u64,
    stopping: bool,
}

impl Supervisor {
    /// `links.supervisor` must be this Supervisor's own address: create it
    /// with `Supervisor::create(|ctx| ...)`.
    pub fn new(links: StatsLinks) -> Self {
        Supervisor {
            links,
            children: HashMap::new(),
            next_generation: 0,
            stopping: false,
        }
    }

    /// Shows the registry's size on `/health` and `/metrics`.
    fn publish(&self) {
        let followed = self
            .children
            .values()
            .filter(|child| !matches!(child.state, ChildState::NotSelected))
            .count();
        Counters::set(&self.links.counters.containers_watched, followed as u64);
    }

    fn spawn_child(&mut self, id: &str) -> (u64, Addr<StatsActor>) {
        self.next_generation += 1;
        let actor = StatsActor::new(id.to_string(), self.next_generation, self.links.clone());
        (self.next_generation, actor.start())
    }

    fn watch(&mut self, id: &str) {
        if self.stopping || self.children.contains_key(id) {
            return;
        }
        self.links.health.container_followed(id);
        let (generation, addr) = self.spawn_child(id);
        self.children.insert(
            id.to_string(),
            Child {
                generation,
                state: ChildState::Running(addr),
                started: Instant::now(),
                consecutive_failures: 0,
            },
        );
        self.publish();
    }

    fn unwatch(&mut self, id: &str, why: &str, ctx: &mut Context<Self>) {
        if let Some(child) = self.children.remove(id) {
            self.links.health.container_unfollowed(id);
            log::debug!("stopped following container {} ({why})", short(id));
            match child.state {
                ChildState::Running(addr) => addr.do_send(StopStream { drain: false }),
                ChildState::RestartPending(handle) => {
                    ctx.cancel_future(handle);
                }
                ChildState::NotSelected => {}
            }
        }
        self.publish();
    }

    fn restart_later(&mut self, id: &str, reason: &ExitReason, ctx: &mut Context<Self>) {
        let Some(child) = self.children.get_mut(id) else {
            return;
        };
        if child.started.elapsed() >= HEALTHY_RUN {
            child.consecutive_failures = 0;
        }
        child.consecutive_failures += 1;
        let delay = RESTART_BACKOFF.delay(child.consecutive_failures);
        if child.consecutive_failures == 1 {
            log::warn!(
                "stats stream of container {} stopped ({reason:?}); restarting it in {}",
                short(id),
                humantime::format_duration(delay)
            );
        } else {
            log::debug!(
                "stats stream of container {} failed again ({reason:?}); next try in {}",
                short(id),
                humantime::format_duration(delay)
            );
        }
        let key = id.to_string();
        let handle = ctx.run_later(delay, move |supervisor, _| supervisor.restart_now(&key));
        child.state = ChildState::RestartPending(handle);
    }

    fn restart_now(&mut self, id: &str) {
        if self.stopping || !self.children.contains_key(id) {
            return;
        }
        let (generation, addr) = self.spawn_child(id);
        if let Some(child) = self.children.get_mut(id) {
            child.generation = generation;
            child.state = ChildState::Running(addr);
            child.started = Instant::now();
        }
        Counters::add(&self.links.counters.stream_restarts, 1);
    }

    /// Finds children whose actor died without a word (a panic in a handler
    /// closes the mailbox without running `stopped`) and restarts them.
    fn check_liveness(&mut self, ctx: &mut Context<Self>) {
        let dead: Vec<(String, u64)> = self
            .children
            .iter()
            .filter_map(|(id, child)| match &child.state {
                ChildState::Running(addr) if !addr.connected() => {
                    Some((id.clone(), child.generation))
                }
                _ => None,
            })
            .collect();
        for (id, generation) in dead {
            let reason = ExitReason::Died;
            self.child_exited(id, generation, reason, ctx);
        }
    }

    fn child_exited(
        &mut self,
        id: String,
        generation: u64,
        reason: ExitReason,
        ctx: &mut Context<Self>,
    ) {
        let current = self.children.get(&id).map(|c| c.generation);
        if current != Some(generation) || self.stopping {
            return; // A child already replaced or removed.
        }
        if reason.wants_restart() {
            self.restart_later(&id, &reason, ctx);
        } else if reason == ExitReason::NotSelected {
            if let Some(child) = self.children.get_mut(&id) {
                child.state = ChildState::NotSelected;
            }
            self.links.health.container_unfollowed(&id);
            self.publish();
        } else {
            log::debug!("stopped following container {} ({reason:?})", short(&id));
            self.children.remove(&id);
            self.links.health.container_unfollowed(&id);
            self.publish();
        }
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(LIVENESS_CHECK_EVERY, |supervisor, ctx| {
            supervisor.check_liveness(ctx);
            supervisor.publish();
        });
    }
}

impl Handler<RegistryUpdate> for Supervisor {
    type Result = ();

    fn handle(&mut self, update: RegistryUpdate, ctx: &mut Self::Context) {
        match update.change {
            RegistryChange::Watch => self.watch(&update.id),
            RegistryChange::Unwatch => self.unwatch(&update.id, "it stopped", ctx),
            RegistryChange::Refresh => {
                if self.children.contains_key(&update.id) {
                    self.unwatch(&update.id, "its name or limits changed", ctx);
                    self.watch(&update.id);
                }
            }
            RegistryChange::None => {}
        }
    }
}

impl Handler<Reconcile> for Supervisor {
    type Result = ();

    fn handle(&mut self, Reconcile { running }: Reconcile, ctx: &mut Self::Context) {
        let orphans: Vec<String> = self
            .children
            .keys()
            .filter(|id| !running.contains(id))
            .cloned()
            .collect();
        for id in &orphans {
            self.unwatch(id, "no longer running", ctx);
        }
        let before = self.children.len();
        for id in &running {
            self.watch(id);
        }
        let added = self.children.len() - before;
        if added > 0 || !orphans.is_empty() {
            log::info!(
                "watching {} running containers ({added} new, {} no longer running)",
                self.children.len(),
                orphans.len()
            );
        } else {
            log::debug!(
                "watching {} running containers (no change)",
                self.children.len()
            );
        }
    }
}

impl Handler<ChildExited> for Supervisor {
    type Result = ();

    fn handle(&mut self, exited: ChildExited, ctx: &mut Self::Context) {
        self.child_exited(exited.id, exited.generation, exited.reason, ctx);
    }
}

impl Handler<StopAll> for Supervisor {
    type Result = ResponseFuture<usize>;

    /// Answers once every child has handled its stop, so that no sample
    /// reaches the writer after the caller goes on to drain it.
    fn handle(&mut self, _: StopAll, ctx: &mut Self::Context) -> Self::Result {
        self.stopping = true;
        let mut stops = Vec::new();
        let children: Vec<Child> = self.children.drain().map(|(_, child)| child).collect();
        self.publish();
        for child in children {
            match child.state {
                ChildState::Running(addr) => stops.push(addr.send(StopStream { drain: true })),
                ChildState::RestartPending(handle) => {
                    ctx.cancel_future(handle);
                }
                ChildState::NotSelected => {}
            }
        }
        Box::pin(async move {
            let count = stops.len();
            futures_util::future::join_all(stops).await;
            count
        })
    }
}

/// The child following a container, if it is running: for
/// `tests/supervision.rs`.
#[doc(hidden)]
#[derive(Message)]
#[rtype(result = "Option<Addr<StatsActor>>")]
pub struct ChildOf(pub String);

impl Handler<ChildOf> for Supervisor {
    type Result = Option<Addr<StatsActor>>;

    fn handle(&mut self, ChildOf(id): ChildOf, _: &mut Self::Context) -> Self::Result {
        match &self.children.get(&id)?.state {
            ChildState::Running(addr) => Some(addr.clone()),
            ChildState::RestartPending(_) | ChildState::NotSelected => None,
        }
    }
}
