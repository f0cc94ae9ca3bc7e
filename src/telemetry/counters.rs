//! The service's own counters and gauges, shared by every actor, each
//! declared once with the Prometheus name, type and help `/metrics` shows
//! it under ([`Counters::exposition`]). Plain atomics: actors bump them on
//! the hot path without messages, and shutdown, `/health` and `/metrics`
//! read them.
//!
//! The point counters mirror the writer's books (`writer::buffer::Books`):
//! `points_collected = points_written + points_dropped + points_rejected +
//! points_spooled + points_buffered` whenever the writer is between messages.

use std::fmt;
use std::str::FromStr;
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
    /// Processes the OOM killer killed in followed containers, seen as a
    /// growing `oom_kill` count in their cgroups.
    pub oom_kills: AtomicU64,
    /// Empty samples (zero `read` time) the engine sends for stopped containers.
    pub samples_empty: AtomicU64,
    /// Stats frames that were not valid JSON samples, skipped.
    pub frames_malformed: AtomicU64,
    /// Stats frames longer than `STATS_LINE_SIZE`, skipped.
    pub frames_oversized: AtomicU64,
    /// Tag values cut to fit InfluxDB's series key limits (one per tag
    /// and container followed).
    pub tag_values_cut: AtomicU64,
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
    /// Damaged stretches of the disk buffer's log skipped, and segments that
    /// could not be read at start (each of those counted as one dropped
    /// point).
    pub disk_buffer_damaged: AtomicU64,
    /// Syncs of the disk buffer's active segment: intervals in which what
    /// was written to it had not all been acknowledged yet.
    pub disk_buffer_syncs: AtomicU64,
    /// Spool files that could not be read to their end at start, left in
    /// place for the operator.
    pub spool_files_unreadable: AtomicU64,
    /// Bytes of encoded points waiting or in flight (a gauge).
    pub buffered_bytes: AtomicU64,
    /// Containers in the Supervisor's registry (a gauge).
    pub containers_watched: AtomicU64,
    /// Write requests that failed.
    pub write_errors: AtomicU64,
    /// StatsActors restarted after their stream failed.
    pub stream_restarts: AtomicU64,
    /// Event stream reconnects.
    pub event_reconnects: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// One sample of `/metrics`: a series of a metric family. Samples of one
/// family are consecutive and share the first one's help.
pub struct Exposed<'a> {
    pub name: &'static str,
    /// A label that tells the family's series apart, e.g. `reason="rejected"`.
    pub label: Option<(&'static str, &'static str)>,
    pub kind: Kind,
    pub help: &'static str,
    pub value: &'a AtomicU64,
}

const fn exposed<'a>(
    name: &'static str,
    label: Option<(&'static str, &'static str)>,
    kind: Kind,
    help: &'static str,
    value: &'a AtomicU64,
) -> Exposed<'a> {
    Exposed {
        name,
        label,
        kind,
        help,
        value,
    }
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

    #[rustfmt::skip]
    /// Every counter as `/metrics` shows it. `write_errors` is not here:
    /// `/metrics` shows it by class, from the health state.
    pub fn exposition(&self) -> [Exposed<'_>; 21] {
        use Kind::{Counter, Gauge};
        let reason = |r| Some(("reason", r));
        [
            exposed("dss_samples_received_total", None, Counter,
                "Stats samples received from the engine or read from cgroups.", &self.samples_received),
            exposed("dss_cgroup_ticks_skipped_total", None, Counter,
                "cgroup sampling ticks skipped because the previous one ran late.", &self.cgroup_ticks_skipped),
            exposed("dss_cgroup_fallbacks_total", None, Counter,
                "Containers sampled from the stream because their cgroup files could not be read.", &self.cgroup_fallbacks),
            exposed("dss_oom_kills_total", None, Counter,
                "Processes the OOM killer killed in followed containers (cgroup oom_kill counts).", &self.oom_kills),
            exposed("dss_samples_empty_total", None, Counter,
                "Empty samples of stopped containers, not written.", &self.samples_empty),
            exposed("dss_frames_skipped_total", reason("malformed"), Counter,
                "Stats frames skipped, by reason.", &self.frames_malformed),
            exposed("dss_frames_skipped_total", reason("oversized"), Counter, "", &self.frames_oversized),
            exposed("dss_tag_values_cut_total", None, Counter,
                "Tag values cut to fit InfluxDB's series key limit, one per tag of each container followed.", &self.tag_values_cut),
            exposed("dss_points_collected_total", None, Counter,
                "Points handed to the writer.", &self.points_collected),
            exposed("dss_points_written_total", None, Counter,
                "Points InfluxDB acknowledged.", &self.points_written),
            exposed("dss_points_dropped_total", reason("buffer_full"), Counter,
                "Points given up, by reason.", &self.points_dropped),
            exposed("dss_points_dropped_total", reason("rejected"), Counter, "", &self.points_rejected),
            exposed("dss_points_spooled_total", None, Counter,
                "Points saved to the spool at shutdown.", &self.points_spooled),
            exposed("dss_points_buffered", None, Gauge,
                "Points waiting or in flight.", &self.points_buffered),
            exposed("dss_spool_files_unreadable_total", None, Counter,
                "Spool files that could not be read to their end at start: their readable points are delivered, the files left in place.", &self.spool_files_unreadable),
            exposed("dss_buffered_bytes", None, Gauge,
                "Bytes of encoded points waiting or in flight (on disk with the disk buffer).", &self.buffered_bytes),
            exposed("dss_disk_buffer_damaged_total", None, Counter,
                "Damaged stretches of the disk buffer skipped, and segments that could not be read at start: at start each counted as one dropped point, while reading their records counted as dropped.", &self.disk_buffer_damaged),
            exposed("dss_disk_buffer_syncs_total", None, Counter,
                "Syncs of the disk buffer's log to disk: intervals in which points written to it were not all acknowledged by InfluxDB yet (what InfluxDB acknowledged needs no sync).", &self.disk_buffer_syncs),
            exposed("dss_containers_watched", None, Gauge,
                "Containers in the Supervisor's registry.", &self.containers_watched),
            exposed("dss_stream_restarts_total", None, Counter,
                "Stats streams restarted after a failure.", &self.stream_restarts),
            exposed("dss_event_reconnects_total", None, Counter,
                "Docker event stream reconnections.", &self.event_reconnects),
        ]
    }

    /// The writer's books as they stand: the service's last log line.
    pub fn books(&self) -> BooksLine {
        BooksLine {
            collected: Counters::get(&self.points_collected),
            written: Counters::get(&self.points_written),
            dropped: Counters::get(&self.points_dropped),
            rejected: Counters::get(&self.points_rejected),
            spooled: Counters::get(&self.points_spooled),
            undelivered: Counters::get(&self.points_buffered),
        }
    }
}

/// The books the service logs when it stops, in a form made to be read
/// back (by operators' scripts and the tests): `points: collected=N
/// written=N dropped=N rejected=N spooled=N undelivered=N`, which always
/// balance: `collected` is the sum of the others.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BooksLine {
    pub collected: u64,
    pub written: u64,
    pub dropped: u64,
    pub rejected: u64,
    pub spooled: u64,
    pub undelivered: u64,
}

impl BooksLine {
    pub const PREFIX: &'static str = "points: ";

    pub fn balances(&self) -> bool {
        self.collected
            == self.written + self.dropped + self.rejected + self.spooled + self.undelivered
    }
}

impl fmt::Display for BooksLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}collected={} written={} dropped={} rejected={} spooled={} undelivered={}",
            Self::PREFIX,
            self.collected,
            self.written,
            self.dropped,
            self.rejected,
            self.spooled,
            self.undelivered
        )
    }
}

impl FromStr for BooksLine {
    type Err = String;

    /// Reads the line back from anywhere in a log line (after the logger's
    /// own prefix).
    fn from_str(text: &str) -> Result<Self, String> {
        let (_, pairs) = text
            .split_once(Self::PREFIX)
            .ok_or_else(|| format!("{text:?} holds no books ({:?})", Self::PREFIX))?;
        let value = |key: &str| -> Result<u64, String> {
            pairs
                .split_whitespace()
                .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("no {key}=N in {text:?}"))
        };
        Ok(BooksLine {
            collected: value("collected")?,
            written: value("written")?,
            dropped: value("dropped")?,
            rejected: value("rejected")?,
            spooled: value("spooled")?,
            undelivered: value("undelivered")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_books_line_reads_back_what_it_says() {
        let books = BooksLine {
            collected: 10,
            written: 6,
            dropped: 1,
            rejected: 1,
            spooled: 1,
            undelivered: 1,
        };
        let logged = format!("[2026-11-25T08:00:00Z INFO app] {books}");
        assert_eq!(logged.parse::<BooksLine>(), Ok(books));
        assert!(books.balances());
        assert!("points: collected=1".parse::<BooksLine>().is_err());
    }
}
