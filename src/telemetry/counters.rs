//! The service's own counters, shared by every actor. Plain atomics: actors
//! bump them on the hot path without messages, and shutdown, logs and tests
//! read them.
//!
//! The point counters mirror the writer's books (`writer::buffer::Books`):
//! `points_collected = points_written + points_dropped + points_rejected +
//! points_spooled + points_buffered` whenever the writer is between messages.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counters {
    /// Non-empty stats samples received from the engine or read from cgroups.
    pub samples_received: AtomicU64,
    /// cgroup sampling ticks skipped because the one before ran late.
    pub cgroup_ticks_skipped: AtomicU64,
    /// Containers sampled from the stream because their cgroup files could
    /// not be read although `stats.sampling` is `cgroup`.
    pub cgroup_fallbacks: AtomicU64,
    /// Empty samples (zero `read` time) the engine sends for stopped containers.
    pub samples_empty: AtomicU64,
    /// Stats frames that were not valid JSON samples, skipped.
    pub frames_malformed: AtomicU64,
    /// Stats frames longer than `STATS_LINE_SIZE`, skipped.
    pub frames_oversized: AtomicU64,
    /// Points handed to the writer (stats and events), spool included.
    pub points_collected: AtomicU64,
    /// Points InfluxDB acknowledged.
    pub points_written: AtomicU64,
    /// Oldest points given up because the buffer was full.
    pub points_dropped: AtomicU64,
    /// Points InfluxDB refused as invalid.
    pub points_rejected: AtomicU64,
    /// Points saved to the spool at shutdown.
    pub points_spooled: AtomicU64,
    /// Points waiting or in flight (a gauge).
    pub points_buffered: AtomicU64,
    /// Bytes of encoded points waiting or in flight (a gauge).
    pub buffered_bytes: AtomicU64,
    /// Write requests that failed.
    pub write_errors: AtomicU64,
    /// StatsActors restarted after their stream failed.
    pub stream_restarts: AtomicU64,
    /// Event stream reconnects.
    pub event_reconnects: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn set(counter: &AtomicU64, value: u64) {
        counter.store(value, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
