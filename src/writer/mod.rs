//! The BatchWriterActor: collects encoded points from every StatsActor and
//! the EventActor, and writes them to InfluxDB in batches.
//!
//! A batch is sent when `BATCH_SIZE` points wait, when the oldest waiting
//! point is `BATCH_WAIT_MS` old, and continuously while draining at shutdown.
//! One request is in flight at a time, so points reach the server in the
//! order they were collected. Retries, the byte budget and the spool all
//! live here, in one place:
//!
//! * transient failures (unreachable, timeout, 5xx, 408, 429) are retried
//!   with exponential backoff and full jitter, honouring `Retry-After`;
//! * authentication, permission and database-name failures are retried at
//!   the cap delay only, so a fixed server is picked up without hammering it;
//! * a dropped database is created again at once; a 413 halves the batch;
//!   points the server rejects as invalid are counted and not sent again;
//! * while failing, points wait in a buffer bounded in bytes; when it is
//!   full the oldest are dropped and counted.

mod batch_limit;
pub mod buffer;
pub mod client;
pub mod disk_log;
pub mod error;
pub mod files;
pub mod influx_v1;
pub mod influx_v2;
pub mod retry;
pub mod spool;
mod spooling;
pub mod store;

use std::collections::HashSet;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::clock::now_ns;
use crate::config::Config;
use crate::telemetry::counters::Counters;
use crate::telemetry::health::Health;
use batch_limit::BatchLimit;
use buffer::{Buffer, MAX_POINT_BYTES};
use client::InfluxClient;
use disk_log::{Damage, DiskLog, Opened};
use error::{Rejection, WriteError};
use retry::RetryPolicy;
use store::Store;

/// One encoded point (a line of line protocol) and when its measurement
/// was taken: a point's batch wait counts from then, so time a sample spent
/// before reaching the writer is not added to it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WritePoint {
    pub line: String,
    pub taken: Instant,
}

impl WritePoint {
    /// A point measured just now.
    pub fn new(line: String) -> Self {
        WritePoint {
            line,
            taken: Instant::now(),
        }
    }

    /// A point whose timestamp is `timestamp_ns` (Unix time): taken as long
    /// ago as the wall clock says, never in the future.
    pub fn stamped(line: String, timestamp_ns: i64) -> Self {
        let age = Duration::from_nanos(now_ns().saturating_sub(timestamp_ns).max(0) as u64);
        let now = Instant::now();
        WritePoint {
            line,
            taken: now.checked_sub(age).unwrap_or(now),
        }
    }
}

/// Write everything collected so far, as fast as the server allows, and
/// answer once nothing is left.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

/// Shutdown is over: keep what is still buffered for the next start (in
/// the spool, or in the disk buffer, which only needs a final sync) and
/// stop. Answers the number of points kept, or why they could not be.
#[derive(Message)]
#[rtype(result = "Result<(u64, &'static str), String>")]
pub struct KeepRemaining;

struct Overflow {
    started: Instant,
    reported: Instant,
    /// Points dropped since the last report.
    unreported: u64,
}

/// How often a full buffer is reported while it keeps dropping points.
const OVERFLOW_REPORT_EVERY: Duration = Duration::from_secs(60);

pub struct BatchWriterActor {
    client: Rc<InfluxClient>,
    store: Store,
    /// How often the disk buffer's appends are written (and synced, unless
    /// InfluxDB acknowledged them first).
    fsync_interval: Duration,
    /// How many points the next batch may hold.
    batch_limit: BatchLimit,
    batch_wait: Duration,
    retry: RetryPolicy,
    counters: Arc<Counters>,
    health: Arc<Health>,
    request_in_flight: bool,
    database_ready: bool,
    consecutive_failures: u32,
    retry_at: Option<Instant>,
    /// The wake-up set by `poll`, and when it is due.
    timer: Option<(SpawnHandle, Instant)>,
    /// Set while an outage lasts (since when, and its kind), so it is
    /// logged once when it starts and once when it ends.
    outage: Option<(Instant, &'static str)>,
    rejection_reasons: RejectionReasons,
    /// Set while the buffer overflows.
    overflow: Option<Overflow>,
    spool_dir: Option<PathBuf>,
    /// Spool files loaded at start whose points (the oldest in the buffer)
    /// are not all delivered yet.
    spool_backlog: spool::Backlog,
    /// Whether a point too long to keep was logged already.
    too_long_reported: bool,
    draining: bool,
    drain_waiters: Vec<oneshot::Sender<()>>,
}

impl BatchWriterActor {
    pub fn new(
        config: &Config,
        counters: Arc<Counters>,
        health: Arc<Health>,
    ) -> Result<Self, WriteError> {
        Ok(BatchWriterActor {
            client: Rc::new(InfluxClient::new(&config.influxdb)?),
            store: Store::Memory(Buffer::new(config.max_buffer_bytes)),
            fsync_interval: config
                .disk_buffer
                .as_ref()
                .map_or(Duration::from_secs(1), |d| d.fsync_interval),
            batch_limit: BatchLimit::new(config.batch.size),
            batch_wait: config.batch.wait,
            retry: RetryPolicy {
                first_delay: config.influxdb.retry_delay,
                max_delay: config.influxdb.retry_max_delay,
                max_attempts: config.influxdb.retry_max,
            },
            counters,
            health,
            request_in_flight: false,
            database_ready: false,
            consecutive_failures: 0,
            retry_at: None,
            timer: None,
            outage: None,
            rejection_reasons: RejectionReasons::default(),
            overflow: None,
            spool_dir: config.spool_dir.clone(),
            spool_backlog: spool::Backlog::default(),
            too_long_reported: false,
            draining: false,
            drain_waiters: Vec::new(),
        })
    }

    /// Keeps points in the disk buffer's log instead of memory; `opened`
    /// says what the log held from earlier runs, reported at start.
    pub fn with_disk_log(mut self, log: DiskLog, opened: &Opened) -> Self {
        report_opened(&log, opened);
        Counters::add(
            &self.counters.disk_buffer_damaged,
            (opened.damage.len() + opened.unreadable.len()) as u64,
        );
        self.store = Store::Disk(Box::new(log));
        self
    }

    /// Writes the disk buffer's appends to its file (every `fsync_interval`;
    /// its sync thread syncs what InfluxDB has not acknowledged by then).
    fn commit(&mut self) {
        if let Store::Disk(log) = &mut self.store {
            let dropped = log.commit();
            Counters::set(&self.counters.disk_buffer_syncs, log.syncs());
            if dropped > 0 {
                self.report_overflow(dropped);
            }
            self.publish();
        }
    }

    /// Reports damage the disk buffer met while reading a batch: damage that
    /// appeared in its files while the service ran.
    fn report_damage_found(&mut self) {
        if let Store::Disk(log) = &mut self.store {
            let found = log.take_damage();
            for damage in &found {
                report_damage(damage, "its records are counted as dropped");
            }
            Counters::add(&self.counters.disk_buffer_damaged, found.len() as u64);
        }
    }

    /// Copies the books to the shared counters.
    fn publish(&self) {
        let books = self.store.books();
        let c = &self.counters;
        Counters::set(&c.points_collected, books.collected);
        Counters::set(&c.points_written, books.written);
        Counters::set(&c.points_dropped, books.dropped);
        Counters::set(&c.points_rejected, books.rejected);
        Counters::set(&c.points_spooled, books.spooled);
        Counters::set(&c.points_buffered, self.store.buffered());
        Counters::set(&c.buffered_bytes, self.store.bytes());
    }

    fn push(&mut self, line: String, taken: Instant) {
        let length = line.len();
        let pushed = self.store.push(line, taken);
        if pushed.refused && !self.too_long_reported {
            self.too_long_reported = true;
            log::error!(
                "a point of {length} bytes is longer than the {MAX_POINT_BYTES} bytes the writer takes; refused and counted as rejected (further ones are counted only)"
            );
        }
        if pushed.dropped > 0 {
            self.note_spool_progress();
            self.report_overflow(pushed.dropped);
        }
    }

    /// The overflow ends when writes succeed again, not when one point
    /// happens to fit: a full buffer stays full while InfluxDB is away.
    fn end_overflow(&mut self) {
        if let Some(overflow) = self.overflow.take() {
            log::warn!(
                "buffer no longer overflowing after {}; {} more point(s) were dropped since the last report, {} in total",
                format_delay(overflow.started.elapsed()),
                overflow.unreported,
                self.store.books().dropped
            );
        }
    }

    fn report_overflow(&mut self, dropped: u64) {
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

    /// Decides what to do next: write now, or sleep until the next point is
    /// due or the retry wait is over.
    fn poll(&mut self, ctx: &mut Context<Self>) {
        self.publish();
        if let Some((timer, _)) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        if self.request_in_flight {
            return;
        }
        if self.store.waiting() == 0 {
            for waiter in self.drain_waiters.drain(..) {
                let _ = waiter.send(());
            }
            if self.database_ready {
                return;
            }
        }
        let now = Instant::now();
        let due = match (self.retry_at, self.store.oldest_waiting()) {
            (Some(retry_at), _) => retry_at,
            // Spooled points go first, before new ones compete for the budget.
            _ if self.draining
                || !self.spool_backlog.is_empty()
                || self.store.replay_pending()
                || self.store.waiting() >= self.batch_limit.current()
                || !self.database_ready =>
            {
                now
            }
            (None, Some(oldest)) => oldest + self.batch_wait,
            (None, None) => return,
        };
        if due <= now {
            self.retry_at = None;
            self.start_request(ctx);
        } else {
            let timer = ctx.run_later(due - now, |writer, ctx| {
                writer.timer = None;
                writer.poll(ctx);
            });
            self.timer = Some((timer, due));
        }
    }

    fn start_request(&mut self, ctx: &mut Context<Self>) {
        let client = Rc::clone(&self.client);
        if !self.database_ready {
            self.request_in_flight = true;
            let request = async move { client.create_database().await };
            ctx.spawn(request.into_actor(self).map(|result, writer, ctx| {
                writer.request_in_flight = false;
                match result {
                    Ok(()) => {
                        log::info!(
                            "InfluxDB database {:?} ready at {}",
                            writer.client.database(),
                            writer.client.url()
                        );
                        writer.database_ready = true;
                        writer.health.influxdb.pass("database ready");
                        writer.on_success();
                    }
                    Err(WriteError::Auth {
                        status: 403, user, ..
                    }) => {
                        // A user may write to a database without being
                        // allowed to create one; if it is missing, writes
                        // will say so.
                        log::warn!(
                            "{user} may not create databases; assuming {:?} exists",
                            writer.client.database()
                        );
                        // Not a success: a missing database must not turn
                        // into a tight create/write loop.
                        writer.database_ready = true;
                    }
                    Err(error) => writer.on_failure(error),
                }
                writer.poll(ctx);
            }));
            return;
        }
        let body = self.store.start_batch(self.batch_limit.current());
        self.report_damage_found();
        let Some(body) = body else {
            return;
        };
        self.request_in_flight = true;
        let sent = Instant::now();
        let request = async move { client.write(body).await };
        ctx.spawn(request.into_actor(self).map(move |result, writer, ctx| {
            writer.request_in_flight = false;
            if result.is_ok() {
                let points = writer.store.in_flight_len();
                writer.health.write_succeeded(points, sent.elapsed());
                writer.observe_ages();
            }
            writer.finish_batch(result);
            writer.poll(ctx);
        }));
    }

    fn finish_batch(&mut self, result: Result<(), WriteError>) {
        let size = self.store.in_flight_len();
        match result {
            Ok(()) => {
                self.store.finish_batch(0);
                self.batch_limit.answered();
                self.on_success();
            }
            Err(WriteError::Rejected {
                dropped: Rejection::Unknown,
                ..
            }) if size > 1 => {
                // Stored in part, and which part is not said: the same
                // points go again in halves (InfluxDB stores a point sent
                // twice once) until each answer is exact, so the books
                // count what InfluxDB holds.
                self.store.retry_batch();
                self.batch_limit.split(size);
                log::debug!(
                    "InfluxDB stored part of a batch of {size} without saying which; sending it again in parts of at most {}",
                    self.batch_limit.current()
                );
                return;
            }
            Err(WriteError::Rejected {
                dropped, reason, ..
            }) => {
                // InfluxDB wrote the points it accepted (none, when it
                // refused the batch whole) and refused the rest: sending
                // them again would only repeat the refusal.
                let dropped = match dropped {
                    Rejection::Exactly(n) => n.min(size),
                    Rejection::All | Rejection::Unknown => size,
                };
                self.store.finish_batch(dropped);
                self.batch_limit.answered();
                if self.rejection_reasons.is_new(&reason) {
                    log::error!("InfluxDB rejected {dropped} point(s) as invalid; they are not sent again: {reason}");
                }
                self.on_success();
            }
            Err(WriteError::TooLarge { .. }) if size == 1 => {
                self.store.finish_batch(1);
                log::error!(
                    "InfluxDB refused a single point as too large (HTTP 413); it is not sent again"
                );
                self.on_success();
            }
            Err(WriteError::TooLarge { .. }) => {
                self.store.retry_batch();
                let limit = self.batch_limit.too_large(size);
                Counters::add(&self.counters.write_errors, 1);
                log::warn!(
                    "InfluxDB refused {size} points as too large (HTTP 413); sending at most {limit} per request from now on"
                );
                return;
            }
            Err(error) => {
                self.store.retry_batch();
                self.on_failure(error);
                return;
            }
        }
        self.note_spool_progress();
    }

    /// Records how long each acknowledged point took from its own timestamp
    /// (the sample's read time) to the acknowledgement.
    fn observe_ages(&self) {
        let now_ns = now_ns();
        for ts in self.store.in_flight_timestamps() {
            let age = (now_ns - ts).max(0) as f64 / 1e9;
            self.health.sample_to_stored.observe(age);
        }
    }

    fn on_success(&mut self) {
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

    fn on_failure(&mut self, error: WriteError) {
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

fn report_damage(damage: &Damage, counted: &str) {
    log::error!(
        "disk buffer: skipped {} damaged byte(s) in {} at offset {} (a torn write or corruption); {counted}, the rest is delivered",
        damage.bytes,
        damage.file.display(),
        damage.offset
    );
}

/// Says what the disk buffer held from earlier runs, and what damage it
/// skipped.
fn report_opened(log: &DiskLog, opened: &Opened) {
    for damage in &opened.damage {
        report_damage(damage, "counted as one dropped point");
    }
    for unreadable in &opened.unreadable {
        log::error!(
            "disk buffer: cannot read {} from offset {} ({}); what it holds past there is lost, counted as one dropped point, and the rest is delivered",
            unreadable.file.display(),
            unreadable.offset,
            unreadable.error
        );
    }
    if opened.ledger_missing {
        log::warn!(
            "disk buffer: {} has segments but no intact ledger; delivering all they hold (some may be sent again) with the books restarted",
            log.dir().display()
        );
    }
    let books = opened.books;
    log::info!(
        "disk buffer in {}: {} point(s) from earlier runs to deliver first ({} segment file(s), {} bytes); books so far: {} collected, {} written, {} dropped, {} rejected",
        log.dir().display(),
        opened.replayed,
        opened.segments,
        log.bytes(),
        books.collected,
        books.written,
        books.dropped,
        books.rejected
    );
}

/// The kinds of rejection already logged. A reason quotes the refused line
/// and its numbers, so it is reduced to its shape first; past a bound, new
/// shapes are counted (`points_rejected`) but not kept or logged.
#[derive(Default)]
struct RejectionReasons(HashSet<String>);

impl RejectionReasons {
    const MAX_KEPT: usize = 64;

    /// Whether `reason` is a kind of rejection not seen (and logged) yet.
    fn is_new(&mut self, reason: &str) -> bool {
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
fn format_delay(delay: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_millis(delay.as_millis() as u64))
}

impl Actor for BatchWriterActor {
    type Context = Context<Self>;

    /// Producers use `do_send`, which queues regardless of the mailbox
    /// capacity, so a slow InfluxDB never makes a StatsActor wait; the
    /// buffer is where points pile up, within its byte budget.
    fn started(&mut self, ctx: &mut Self::Context) {
        match self.store {
            Store::Memory(_) => self.load_spool(),
            Store::Disk(_) => {
                ctx.run_interval(self.fsync_interval, |writer, _| writer.commit());
            }
        }
        self.poll(ctx);
    }
}

impl Handler<WritePoint> for BatchWriterActor {
    type Result = ();

    fn handle(&mut self, WritePoint { line, taken }: WritePoint, ctx: &mut Self::Context) {
        let was_empty = self.store.waiting() == 0;
        let due_sooner = matches!(self.timer, Some((_, due)) if taken + self.batch_wait < due);
        self.push(line, taken);
        // Only a change that moves the next deadline needs a new decision.
        if was_empty || due_sooner || self.store.waiting() >= self.batch_limit.current() {
            self.poll(ctx);
        } else {
            self.publish();
        }
    }
}

impl Handler<Drain> for BatchWriterActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Drain, ctx: &mut Self::Context) -> Self::Result {
        let (sender, receiver) = oneshot::channel();
        self.draining = true;
        self.drain_waiters.push(sender);
        self.poll(ctx);
        Box::pin(async move {
            let _ = receiver.await;
        })
    }
}

impl Handler<KeepRemaining> for BatchWriterActor {
    type Result = Result<(u64, &'static str), String>;

    /// Runs once, at the end of shutdown: writing synchronously is what is
    /// wanted here, nothing else is left to run.
    fn handle(&mut self, _: KeepRemaining, ctx: &mut Self::Context) -> Self::Result {
        ctx.stop();
        let result = match &mut self.store {
            Store::Disk(log) => {
                let count = log.buffered();
                log.close()
                    .map(|()| (count, "kept in the disk buffer"))
                    .map_err(|error| {
                        format!(
                            "cannot sync the disk buffer in {}: {error}",
                            log.dir().display()
                        )
                    })
            }
            Store::Memory(_) => self
                .spool_remaining()
                .map(|count| (count, "saved to the spool")),
        };
        self.publish();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_are_logged_once_per_shape_and_kept_within_a_bound() {
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
