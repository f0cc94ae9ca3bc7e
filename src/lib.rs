//! docker-stats-service: streams the stats of every container on a Docker
//! engine into InfluxDB.
//!
//! Data flows engine -> [`stats_actor`] -> [`writer`] -> InfluxDB, with the
//! [`event_actor`] telling the [`supervisor`] which containers to follow.
//! The arithmetic (`docker::stats`) and the encoding (`line_protocol`) are
//! pure functions; the actors only move messages and own state.

pub mod app;
pub mod cgroup;
pub mod cli;
pub mod config;
pub mod counters;
pub mod docker;
pub mod event_actor;
pub mod health;
pub mod line_protocol;
pub mod logging;
pub mod stats_actor;
pub mod supervisor;
pub mod writer;
