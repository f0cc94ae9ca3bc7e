//! docker-stats-service: streams the stats of every container on a Docker
//! engine into InfluxDB.
//!
//! The modules follow the data flow, lowest layer first: the engine
//! ([`engine`]) hands stats frames and events to the two sources
//! ([`sources`]), which turn them into the fields of the point schema
//! ([`schema`]); the actors of [`supervision`] decide which containers are
//! followed and hand points to the [`writer`], which delivers them to
//! InfluxDB. [`telemetry`] holds what every actor reports, [`config`] the
//! settings. The arithmetic and the encoding are pure functions; the actors
//! only move messages and own state.

pub mod app;
pub mod backoff;
pub mod cli;
pub mod clock;
pub mod config;
pub mod engine;
pub mod exit;
pub mod loadtest;
pub mod logging;
pub mod schema;
pub mod sources;
pub mod supervision;
pub mod telemetry;
pub mod top;
pub mod writer;
