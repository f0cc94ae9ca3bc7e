//! The writer's request loop: when to send, what to send, and what each
//! answer means for the books (written, rejected, sent again in parts, or
//! kept for a retry).

use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::error::{Rejection, WriteError};
use super::BatchWriterActor;
use crate::clock::now_ns;
use crate::telemetry::counters::Counters;

/// How soon a batch is asked for again after the disk buffer could not be
/// read for a passing reason.
const READ_AGAIN_AFTER: Duration = Duration::from_secs(1);

impl BatchWriterActor {
    /// Decides what to do next: write now, or sleep until the next point is
    /// due or the retry wait is over.
    pub(super) fn poll(&mut self, ctx: &mut Context<Self>) {
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

    pub(super) fn start_request(&mut self, ctx: &mut Context<Self>) {
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
            if self.store.waiting() > 0 {
                // The disk buffer could not be read just now (said once
                // there): ask again shortly, not only when a point comes.
                ctx.run_later(READ_AGAIN_AFTER, |writer, ctx| writer.poll(ctx));
            }
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

    pub(super) fn finish_batch(&mut self, result: Result<(), WriteError>) {
        let size = self.store.in_flight_len();
        match result {
            Ok(()) => {
                self.store.finish_batch(0);
                self.batch_limit.answered();
                self.on_success();
            }
            Err(WriteError::Rejected {
                dropped: Rejection::Unknown { said },
                ..
            }) if size > 1 && said != Some(size) => {
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
                    // Unknown here: one point, or `dropped=` the whole batch.
                    Rejection::All | Rejection::Unknown { .. } => size,
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
    pub(super) fn observe_ages(&self) {
        let now_ns = now_ns();
        for ts in self.store.in_flight_timestamps() {
            let age = (now_ns - ts).max(0) as f64 / 1e9;
            self.health.sample_to_stored.observe(age);
        }
    }
}
