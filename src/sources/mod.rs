//! The two ways a container's stats are read, side by side: the engine's
//! stats stream ([`stream`]) and the container's cgroup files ([`cgroup`]).
//! Each turns its input into the same `docker_stats` fields through the
//! shared formulas of `schema::formulas`; the StatsActor drives either one.

pub mod cgroup;
pub mod stream;

use crate::schema::point::Field;

/// One sample from either source: its fields and when it was taken
/// (nanoseconds since the Unix epoch).
#[derive(Debug)]
pub struct Reading {
    pub fields: Vec<Field>,
    pub timestamp: i64,
    /// Processes the OOM killer killed since the previous reading: the
    /// cgroup source counts them; the engine's stream does not say.
    pub oom_kills: u64,
}
