//! Batches read from the log at the acknowledgement cursor, and what an
//! acknowledgement does to the books: written, rejected, and records lost
//! to damage or to a segment that cannot be read.

use std::borrow::Cow;
use std::fs::File;
use std::io;

use super::record::{Item, SegmentReader};
use super::segments::{is_transient, segment_name};
use super::{Damage, DiskLog};
use crate::schema::line_protocol::timestamp_of;

/// The batch being sent (its body is the request's: only the points'
/// timestamps are kept here).
pub(super) struct InFlight {
    pub(super) timestamps: Vec<i64>,
    pub(super) points: u64,
    /// Where the cursor goes once it is acknowledged.
    pub(super) end_segment: u64,
    pub(super) end_offset: u64,
    /// What the batch takes from each segment it spans.
    pub(super) per_segment: Vec<Share>,
}

/// What a batch takes from one segment.
pub(super) struct Share {
    pub(super) id: u64,
    pub(super) points: u64,
    /// Records counted in the segment but found damaged when the batch read
    /// to its end: damage that appeared while the service ran. They leave
    /// the log as dropped when the batch is acknowledged, with the cursor.
    pub(super) lost: u64,
}

impl InFlight {
    pub(super) fn lost(&self) -> u64 {
        self.per_segment.iter().map(|share| share.lost).sum()
    }
}

impl DiskLog {
    /// Reads up to `max` of the oldest waiting points as a request body.
    /// Only one batch is in flight at a time.
    pub fn start_batch(&mut self, max: usize) -> Option<String> {
        self.flush();
        while self.in_flight.is_none() && self.waiting() > 0 {
            match self.read_batch(max.max(1) as u64) {
                Ok((body, batch)) if batch.points > 0 => {
                    self.read_failing = false;
                    self.in_flight = Some(batch);
                    return Some(body);
                }
                // Only damage or an unreadable segment was met: account for
                // the records lost, move the cursor past them, look further.
                Ok((_, batch))
                    if batch.lost() > 0
                        || (batch.end_segment, batch.end_offset)
                            != (self.ledger.ack_segment, self.ledger.ack_offset) =>
                {
                    self.in_flight = Some(batch);
                    self.finish_batch(0);
                }
                Ok(_) => return None,
                Err(error) => {
                    // A passing error: the writer asks again shortly.
                    if !self.read_failing {
                        self.read_failing = true;
                        log::error!(
                            "disk buffer: cannot read {} just now: {error}; trying again",
                            self.dir.display()
                        );
                    }
                    self.reader = None;
                    return None;
                }
            }
        }
        None
    }

    pub(super) fn read_batch(&mut self, max: u64) -> io::Result<(String, InFlight)> {
        let mut body = String::new();
        let mut batch = InFlight {
            timestamps: Vec::new(),
            points: 0,
            end_segment: self.ledger.ack_segment,
            end_offset: self.ledger.ack_offset,
            per_segment: Vec::new(),
        };
        for index in 0..self.segments.len() {
            match self.read_segment(index, max, &mut body, &mut batch) {
                Ok(more_here) if batch.points >= max || more_here => break,
                Ok(_) => {}
                Err(error) => {
                    self.reader = None;
                    // What was read before the failure goes first; the
                    // next batch meets the failure at its start.
                    if batch.points == 0 {
                        if is_transient(&error) {
                            return Err(error);
                        }
                        self.skip_unreadable(index, &error, &mut batch)?;
                    }
                    break;
                }
            }
        }
        self.tail.clear();
        Ok((body, batch))
    }

    /// Reads the records of segment `index` into the batch, from the
    /// cursor (the first segment) or its start; answers whether the
    /// segment holds more than the batch took.
    pub(super) fn read_segment(
        &mut self,
        index: usize,
        max: u64,
        body: &mut String,
        batch: &mut InFlight,
    ) -> io::Result<bool> {
        let segment = &self.segments[index];
        // A segment that could not be read to its end is read up to where
        // it failed, no further.
        let (id, bytes) = (segment.id, segment.readable_to.unwrap_or(segment.bytes));
        let start = if index == 0 {
            self.ledger.ack_offset
        } else {
            0
        };
        let mut reader = match self.reader.take() {
            Some((reader_id, reader)) if reader_id == id && reader.offset() == start => reader,
            _ => SegmentReader::new(File::open(self.dir.join(segment_name(id)))?, start, bytes),
        };
        reader.limit = bytes;
        if id == self.active_id() {
            reader.offer(self.tail_offset, &self.tail);
        }
        let mut points = 0;
        let outcome = loop {
            if batch.points >= max {
                break Ok(());
            }
            match reader.next_item() {
                Ok(Some(Item::Record { payload, .. })) => {
                    // The lossy path walks byte by byte; lines this
                    // service wrote are valid UTF-8, checked at speed.
                    let line = match std::str::from_utf8(payload) {
                        Ok(line) => Cow::Borrowed(line),
                        Err(_) => String::from_utf8_lossy(payload),
                    };
                    batch.timestamps.extend(timestamp_of(&line));
                    body.push_str(&line);
                    body.push('\n');
                    batch.points += 1;
                    points += 1;
                }
                Ok(Some(Item::Damaged { offset, bytes })) => {
                    self.note_damage(id, offset, bytes);
                }
                Ok(None) => break Ok(()),
                Err(error) => break Err(error),
            }
        };
        if outcome.is_err() && points == 0 {
            return outcome.map(|()| false);
        }
        batch.end_segment = id;
        batch.end_offset = reader.offset();
        let more_here = reader.offset() < bytes;
        // Read to its end, the segment has given every intact record it
        // holds; what it still counts beyond them was damaged.
        let lost = if more_here || outcome.is_err() {
            0
        } else {
            self.segments[index].unacked.saturating_sub(points)
        };
        if points > 0 || lost > 0 {
            batch.per_segment.push(Share { id, points, lost });
        }
        outcome?;
        self.reader = Some((id, reader));
        Ok(more_here)
    }

    /// Segment `index` cannot be read from the cursor on (deleted, EIO, no
    /// permission): the batch takes its undelivered records as lost, so
    /// that delivery goes on with the next segment. Named once, here.
    pub(super) fn skip_unreadable(
        &mut self,
        index: usize,
        error: &io::Error,
        batch: &mut InFlight,
    ) -> io::Result<()> {
        if index + 1 == self.segments.len() {
            // Appends go elsewhere first, so there is a next segment.
            self.rotate();
            if index + 1 == self.segments.len() {
                return Err(io::Error::new(
                    error.kind(),
                    format!("{error}, and no new segment can be started"),
                ));
            }
        }
        // Past the cursor (the first segment) or whole (the others); it is
        // moved aside, not removed, once it leaves the log.
        let from = if index == 0 {
            self.ledger.ack_offset
        } else {
            0
        };
        let segment = &mut self.segments[index];
        segment.readable_to = Some(from);
        let lost = segment.unacked;
        log::error!(
            "disk buffer: cannot read {} ({error}); its {lost} undelivered point(s) are counted as dropped, and delivery goes on with the next segment",
            self.dir.join(segment_name(segment.id)).display()
        );
        batch.per_segment.push(Share {
            id: segment.id,
            points: 0,
            lost,
        });
        batch.end_segment = self.segments[index + 1].id;
        batch.end_offset = 0;
        Ok(())
    }

    /// Damage is counted where it is first met: at start for the
    /// segments of earlier runs, while reading for those written since.
    pub(super) fn note_damage(&mut self, id: u64, offset: u64, bytes: u64) {
        if id <= self.ledger.checked_segment || (id, offset) <= self.damage_seen_to {
            return;
        }
        self.damage_seen_to = (id, offset);
        self.damage_found.push(Damage {
            file: self.dir.join(segment_name(id)),
            offset,
            bytes,
        });
    }

    /// The server stored the batch, except `rejected` invalid points.
    pub fn finish_batch(&mut self, rejected: usize) {
        let Some(batch) = self.in_flight.take() else {
            return;
        };
        let rejected = (rejected as u64).min(batch.points);
        let lost = batch.lost();
        self.ledger.written += batch.points - rejected;
        self.ledger.rejected += rejected;
        self.ledger.dropped += lost;
        self.buffered -= batch.points + lost;
        self.left += batch.points + lost;
        for share in batch.per_segment {
            if let Some(segment) = self.segments.iter_mut().find(|s| s.id == share.id) {
                segment.unacked -= share.points + share.lost;
            }
        }
        self.ledger.ack_segment = batch.end_segment;
        self.ledger.ack_offset = batch.end_offset;
        self.recent.forget_before(self.left);
        // A file that cannot be removed is reported by release_delivered.
        let _ = self.release_delivered();
        if let Err(error) = self.save_ledger(false) {
            log::error!(
                "disk buffer: cannot update the ledger in {}: {error}",
                self.dir.display()
            );
        }
    }

    /// The batch could not be written: it is read again for the next try.
    pub fn retry_batch(&mut self) {
        self.in_flight = None;
    }
}
