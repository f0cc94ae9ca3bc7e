//! The writer's side of the disk buffer: committing its appends on the
//! clock, and saying what it found at start and while reading.

use super::disk_log::{Damage, DiskLog, Opened};
use super::store::Store;
use super::BatchWriterActor;
use crate::telemetry::counters::Counters;

impl BatchWriterActor {
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
    pub(super) fn commit(&mut self) {
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
    pub(super) fn report_damage_found(&mut self) {
        if let Store::Disk(log) = &mut self.store {
            let found = log.take_damage();
            for damage in &found {
                report_damage(damage, "its records are counted as dropped");
            }
            Counters::add(&self.counters.disk_buffer_damaged, found.len() as u64);
        }
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
            "disk buffer: cannot read {} from offset {} ({}); what it holds past there is lost ({}), what it holds before is delivered with the rest, and the file is then moved aside for you to check",
            unreadable.file.display(),
            unreadable.offset,
            unreadable.error,
            if unreadable.counted {
                "counted as one dropped point"
            } else {
                "counted when first met"
            }
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
