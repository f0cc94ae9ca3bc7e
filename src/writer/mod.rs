//! The BatchWriterActor: collects encoded points from every StatsActor and
//! the EventActor, and writes them to InfluxDB in batches.
//!
//! A batch is sent when `BATCH_SIZE` points wait, when the oldest waiting
//! point is `BATCH_WAIT_MS` old, and continuously while draining at shutdown.
//! One request is in flight at a time, so points reach the server in the
//! order they were collected. Retries, the byte budget and the spool all
//! live in this module's tree:
//!
//! * transient failures (unreachable, timeout, 5xx, 408, 429) are retried
//!   with exponential backoff and full jitter, honouring `Retry-After`;
//! * authentication, permission and database-name failures are retried at
//!   the cap delay only, so a fixed server is picked up without hammering it;
//! * a dropped database is created again at once; a 413 halves the batch;
//!   points the server rejects as invalid are counted and not sent again; a
//!   batch InfluxDB stored in part without saying which part is sent again
//!   in halves until every answer is exact;
//! * while failing, points wait in a store bounded in bytes; when it is
//!   full the oldest are dropped and counted.
//!
//! This file holds the actor and its messages; `delivery` the request loop,
//! `outage` what failures and a full buffer say, `batch_limit` the batch
//! size, `store` (`buffer` or `disk_log`) the points and their books,
//! `spooling` and `spool` the memory buffer's spool, `disk_buffer` the
//! disk log's reports.

mod batch_limit;
pub mod buffer;
pub mod client;
mod delivery;
mod disk_buffer;
pub mod disk_log;
pub mod error;
pub mod files;
pub mod influx_v1;
pub mod influx_v2;
mod outage;
pub mod retry;
pub mod spool;
mod spooling;
pub mod store;

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
use error::WriteError;
use outage::{Overflow, RejectionReasons};
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
