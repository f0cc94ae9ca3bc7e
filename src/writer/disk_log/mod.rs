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
//! * At start every segment past the cursor is read and checked: intact
//!   records are delivered first, in order; each damaged stretch (a torn
//!   write, flipped bytes) is skipped, reported with its file and offset,
//!   and counted as one dropped point, once.
//! * The books (`collected = written + dropped + rejected + buffered`) carry
//!   over: the ledger keeps written, dropped and rejected of every earlier
//!   run, and buffered is what the log still holds.

pub mod ledger;
pub mod record;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use super::buffer::{Books, Pushed, MAX_POINT_BYTES};
use super::files::{is_disk_full, sync_dir};
use crate::schema::line_protocol::timestamp_of;
use ledger::{Ledger, LedgerFile};
use record::{Item, SegmentReader, HEADER_BYTES};

const SEGMENT_PREFIX: &str = "seg-";
const SEGMENT_SUFFIX: &str = ".log";
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

fn segment_name(id: u64) -> String {
    format!("{SEGMENT_PREFIX}{id:020}{SEGMENT_SUFFIX}")
}

fn segment_id(name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix(SEGMENT_PREFIX)?
        .strip_suffix(SEGMENT_SUFFIX)?;
    (digits.len() == 20).then(|| digits.parse().ok()).flatten()
}

/// The segment ids in `dir`, oldest first.
fn segment_ids(dir: &Path) -> io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        if let Some(id) = entry?.file_name().to_str().and_then(segment_id) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

#[derive(Debug)]
struct Segment {
    id: u64,
    /// Bytes in the file.
    bytes: u64,
    /// Intact records past the acknowledgement cursor.
    unacked: u64,
    /// Where its first byte stands among the bytes this run wrote (the
    /// sync thread's positions); `None` for a segment of an earlier run.
    start: Option<u64>,
}

/// The batch being sent (its body is the request's: only the points'
/// timestamps are kept here).
struct InFlight {
    timestamps: Vec<i64>,
    points: u64,
    /// Where the cursor goes once it is acknowledged.
    end_segment: u64,
    end_offset: u64,
    /// What the batch takes from each segment it spans.
    per_segment: Vec<Share>,
}

/// What a batch takes from one segment.
struct Share {
    id: u64,
    points: u64,
    /// Records counted in the segment but found damaged when the batch read
    /// to its end: damage that appeared while the service ran. They leave
    /// the log as dropped when the batch is acknowledged, with the cursor.
    lost: u64,
}

impl InFlight {
    fn lost(&self) -> u64 {
        self.per_segment.iter().map(|share| share.lost).sum()
    }
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
/// point as a damaged stretch is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub file: PathBuf,
    pub offset: u64,
    pub error: String,
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

/// When the waiting points among the newest `window` were taken, as a
/// sliding-window minimum, so the writer's batch wait needs no list of
/// every point; past the window a batch is due anyway.
struct RecentTimes {
    window: u64,
    next_index: u64,
    entries: VecDeque<(u64, Instant)>,
}

impl RecentTimes {
    fn push(&mut self, taken: Instant) {
        let index = self.next_index;
        self.next_index += 1;
        while self.entries.back().is_some_and(|(_, t)| *t >= taken) {
            self.entries.pop_back();
        }
        self.entries.push_back((index, taken));
        while self
            .entries
            .front()
            .is_some_and(|(i, _)| i + self.window <= index)
        {
            self.entries.pop_front();
        }
    }

    fn forget_before(&mut self, index: u64) {
        while self.entries.front().is_some_and(|(i, _)| *i < index) {
            self.entries.pop_front();
        }
    }

    /// The newest points, from `index` on, were given up.
    fn forget_from(&mut self, index: u64) {
        while self.entries.back().is_some_and(|(i, _)| *i >= index) {
            self.entries.pop_back();
        }
        self.next_index = index;
    }

    fn earliest_from(&self, index: u64) -> Option<Instant> {
        self.entries
            .iter()
            .find(|(i, _)| *i >= index)
            .map(|(_, t)| *t)
    }
}

/// What the sync thread is told.
enum SyncOrder {
    /// Appends go to this segment now: sync the one before it, and follow
    /// this one.
    Follow(File),
    /// Sync this once (the directory, after a segment was created).
    Once(File),
}

/// Syncs the active segment on a thread of its own, on a clock of its own:
/// every interval, if it holds bytes written since its last sync that have
/// not left the log. What InfluxDB acknowledged (or what was dropped) in
/// the meantime needs no sync: it no longer depends on the disk, so in a
/// steady state, where each batch is acknowledged soon after it is written,
/// most intervals sync nothing. A slow disk never stalls the actors'
/// thread, and the actors' thread neither wakes it nor hands it anything
/// but a new segment: each sync would otherwise cost that thread two system
/// calls, which on a small host are a visible part of what a point costs.
struct Syncer {
    orders: mpsc::Sender<SyncOrder>,
    progress: Arc<Progress>,
}

/// Where this run's appends stand, in bytes appended to the log's files
/// since it was opened (a position across segments), shared with the sync
/// thread.
#[derive(Default)]
struct Progress {
    /// Written to the files.
    written: AtomicU64,
    /// Left the log (acknowledged or dropped): the acknowledgement cursor.
    left: AtomicU64,
    /// Syncs of the active segment, for `/metrics` and the tests.
    syncs: AtomicU64,
}

/// Whether the bytes written up to `written` need a sync: some were
/// written since the last one (`synced_to`) and have not all left the log.
fn needs_sync(written: u64, left: u64, synced_to: u64) -> bool {
    written > synced_to && left < written
}

impl Syncer {
    fn start(active: &File, interval: Duration) -> io::Result<Syncer> {
        let (orders, receiver) = mpsc::channel::<SyncOrder>();
        let progress = Arc::new(Progress::default());
        let mut following = active.try_clone()?;
        let shared = Arc::clone(&progress);
        std::thread::Builder::new()
            .name("disk-buffer-sync".into())
            .spawn(move || {
                let mut outcome = SyncOutcome::default();
                let mut synced_to = 0;
                loop {
                    match receiver.recv_timeout(interval) {
                        Ok(SyncOrder::Follow(next)) => {
                            let finished = std::mem::replace(&mut following, next);
                            outcome.report(finished.sync_data());
                        }
                        Ok(SyncOrder::Once(file)) => outcome.report(file.sync_all()),
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            // Read before `left`: bytes written after this
                            // load wait for the next interval.
                            let written = shared.written.load(Ordering::Acquire);
                            let left = shared.left.load(Ordering::Acquire);
                            if needs_sync(written, left, synced_to) {
                                outcome.report(following.sync_data());
                                shared.syncs.fetch_add(1, Ordering::Relaxed);
                            }
                            synced_to = written;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
            })?;
        Ok(Syncer { orders, progress })
    }

    /// The active segment was written up to `position`: unless those bytes
    /// leave the log first, they are synced within the interval.
    fn written(&self, position: u64) {
        self.progress.written.store(position, Ordering::Release);
    }

    /// The acknowledgement cursor moved to `position`.
    fn left(&self, position: u64) {
        self.progress.left.store(position, Ordering::Release);
    }

    fn syncs(&self) -> u64 {
        self.progress.syncs.load(Ordering::Relaxed)
    }

    fn follow(&self, active: &File) {
        match active.try_clone() {
            Ok(file) => {
                let _ = self.orders.send(SyncOrder::Follow(file));
            }
            Err(error) => log::error!("disk buffer: cannot sync the new segment: {error}"),
        }
    }

    fn sync_once(&self, file: File) {
        let _ = self.orders.send(SyncOrder::Once(file));
    }
}

/// Logs a failing sync once, and its recovery.
#[derive(Default)]
struct SyncOutcome {
    failing: bool,
}

impl SyncOutcome {
    fn report(&mut self, result: io::Result<()>) {
        match result {
            Ok(()) if self.failing => {
                self.failing = false;
                log::info!("disk buffer: syncing to disk works again");
            }
            Ok(()) => {}
            Err(error) if !self.failing => {
                self.failing = true;
                log::error!("disk buffer: cannot sync to disk: {error}");
            }
            Err(_) => {}
        }
    }
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
    /// Segments behind the cursor whose files are not removed yet (id,
    /// bytes): their bytes are still in `disk_bytes`.
    retired: VecDeque<(u64, u64)>,
    /// Set while retired files cannot be removed, so it is logged once.
    removal_failing: bool,
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
            retired.push_back((*id, bytes));
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
            let newly_met = id > ledger.checked_segment;
            if newly_met {
                damage.extend(counted.damage);
                if let Some(error) = counted.failure {
                    unreadable.push(Unreadable {
                        file: path,
                        offset: counted.read_to,
                        error: error.to_string(),
                    });
                }
            }
            segments.push_back(Segment {
                id,
                bytes: counted.bytes,
                unacked: counted.records,
                start: None,
            });
        }
        ledger.dropped += unreadable.len() as u64;
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
            disk_bytes: segments.iter().map(|s| s.bytes).sum(),
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

    /// Reads up to `max` of the oldest waiting points as a request body.
    /// Only one batch is in flight at a time.
    pub fn start_batch(&mut self, max: usize) -> Option<String> {
        self.flush();
        while self.in_flight.is_none() && self.waiting() > 0 {
            match self.read_batch(max.max(1) as u64) {
                Ok((body, batch)) if batch.points > 0 => {
                    self.in_flight = Some(batch);
                    return Some(body);
                }
                // Only damage was left to read: account for the records it
                // took, and look further.
                Ok((_, batch)) if batch.lost() > 0 => {
                    self.in_flight = Some(batch);
                    self.finish_batch(0);
                }
                Ok(_) => return None,
                Err(error) => {
                    log::error!("disk buffer: cannot read {}: {error}", self.dir.display());
                    self.reader = None;
                    return None;
                }
            }
        }
        None
    }

    fn read_batch(&mut self, max: u64) -> io::Result<(String, InFlight)> {
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
    fn read_segment(
        &mut self,
        index: usize,
        max: u64,
        body: &mut String,
        batch: &mut InFlight,
    ) -> io::Result<bool> {
        let (id, bytes) = (self.segments[index].id, self.segments[index].bytes);
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
    fn skip_unreadable(
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
        // Past the cursor (the first segment) or whole (the others).
        let segment = &self.segments[index];
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
    fn note_damage(&mut self, id: u64, offset: u64, bytes: u64) {
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

    /// Takes the segments at the front none of whose points wait any more
    /// off the log, moving the cursor past them, and removes their files.
    fn release_delivered(&mut self) -> io::Result<()> {
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
    fn retire(&mut self, segment: Segment) {
        self.forget_reader(segment.id);
        self.retired.push_back((segment.id, segment.bytes));
    }

    /// Removes the files of retired segments, once the ledger that moves
    /// the cursor past them is synced (a crash never leaves a cursor
    /// pointing into a removed file). A file that cannot be removed stays
    /// counted in the log's bytes, is named once, and is tried again at the
    /// next commit.
    fn remove_retired(&mut self) -> io::Result<()> {
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
            for (id, bytes) in std::mem::take(&mut self.retired) {
                let path = self.dir.join(segment_name(id));
                match std::fs::remove_file(&path) {
                    Ok(()) => self.disk_bytes -= bytes,
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {
                        self.disk_bytes -= bytes
                    }
                    Err(error) => {
                        kept.push_back((id, bytes));
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
    fn drop_front(&mut self) -> Option<u64> {
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

    fn forget_reader(&mut self, id: u64) {
        if self
            .reader
            .as_ref()
            .is_some_and(|(reader_id, _)| *reader_id == id)
        {
            self.reader = None;
        }
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

/// What a segment of an earlier run holds past `start`.
struct Counted {
    /// The file's length.
    bytes: u64,
    /// Intact records.
    records: u64,
    damage: Vec<Damage>,
    /// Why it could not be read to its end, and how far it was.
    failure: Option<io::Error>,
    read_to: u64,
}

fn count_records(path: &Path, start: u64) -> Counted {
    let mut counted = Counted {
        bytes: 0,
        records: 0,
        damage: Vec::new(),
        failure: None,
        read_to: start,
    };
    let file = match File::open(path).and_then(|file| Ok((file.metadata()?.len(), file))) {
        Ok((bytes, file)) => {
            counted.bytes = bytes;
            file
        }
        Err(error) => {
            counted.failure = Some(error);
            return counted;
        }
    };
    let mut reader = SegmentReader::new(file, start.min(counted.bytes), counted.bytes);
    loop {
        counted.read_to = reader.offset();
        match reader.next_item() {
            Ok(Some(Item::Record { .. })) => counted.records += 1,
            Ok(Some(Item::Damaged { offset, bytes })) => counted.damage.push(Damage {
                file: path.to_path_buf(),
                offset,
                bytes,
            }),
            Ok(None) => return counted,
            Err(error) => {
                counted.failure = Some(error);
                return counted;
            }
        }
    }
}

fn create_segment(dir: &Path, id: u64) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join(segment_name(id)))
}

#[cfg(test)]
mod tests;
