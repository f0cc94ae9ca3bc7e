//! The disk buffer: a write-ahead log of every collected point, from which
//! the writer sends its batches, so that neither a crash nor a long outage
//! of InfluxDB loses what was collected, and memory stays flat however long
//! the outage.
//!
//! Design:
//!
//! * The log is a run of segment files (`seg-<id>.log`, ids rising) in one
//!   directory. A point is one checksummed record (`record`); the last
//!   segment takes appends, and a new one is started when it reaches the
//!   segment size or at each start (old segments are never appended to).
//! * Appends gather in memory and are written to the file at each commit
//!   (`commit`, every `buffer.fsync_interval`) and before a batch is read;
//!   a background thread syncs the file on its own clock, every interval in
//!   which something written had not been acknowledged yet (what InfluxDB
//!   holds needs no sync). A process crash loses at most what gathered
//!   since the last commit; the page cache keeps what was written. A
//!   machine crash may also lose what was not synced yet.
//! * A batch of points just written is read from a copy kept in memory
//!   since the last batch (at most `PENDING_LIMIT` bytes), not from the
//!   file: the file is read back only for a backlog.
//! * One batch is in flight at a time, read from the log at the
//!   acknowledgement cursor. When InfluxDB acknowledges it, the cursor and
//!   the books move on in the ledger (`ledger`); a segment wholly behind the
//!   cursor is deleted, after the ledger is synced. A crash before the
//!   ledger is written sends that batch again: delivery is at least once,
//!   and InfluxDB stores a point sent twice once (same series and time).
//! * The log's bytes are bounded by `buffer.max_disk_bytes`: past it, and
//!   when the disk is full, the oldest segment is dropped (its undelivered
//!   points counted as dropped). The segment holding the batch in flight is
//!   never dropped; when nothing else can go, the newest points do.
//! * A segment that cannot be read (EIO, no permission, deleted) never
//!   stops delivery: at start, what lies past the failure counts as one
//!   dropped point, as a damaged stretch does; while reading a batch, its
//!   undelivered records count as dropped. Either is named once.
//! * On a full disk the log still opens and delivers: a delivered
//!   segment's file is removed even when the ledger cannot be written,
//!   since removing it is what frees room.
//! * At start every segment past the cursor is read and checked: intact
//!   records are delivered first, in order; each damaged stretch (a torn
//!   write, flipped bytes) is skipped, reported with its file and offset,
//!   and counted as one dropped point, once.
//! * The books (`collected = written + dropped + rejected + buffered`) carry
//!   over: the ledger keeps written, dropped and rejected of every earlier
//!   run, and buffered is what the log still holds.
//!
//! This file opens the log and takes appends; `batches` reads batches and
//! applies acknowledgements, `retiring` releases and drops segments and
//! removes their files, `segments` names and counts segment files, `record`
//! and `ledger` are the formats on disk, `syncer` the sync thread and
//! `recent` the batch wait's clock.

mod batches;
pub mod ledger;
mod recent;
pub mod record;
mod retiring;
mod segments;
mod syncer;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::buffer::{Books, Pushed, MAX_POINT_BYTES};
use super::files::{is_disk_full, sync_dir};
use batches::InFlight;
use ledger::{Ledger, LedgerFile};
use recent::RecentTimes;
use record::{SegmentReader, HEADER_BYTES};
use segments::{count_records, create_segment, segment_ids, segment_name, Retired, Segment};
use syncer::Syncer;

/// Appends gathered in memory beyond this are written at once, whatever
/// the commit interval.
const PENDING_LIMIT: usize = 1 << 20;
/// The smallest budget (the configuration refuses less): room for the
/// sixteen smallest segments.
pub const MIN_MAX_BYTES: u64 = crate::config::MIN_DISK_BUFFER_BYTES;
const MIN_SEGMENT_BYTES: u64 = MIN_MAX_BYTES / 16;
const MAX_SEGMENT_BYTES: u64 = 32 * 1024 * 1024;

/// A segment's size: small enough that dropping one when the budget is
/// full gives up at most a sixteenth of it.
fn segment_bytes_for(max_bytes: u64) -> u64 {
    (max_bytes / 16).clamp(MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES)
}

/// A damaged stretch, found at start or while reading a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub file: PathBuf,
    pub offset: u64,
    pub bytes: u64,
}

/// A segment that could not be read to its end at start (EIO, no
/// permission): what lies past `offset` is lost, counted as one dropped
/// point as a damaged stretch is, the first time it is met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub file: PathBuf,
    pub offset: u64,
    pub error: String,
    /// Met for the first time: counted now.
    pub counted: bool,
}

/// What opening the log found.
#[derive(Debug, Default)]
pub struct Opened {
    /// Undelivered points from earlier runs, to be sent first.
    pub replayed: u64,
    pub segments: usize,
    pub damage: Vec<Damage>,
    pub unreadable: Vec<Unreadable>,
    /// Segments were found without a ledger: their books start at zero.
    pub ledger_missing: bool,
    /// The books carried over, before anything new was collected.
    pub books: Books,
}

pub struct DiskLog {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    segments: VecDeque<Segment>,
    /// Bytes of every segment file.
    disk_bytes: u64,
    /// The last segment, open for appending.
    active: File,
    /// Records appended since the last write to the file.
    pending: Vec<u8>,
    pending_records: u64,
    ledger_file: LedgerFile,
    ledger: Ledger,
    collected: u64,
    /// Records past the cursor, in files or pending.
    buffered: u64,
    /// Records that left the front since opening (delivered, rejected or
    /// dropped): the index of the first one not acknowledged.
    left: u64,
    /// Undelivered records found at start; they wait since `opened`.
    replayed: u64,
    opened: Instant,
    in_flight: Option<InFlight>,
    /// The reader of the last batch, kept for the next one when it starts
    /// where that one ended.
    reader: Option<(u64, SegmentReader)>,
    recent: RecentTimes,
    /// Points dropped on the way (a full disk at a write) not yet reported.
    unreported_drops: u64,
    /// Set while writes to the log fail, so a failure is logged once.
    failing: bool,
    /// Segments behind the cursor whose files are not gone yet: their
    /// bytes are still in `disk_bytes`.
    retired: VecDeque<Retired>,
    /// Set while retired files cannot be removed, so it is logged once.
    removal_failing: bool,
    /// Set while batches cannot be read for a passing reason, so it is
    /// logged once.
    read_failing: bool,
    syncer: Syncer,
    /// Bytes written to the files since opening (the sync thread's scale).
    written_position: u64,
    /// The bytes written to the active segment since the last batch was
    /// read, from `tail_offset` on: a batch reads them from here rather
    /// than from the file (bounded by `PENDING_LIMIT`).
    tail: Vec<u8>,
    tail_offset: u64,
    /// Damage met while reading batches, not yet asked for.
    damage_found: Vec<Damage>,
    /// Where the furthest damage met while reading was (segment, offset):
    /// a batch read again after a failure does not report it twice.
    damage_seen_to: (u64, u64),
}

impl DiskLog {
    /// Opens the log in `dir` (creating it), reading what earlier runs left.
    /// `recent_window` is the batch size: how many of the newest points'
    /// times are kept for the batch wait.
    /// `sync_interval` is how often what was written is synced to disk.
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        sync_interval: Duration,
        recent_window: usize,
    ) -> io::Result<(DiskLog, Opened)> {
        std::fs::create_dir_all(dir)?;
        let (ledger_file, stored) = LedgerFile::open(dir)?;
        let mut ledger = stored.unwrap_or_default();
        let mut ids = segment_ids(dir)?;
        let ledger_missing = stored.is_none() && !ids.is_empty();
        if ledger_missing {
            ledger.ack_segment = ids[0];
            ledger.ack_offset = 0;
        }
        // Segments behind the cursor were delivered or dropped; a crash
        // between the ledger's write and their removal leaves them. They
        // are removed once the log is open, and counted until they are.
        let mut retired = VecDeque::new();
        for id in ids.iter().filter(|id| **id < ledger.ack_segment) {
            let bytes = std::fs::metadata(dir.join(segment_name(*id))).map_or(0, |m| m.len());
            retired.push_back(Retired {
                id: *id,
                bytes,
                aside: false,
            });
        }
        ids.retain(|id| *id >= ledger.ack_segment);
        if ids.first().is_some_and(|first| *first > ledger.ack_segment) {
            ledger.ack_segment = ids[0];
            ledger.ack_offset = 0;
        }

        let mut segments = VecDeque::new();
        let mut damage = Vec::new();
        let mut unreadable = Vec::new();
        for &id in &ids {
            let path = dir.join(segment_name(id));
            let start = if id == ledger.ack_segment {
                ledger.ack_offset
            } else {
                0
            };
            let counted = count_records(&path, start);
            // Damage is counted where it is first met; a segment that
            // cannot be read is said at every start, counted once.
            let newly_met = id > ledger.checked_segment;
            if newly_met {
                damage.extend(counted.damage);
            }
            let readable_to = counted.failure.as_ref().map(|_| counted.read_to);
            if let Some(error) = counted.failure {
                unreadable.push(Unreadable {
                    file: path,
                    offset: counted.read_to,
                    error: error.to_string(),
                    counted: newly_met,
                });
            }
            segments.push_back(Segment {
                id,
                bytes: counted.bytes,
                unacked: counted.records,
                start: None,
                readable_to,
            });
        }
        ledger.dropped += unreadable.iter().filter(|u| u.counted).count() as u64;
        ledger.dropped += damage.len() as u64;
        if let Some(last) = ids.last() {
            ledger.checked_segment = *last;
        }

        let active_id = ids
            .last()
            .map_or(ledger.ack_segment.max(1), |last| last + 1);
        if segments.is_empty() {
            ledger.ack_segment = active_id;
            ledger.ack_offset = 0;
        }
        let active = create_segment(dir, active_id)?;
        segments.push_back(Segment {
            id: active_id,
            bytes: 0,
            unacked: 0,
            start: Some(0),
            readable_to: None,
        });
        sync_dir(dir)?;

        let buffered: u64 = segments.iter().map(|s| s.unacked).sum();
        let books = Books {
            collected: ledger.written + ledger.dropped + ledger.rejected + buffered,
            written: ledger.written,
            dropped: ledger.dropped,
            rejected: ledger.rejected,
            spooled: 0,
        };
        let syncer = Syncer::start(&active, sync_interval)?;
        let mut log = DiskLog {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes: segment_bytes_for(max_bytes),
            disk_bytes: segments.iter().map(|s| s.bytes).sum::<u64>()
                + retired.iter().map(|r| r.bytes).sum::<u64>(),
            segments,
            active,
            pending: Vec::new(),
            pending_records: 0,
            ledger_file,
            ledger,
            collected: books.collected,
            buffered,
            left: 0,
            replayed: buffered,
            opened: Instant::now(),
            in_flight: None,
            reader: None,
            recent: RecentTimes {
                window: recent_window.max(1) as u64,
                next_index: buffered,
                entries: VecDeque::new(),
            },
            unreported_drops: 0,
            failing: false,
            retired: VecDeque::new(),
            removal_failing: false,
            read_failing: false,
            syncer,
            written_position: 0,
            tail: Vec::new(),
            tail_offset: 0,
            damage_found: Vec::new(),
            damage_seen_to: (0, 0),
        };
        log.retired = retired;
        // On a full disk the ledger may not be writable until delivery
        // frees room; a crash before then sends the log again.
        let _ = log.release_delivered();
        if let Err(error) = log.save_ledger(true) {
            if !is_disk_full(&error) {
                return Err(error);
            }
            log.failing = true;
            log::error!(
                "disk buffer: cannot write the ledger in {}: {error}; delivering the log frees room",
                dir.display()
            );
        }
        let opened = Opened {
            replayed: buffered,
            segments: ids.len(),
            damage,
            unreadable,
            ledger_missing,
            books,
        };
        Ok((log, opened))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn books(&self) -> Books {
        Books {
            collected: self.collected,
            written: self.ledger.written,
            dropped: self.ledger.dropped,
            rejected: self.ledger.rejected,
            spooled: 0,
        }
    }

    pub fn buffered(&self) -> u64 {
        self.buffered
    }

    /// Bytes the log takes on disk, what is still gathering included.
    pub fn bytes(&self) -> u64 {
        self.disk_bytes + self.pending.len() as u64
    }

    pub fn waiting(&self) -> usize {
        (self.buffered - self.in_flight_len() as u64) as usize
    }

    pub fn in_flight_len(&self) -> usize {
        self.in_flight.as_ref().map_or(0, |f| f.points as usize)
    }

    /// The timestamps of the batch in flight's points.
    pub fn in_flight_timestamps(&self) -> impl Iterator<Item = i64> + '_ {
        self.in_flight
            .iter()
            .flat_map(|f| f.timestamps.iter().copied())
    }

    /// Whether points found at start still wait to be sent: they go first.
    pub fn replay_pending(&self) -> bool {
        self.left + (self.in_flight_len() as u64) < self.replayed
    }

    /// When the earliest waiting point was taken (a point found at start
    /// counts as taken when the log was opened).
    pub fn oldest_waiting(&self) -> Option<Instant> {
        if self.waiting() == 0 {
            return None;
        }
        let front = self.left + self.in_flight_len() as u64;
        if front < self.replayed {
            return Some(self.opened);
        }
        Some(self.recent.earliest_from(front).unwrap_or(self.opened))
    }

    /// Damage met while reading batches since this was last asked.
    pub fn take_damage(&mut self) -> Vec<Damage> {
        std::mem::take(&mut self.damage_found)
    }

    /// Points dropped since this was last asked (a full disk at a write).
    pub fn take_unreported_drops(&mut self) -> u64 {
        std::mem::take(&mut self.unreported_drops)
    }

    /// Appends a point. When the budget is full the oldest segment goes;
    /// when none can, the point itself does.
    pub fn push(&mut self, line: String, taken: Instant) -> Pushed {
        self.collected += 1;
        if line.len() > MAX_POINT_BYTES {
            // Written, it could not be read back (`record::MAX_PAYLOAD`).
            self.ledger.rejected += 1;
            return Pushed {
                refused: true,
                ..Pushed::default()
            };
        }
        self.buffered += 1;
        let size = (HEADER_BYTES + line.len()) as u64;
        let mut pushed = Pushed::default();
        while self.bytes() + size > self.max_bytes {
            match self.drop_front() {
                Some(lost) => pushed.dropped += lost,
                None => break,
            }
        }
        if self.bytes() + size > self.max_bytes {
            self.ledger.dropped += 1;
            self.buffered -= 1;
            pushed.dropped += 1;
            pushed.itself = true;
        } else {
            record::encode(line.as_bytes(), &mut self.pending);
            self.pending_records += 1;
            self.recent.push(taken);
            let active_bytes = self.segments.back().map_or(0, |s| s.bytes);
            if active_bytes + self.pending.len() as u64 >= self.segment_bytes {
                self.flush();
                self.rotate();
            } else if self.pending.len() >= PENDING_LIMIT {
                self.flush();
            }
        }
        pushed.dropped += self.take_unreported_drops();
        pushed
    }

    /// Writes what gathered to the file (the sync thread syncs it within
    /// the interval). Answers the points a full disk made it drop.
    pub fn commit(&mut self) -> u64 {
        self.flush();
        let _ = self.remove_retired();
        self.take_unreported_drops()
    }

    /// Writes and syncs everything, and the ledger: for shutdown.
    pub fn close(&mut self) -> io::Result<()> {
        self.flush();
        self.active.sync_data()?;
        self.save_ledger(true)
    }

    fn save_ledger(&mut self, sync: bool) -> io::Result<()> {
        self.syncer.left(self.cursor_position());
        self.ledger_file.write(&mut self.ledger)?;
        if sync {
            self.ledger_file.sync()?;
        }
        Ok(())
    }

    /// The acknowledgement cursor on the sync thread's scale: 0 while it is
    /// in a segment of an earlier run.
    fn cursor_position(&self) -> u64 {
        self.segments
            .iter()
            .find(|s| s.id == self.ledger.ack_segment)
            .and_then(|s| s.start)
            .map_or(0, |start| start + self.ledger.ack_offset)
    }

    /// Syncs of the active segment's bytes since opening: the intervals in
    /// which something written had not been acknowledged yet.
    pub fn syncs(&self) -> u64 {
        self.syncer.syncs()
    }

    /// Writes the gathered appends to the active segment. A full disk
    /// drops the oldest segments to make room; when none can go, the
    /// gathered points are dropped (counted) and the file is left as it was.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        loop {
            let before = self.segments.back().map_or(0, |s| s.bytes);
            match self.active.write_all(&self.pending) {
                Ok(()) => {
                    let written = self.pending.len() as u64;
                    self.written_position += written;
                    self.syncer.written(self.written_position);
                    self.keep_tail(before);
                    let segment = self.segments.back_mut().expect("an active segment");
                    segment.bytes += written;
                    segment.unacked += self.pending_records;
                    self.disk_bytes += written;
                    self.pending.clear();
                    self.pending_records = 0;
                    if self.failing {
                        self.failing = false;
                        log::info!(
                            "disk buffer: writes to {} succeed again",
                            self.dir.display()
                        );
                    }
                    return;
                }
                Err(error) => {
                    // Part of it may be in the file: cut it off, so the file
                    // ends on a whole record.
                    let _ = self.active.set_len(before);
                    if !self.failing {
                        self.failing = true;
                        log::error!(
                            "disk buffer: cannot write to {}: {error}; the oldest points are dropped to make room, or the newest when none can go",
                            self.dir.display()
                        );
                    }
                    if is_disk_full(&error) {
                        if let Some(lost) = self.drop_front() {
                            self.unreported_drops += lost;
                            continue;
                        }
                    }
                    let lost = self.pending_records;
                    self.ledger.dropped += lost;
                    self.buffered -= lost;
                    self.recent.forget_from(self.recent.next_index - lost);
                    self.unreported_drops += lost;
                    self.pending.clear();
                    self.pending_records = 0;
                    return;
                }
            }
        }
    }

    /// Keeps what was just written at `offset` of the active segment for
    /// the next batch's read, when it continues what is kept.
    fn keep_tail(&mut self, offset: u64) {
        if self.tail.is_empty() || self.tail_offset + self.tail.len() as u64 != offset {
            self.tail.clear();
            self.tail_offset = offset;
        }
        if self.tail.len() + self.pending.len() > PENDING_LIMIT {
            // Too much for memory: the batch reads the file.
            self.tail.clear();
            return;
        }
        self.tail.extend_from_slice(&self.pending);
    }

    fn active_id(&self) -> u64 {
        self.segments.back().map_or(0, |s| s.id)
    }

    /// Starts the next segment; the finished one is synced in the
    /// background. If the file cannot be created (a full disk), appends
    /// stay in the current one and it is tried again at the next write.
    fn rotate(&mut self) {
        let id = self.active_id() + 1;
        match create_segment(&self.dir, id) {
            Ok(file) => {
                self.syncer.follow(&file);
                self.tail.clear();
                self.active = file;
                self.segments.push_back(Segment {
                    id,
                    bytes: 0,
                    unacked: 0,
                    start: Some(self.written_position),
                    readable_to: None,
                });
                if let Ok(dir) = File::open(&self.dir) {
                    self.syncer.sync_once(dir);
                }
            }
            Err(error) if !self.failing => {
                self.failing = true;
                log::error!(
                    "disk buffer: cannot create a segment in {}: {error}",
                    self.dir.display()
                );
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests;
