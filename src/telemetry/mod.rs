//! The service's own state: counters the actors bump, the health checks
//! `/health` answers from, their Prometheus rendering, and the HTTP listener
//! that serves both.

pub mod counters;
pub mod health;
pub mod metrics;
pub mod server;
