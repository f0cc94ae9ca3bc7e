//! docker-stats-service: streams the stats of every container on a Docker
//! engine into InfluxDB.
//!
//! Data flows engine -> [`stats_actor`] -> [`writer`] -> InfluxDB, with the
//! [`event_actor`] telling the [`supervisor`] which containers to follow.
//! The arithmetic (`docker::stats`) and the encoding (`line_protocol`) are
//! pure functions; the actors only move messages and own state.

pub mod app;
pub mod backoff;
pub mod cli;
pub mod clock;
pub mod config;
pub mod engine;
pub mod exit;
pub mod logging;
pub mod schema;
pub mod sources;
pub mod supervision;
pub mod telemetry;
pub mod writer;
