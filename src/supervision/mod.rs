//! The actors that decide what is followed: the Supervisor and its registry
//! of per-container StatsActors, and the EventActor that tells it which
//! containers started and stopped.

pub mod event_actor;
pub mod registry;
pub mod selection;
pub mod stats_actor;
pub mod supervisor;
