//! The writer's side of the spool (memory buffer only): loading it at
//! start, removing each file once the buffer holds none of its points, and
//! saving what is left at shutdown. The files themselves are `spool`'s.

use std::path::PathBuf;
use std::time::Instant;

use super::spool::{self, Loading};
use super::store::Store;
use super::BatchWriterActor;
use crate::telemetry::counters::Counters;

impl BatchWriterActor {
    /// Loads the spool into the buffer, line by line, before any stream
    /// runs: the byte budget applies while reading, so a spool larger than
    /// the budget costs no more memory than the budget. A file that cannot
    /// be read to its end is named once, counted, and left where it is.
    pub(super) fn load_spool(&mut self) {
        let Some(dir) = self.spool_dir.clone() else {
            return;
        };
        let now = Instant::now();
        let result = spool::load(&dir, |loading| match loading {
            Loading::File(path) => {
                let next_seq = self.memory_next_seq();
                self.spool_backlog.track(path, next_seq)
            }
            Loading::Line(line) => self.push(line, now),
            Loading::Done(report) => {
                let next_seq = self.memory_next_seq();
                self.spool_backlog
                    .loaded(next_seq, report.unreadable.is_some());
            }
        });
        let reports = match result {
            Ok(reports) => reports,
            Err(error) => {
                log::error!("cannot read spool directory {}: {error}", dir.display());
                return;
            }
        };
        for report in &reports {
            if let Some(problem) = report.problem() {
                log::error!("{problem}");
            }
            if let Some(error) = &report.unreadable {
                Counters::add(&self.counters.spool_files_unreadable, 1);
                log::error!(
                    "cannot read spool file {} to its end ({error}): its {} readable point(s) are delivered, and the file is left in place for you to check (it is never removed or replaced)",
                    report.path.display(),
                    report.points
                );
            }
        }
        let released = self.release_spool_files();
        for file in &released {
            log::warn!(
                "spool file {} had no point left to deliver; removed",
                file.display()
            );
        }
        if !reports.is_empty() {
            let points: u64 = reports.iter().map(|r| r.points).sum();
            log::info!(
                "delivering {points} spooled point(s) from {} file(s) in {} ({} dropped for lack of room in max_buffer_bytes)",
                reports.len(),
                dir.display(),
                self.store.books().dropped
            );
        }
    }

    /// The arrival number the memory buffer gives its next point.
    fn memory_next_seq(&self) -> u64 {
        match &self.store {
            Store::Memory(buffer) => buffer.next_seq(),
            Store::Disk(_) => 0,
        }
    }

    /// Stops tracking, and removes, the loaded spool files none of whose
    /// points the buffer holds any more.
    fn release_spool_files(&mut self) -> Vec<PathBuf> {
        let Store::Memory(buffer) = &self.store else {
            return Vec::new();
        };
        let oldest_held = buffer.oldest_seq().unwrap_or(buffer.next_seq());
        let released = self.spool_backlog.release(oldest_held);
        spool::remove(&released);
        released
    }

    /// Points left the buffer (delivered, rejected or dropped): a spool
    /// file none of whose points it holds any more is removed.
    pub(super) fn note_spool_progress(&mut self) {
        if self.spool_backlog.is_empty() {
            return;
        }
        for file in self.release_spool_files() {
            log::info!("spool file {} delivered and removed", file.display());
        }
        if self.spool_backlog.is_empty() {
            log::info!("spooled points delivered");
        }
    }

    /// Saves every buffered point to the spool. The points count as
    /// spooled only once the file is durable; if it cannot be written they
    /// stay undelivered, and the old spool files stay too.
    pub(super) fn spool_remaining(&mut self) -> Result<u64, String> {
        let Store::Memory(buffer) = &mut self.store else {
            return Ok(0);
        };
        let Some(dir) = self.spool_dir.clone() else {
            return if buffer.buffered() == 0 {
                Ok(0)
            } else {
                Err("no spool_dir is set".into())
            };
        };
        if buffer.buffered() == 0 {
            return Ok(0);
        }
        let count = buffer.buffered();
        let replaces: Vec<PathBuf> = self
            .spool_backlog
            .replaceable()
            .map(PathBuf::from)
            .collect();
        let backlog = &self.spool_backlog;
        let in_kept_files = buffer
            .lines_where(|seq| backlog.from_kept_file(seq))
            .count();
        let lines = buffer.lines_where(|seq| !backlog.from_kept_file(seq));
        match spool::save(&dir, lines, &replaces) {
            Ok(path) => {
                self.spool_backlog.clear();
                // Every one is on disk now: in the new file, or still in
                // the kept file it came from.
                buffer.mark_spooled();
                log::info!(
                    "saved {} undelivered point(s) to {} ({in_kept_files} more stay in the unreadable spool file(s) they came from)",
                    count - in_kept_files as u64,
                    path.display()
                );
                Ok(count)
            }
            Err((path, error)) => Err(format!(
                "cannot save {count} undelivered point(s) to the spool at {}: {error}",
                path.display()
            )),
        }
    }
}
