//! Telling InfluxDB's outages and a full buffer apart from the normal
//! flow: each is logged once when it starts and once when it ends, the rest
//! counted; retries wait as `retry` says.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::error::WriteError;
use super::store::Store;
use super::BatchWriterActor;
use crate::telemetry::counters::Counters;

pub(super) struct Overflow {
    started: Instant,
    reported: Instant,
    /// Points dropped since the last report.
    unreported: u64,
}

/// How often a full buffer is reported while it keeps dropping points.
const OVERFLOW_REPORT_EVERY: Duration = Duration::from_secs(60);

impl BatchWriterActor {
    /// The overflow ends when writes succeed again, not when one point
    /// happens to fit: a full buffer stays full while InfluxDB is away.
    pub(super) fn end_overflow(&mut self) {
        if let Some(overflow) = self.overflow.take() {
            log::warn!(
                "buffer no longer overflowing after {}; {} more point(s) were dropped since the last report, {} in total",
                format_delay(overflow.started.elapsed()),
                overflow.unreported,
                self.store.books().dropped
            );
        }
    }

    pub(super) fn report_overflow(&mut self, dropped: u64) {
        let now = Instant::now();
        match &mut self.overflow {
            None => {
                let setting = match self.store {
                    Store::Memory(_) => "max_buffer_bytes",
                    Store::Disk(_) => "buffer.max_disk_bytes, or the disk is full",
                };
                log::warn!(
                    "buffer full ({} bytes of points, {setting}): dropping the oldest points while InfluxDB does not take them",
                    self.store.bytes()
                );
                self.overflow = Some(Overflow {
                    started: now,
                    reported: now,
                    unreported: dropped,
                });
            }
            Some(overflow) => {
                overflow.unreported += dropped;
                if now - overflow.reported >= OVERFLOW_REPORT_EVERY {
                    log::warn!(
                        "buffer still full: {} more point(s) dropped ({} in total)",
                        overflow.unreported,
                        self.store.books().dropped
                    );
                    overflow.reported = now;
                    overflow.unreported = 0;
                }
            }
        }
    }

    pub(super) fn on_success(&mut self) {
        self.consecutive_failures = 0;
        self.end_overflow();
        if let Some((since, _)) = self.outage.take() {
            log::info!(
                "InfluxDB writes succeed again after {} of failures; {} point(s) waiting",
                format_delay(since.elapsed()),
                self.store.waiting()
            );
        }
    }

    pub(super) fn on_failure(&mut self, error: WriteError) {
        Counters::add(&self.counters.write_errors, 1);
        self.health
            .write_failed(error.class(), error.to_string(), error.needs_operator());
        self.consecutive_failures += 1;
        let delay = match &error {
            WriteError::DatabaseNotFound { .. } => {
                // Dropped while we run: create it again, at once the first
                // time, with backoff if it keeps disappearing.
                self.database_ready = false;
                if self.consecutive_failures == 1 {
                    Duration::ZERO
                } else {
                    self.retry.delay(self.consecutive_failures, fastrand::f64())
                }
            }
            WriteError::Server {
                retry_after: Some(wait),
                ..
            } => (*wait).min(self.retry.max_delay),
            error if error.is_transient() => {
                self.retry.delay(self.consecutive_failures, fastrand::f64())
            }
            // Credentials, permissions or the database name will not fix
            // themselves quickly; try at the cap so that a fixed server is
            // picked up without hammering it.
            _ => self.retry.max_delay,
        };
        // One line when the outage starts and one when its kind changes
        // (say, from unreachable to refusing the credentials); the rest is
        // counted in write_errors.
        match &self.outage {
            None => {
                log::error!(
                    "{error}; {} point(s) kept {}, retrying in {}",
                    self.store.buffered(),
                    match self.store {
                        Store::Memory(_) => "in memory",
                        Store::Disk(_) => "in the disk buffer",
                    },
                    format_delay(delay)
                );
                self.outage = Some((Instant::now(), error.class()));
            }
            Some((since, class)) if *class != error.class() => {
                log::error!("{error}; still retrying");
                self.outage = Some((*since, error.class()));
            }
            Some(_) => log::trace!("{error}; retrying in {}", format_delay(delay)),
        }
        self.retry_at = Some(Instant::now() + delay);
    }
}

/// The kinds of rejection already logged. A reason quotes the refused line
/// and its numbers, so it is reduced to its shape first; past a bound, new
/// shapes are counted (`points_rejected`) but not kept or logged.
#[derive(Default)]
pub(super) struct RejectionReasons(HashSet<String>);

impl RejectionReasons {
    const MAX_KEPT: usize = 64;

    /// Whether `reason` is a kind of rejection not seen (and logged) yet.
    pub(super) fn is_new(&mut self, reason: &str) -> bool {
        if self.0.len() >= Self::MAX_KEPT {
            return false;
        }
        self.0.insert(rejection_shape(reason))
    }
}

/// A rejection reason without what varies from point to point: quoted
/// text and digits.
fn rejection_shape(reason: &str) -> String {
    let mut shape = String::new();
    let mut quote = None;
    for c in reason.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                shape.push_str("..");
            }
            None if c.is_ascii_digit() => {
                if !shape.ends_with('#') {
                    shape.push('#');
                }
            }
            None => shape.push(c),
        }
        if shape.len() >= 200 {
            break;
        }
    }
    shape
}

/// A delay rounded to milliseconds for logs ("1s 250ms", not nanoseconds).
pub(super) fn format_delay(delay: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_millis(delay.as_millis() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn rejections_are_logged_once_per_shape_and_kept_within_a_bound() {
        let mut reasons = RejectionReasons::default();
        assert!(reasons.is_new("unable to parse 'docker_stats,a=1 f=1i 17': bad timestamp"));
        assert!(!reasons.is_new("unable to parse 'docker_stats,a=2 f=9i 18': bad timestamp"));
        assert!(reasons.is_new("partial write: field type conflict dropped=3"));
        for i in 0..1000 {
            reasons.is_new(&format!("{} kinds of trouble", "x".repeat(i)));
        }
        assert_eq!(reasons.0.len(), RejectionReasons::MAX_KEPT);
    }
}
