//! Segments leaving the log: delivered ones released, the oldest dropped
//! for room, and their files removed only after the ledger that moves the
//! cursor past them, each counted against the budget until it is gone.

use std::collections::VecDeque;
use std::io;

use super::segments::{aside_name, segment_name, Retired, Segment};
use super::DiskLog;
use crate::writer::files::is_disk_full;

impl DiskLog {
    /// Takes the segments at the front none of whose points wait any more
    /// off the log, moving the cursor past them, and removes their files.
    pub(super) fn release_delivered(&mut self) -> io::Result<()> {
        while self.segments.len() > 1 && self.segments[0].unacked == 0 {
            let segment = self.segments.pop_front().expect("more than one segment");
            self.retire(segment);
        }
        if self.ledger.ack_segment < self.segments[0].id {
            self.ledger.ack_segment = self.segments[0].id;
            self.ledger.ack_offset = 0;
        }
        self.remove_retired()
    }

    /// A segment behind the cursor: its file is removed by
    /// `remove_retired`, and counts against the budget until it is.
    pub(super) fn retire(&mut self, segment: Segment) {
        self.forget_reader(segment.id);
        self.retired.push_back(Retired {
            id: segment.id,
            bytes: segment.bytes,
            aside: segment.readable_to.is_some(),
        });
    }

    /// Removes the files of retired segments, once the ledger that moves
    /// the cursor past them is synced (a crash never leaves a cursor
    /// pointing into a removed file). A file that cannot be removed stays
    /// counted in the log's bytes, is named once, and is tried again at the
    /// next commit.
    pub(super) fn remove_retired(&mut self) -> io::Result<()> {
        if self.retired.is_empty() {
            return Ok(());
        }
        // On a full disk the files go even when the ledger cannot be
        // written, since removing them is what frees room: the cursor then
        // stands before the next segment, which opening handles.
        let saved = match self.save_ledger(true) {
            Err(error) if is_disk_full(&error) => Ok(()),
            other => other,
        };
        let result = saved.and_then(|()| {
            let mut first_failure = Ok(());
            let mut kept = VecDeque::new();
            for retired in std::mem::take(&mut self.retired) {
                let path = self.dir.join(segment_name(retired.id));
                let gone = if retired.aside {
                    let aside = self.dir.join(aside_name(retired.id));
                    std::fs::rename(&path, &aside).inspect(|()| {
                        log::warn!(
                            "disk buffer: {} could not be read to its end; moved aside to {} for you to check (it no longer counts against buffer.max_disk_bytes)",
                            path.display(),
                            aside.display()
                        )
                    })
                } else {
                    std::fs::remove_file(&path)
                };
                match gone {
                    Ok(()) => self.disk_bytes -= retired.bytes,
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {
                        self.disk_bytes -= retired.bytes
                    }
                    Err(error) => {
                        kept.push_back(retired);
                        if first_failure.is_ok() {
                            first_failure = Err(io::Error::new(
                                error.kind(),
                                format!("cannot remove {}: {error}", path.display()),
                            ));
                        }
                    }
                }
            }
            self.retired = kept;
            first_failure
        });
        match &result {
            Ok(()) if self.removal_failing => {
                self.removal_failing = false;
                log::info!(
                    "disk buffer: the segments behind the cursor in {} are removed again",
                    self.dir.display()
                );
            }
            Err(error) if !self.removal_failing => {
                self.removal_failing = true;
                log::error!(
                    "disk buffer: {error}; its bytes still count against buffer.max_disk_bytes, and it is tried again at each commit"
                );
            }
            _ => {}
        }
        result
    }

    /// Drops the oldest segment to make room, answering how many waiting
    /// points went with it; `None` when it cannot go (it holds the batch in
    /// flight, or it is the one taking appends).
    pub(super) fn drop_front(&mut self) -> Option<u64> {
        if self.in_flight.is_some() || self.segments.len() < 2 {
            return None;
        }
        let segment = self.segments.pop_front()?;
        let lost = segment.unacked;
        self.ledger.dropped += lost;
        self.buffered -= lost;
        self.left += lost;
        self.recent.forget_before(self.left);
        self.ledger.ack_segment = self.segments[0].id;
        self.ledger.ack_offset = 0;
        self.retire(segment);
        let _ = self.remove_retired();
        Some(lost)
    }

    pub(super) fn forget_reader(&mut self, id: u64) {
        if self
            .reader
            .as_ref()
            .is_some_and(|(reader_id, _)| *reader_id == id)
        {
            self.reader = None;
        }
    }
}
