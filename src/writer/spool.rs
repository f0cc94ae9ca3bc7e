//! The spool: points still undelivered at shutdown are saved in the disk
//! buffer's record format (`disk_log::record`: each point a checksummed
//! record) in `spool_dir`, and delivered first at the next start. One format
//! on disk for both buffers; the spool is for the memory buffer, whose
//! points otherwise live in memory only.
//!
//! Rules that keep it from losing or repeating points:
//!
//! * One spool state on disk at any moment. A save writes every point still
//!   buffered (spooled ones not yet delivered included) to a new file,
//!   created exclusively with mode 0600 under a temporary name, syncs it,
//!   renames it, syncs the directory, and only then removes the files it
//!   replaces. A crash before the rename leaves the old files only; one
//!   between the rename and the removals leaves both, whose points are
//!   then delivered twice (InfluxDB stores a point sent twice once).
//! * Only files the service named (`spool-<20 digits>.log`) are loaded;
//!   leftover temporaries of an interrupted save are removed.
//! * Loading streams record by record into the writer's buffer, so the byte
//!   budget applies while reading: a spool larger than the budget costs no
//!   more memory than the budget, and what does not fit is dropped oldest
//!   first and counted, as any overflow is.
//! * Damaged or torn records are skipped, and so are lines that break the
//!   encoder's own rules (`check_line`); both are reported (file and first
//!   offset).
//! * `Backlog` knows which run of the buffer's arrival numbers each loaded
//!   file's points got; a file is removed as soon as the buffer holds none
//!   of them (never while one is in flight).
//! * A file that cannot be read to its end is never removed or replaced,
//!   and a save leaves its points in it; the files after it still load.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::disk_log::record::{self, Item, SegmentReader};
use super::files::{create_private, sync_dir};
use crate::schema::line_protocol::check_line;

const PREFIX: &str = "spool-";
const EXTENSION: &str = ".log";
const TEMPORARY_PREFIX: &str = ".spool-";
const TEMPORARY_EXTENSION: &str = ".tmp";

/// Whether `name` is a spool file this service wrote.
fn is_spool_name(name: &str) -> bool {
    name.strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_suffix(EXTENSION))
        .is_some_and(|stamp| stamp.len() == 20 && stamp.bytes().all(|b| b.is_ascii_digit()))
}

fn is_temporary_name(name: &str) -> bool {
    name.starts_with(TEMPORARY_PREFIX) && name.ends_with(TEMPORARY_EXTENSION)
}

/// The spool files in `dir`, oldest first (names carry the time they were
/// written); leftover temporaries are removed on the way.
fn spool_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if is_spool_name(name) {
            files.push(path);
        } else if is_temporary_name(name) {
            match std::fs::remove_file(&path) {
                Ok(()) => log::warn!(
                    "removed {}, left by a spool save that did not finish",
                    path.display()
                ),
                Err(error) => log::error!("cannot remove {}: {error}", path.display()),
            }
        }
    }
    files.sort();
    Ok(files)
}

/// What loading one file found.
#[derive(Debug, Default)]
pub struct FileReport {
    pub path: PathBuf,
    /// Valid points handed to the sink.
    pub points: u64,
    /// Records skipped as damaged or invalid, and the first one's offset
    /// and reason.
    pub skipped: u64,
    pub first_problem: Option<(u64, &'static str)>,
    /// Why the file could not be read to its end (EACCES, EIO, ...): the
    /// points before the failure were handed over; the file must be kept.
    pub unreadable: Option<std::io::Error>,
}

impl FileReport {
    pub fn problem(&self) -> Option<String> {
        self.first_problem.map(|(offset, reason)| {
            format!(
                "spool file {} has {} damaged or invalid record(s), skipped (first at offset {offset}: {reason})",
                self.path.display(),
                self.skipped
            )
        })
    }
}

/// What `load` hands over, in file order.
pub enum Loading<'a> {
    /// A file's first line comes next.
    File(&'a Path),
    /// A valid line of the current file.
    Line(String),
    /// The current file is done, to its end or to an error.
    Done(&'a FileReport),
}

/// Reads every spool file in `dir`, oldest first, handing each valid line
/// to `sink` as it is read. A file that cannot be read to its end does not
/// stop the others: its report says why. A missing directory is an empty
/// spool.
pub fn load(dir: &Path, mut sink: impl FnMut(Loading)) -> std::io::Result<Vec<FileReport>> {
    let mut reports = Vec::new();
    for path in spool_files(dir)? {
        sink(Loading::File(&path));
        let mut report = FileReport {
            path: path.clone(),
            ..FileReport::default()
        };
        if let Err(error) = read_file(&path, &mut report, &mut sink) {
            report.unreadable = Some(error);
        }
        sink(Loading::Done(&report));
        reports.push(report);
    }
    Ok(reports)
}

fn read_file(
    path: &Path,
    report: &mut FileReport,
    sink: &mut impl FnMut(Loading),
) -> std::io::Result<()> {
    let file = File::open(path)?;
    let length = file.metadata()?.len();
    let mut reader = SegmentReader::new(file, 0, length);
    while let Some(item) = reader.next_item()? {
        let (offset, verdict) = match item {
            Item::Record { offset, payload } => (
                offset,
                std::str::from_utf8(payload)
                    .map_err(|_| "not UTF-8")
                    .and_then(|line| check_line(line).map(|()| line)),
            ),
            Item::Damaged { offset, .. } => (offset, Err("a damaged or torn record")),
        };
        match verdict {
            Ok(line) => {
                report.points += 1;
                sink(Loading::Line(line.to_string()));
            }
            Err(reason) => {
                report.skipped += 1;
                report.first_problem.get_or_insert((offset, reason));
            }
        }
    }
    Ok(())
}

/// Saves `lines` as one new, durable spool file and then removes the files
/// in `replaces` (their points are among `lines`). Returns the new file's
/// path. On error nothing counts as saved, and the old files are kept.
pub fn save<'a>(
    dir: &Path,
    lines: impl Iterator<Item = &'a str>,
    replaces: &[PathBuf],
) -> Result<PathBuf, (PathBuf, std::io::Error)> {
    std::fs::create_dir_all(dir).map_err(|e| (dir.to_path_buf(), e))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    // A later stamp than any file present, so load order stays write order
    // even if the clock went back.
    let newest = spool_files(dir)
        .unwrap_or_default()
        .last()
        .and_then(|p| p.file_name()?.to_str()?.get(6..26)?.parse::<u64>().ok())
        .unwrap_or(0);
    let stamp = stamp.max(newest.saturating_add(1));
    let path = dir.join(format!("{PREFIX}{stamp:020}{EXTENSION}"));
    let temporary = dir.join(format!(
        "{TEMPORARY_PREFIX}{stamp:020}{TEMPORARY_EXTENSION}"
    ));
    let write = || -> std::io::Result<()> {
        let mut file = create_private(&temporary)?;
        let mut records = Vec::with_capacity(1 << 16);
        for line in lines {
            record::encode(line.as_bytes(), &mut records);
            if records.len() >= 1 << 16 {
                file.write_all(&records)?;
                records.clear();
            }
        }
        file.write_all(&records)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)?;
        sync_dir(dir)
    };
    if let Err(error) = write() {
        let _ = std::fs::remove_file(&temporary);
        return Err((path, error));
    }
    remove(replaces);
    Ok(path)
}

/// Removes spool files whose points are all delivered, dropped or saved
/// again; a failure is reported, not fatal (the points would be delivered
/// again, which InfluxDB stores once).
pub fn remove(files: &[PathBuf]) {
    for file in files {
        if let Err(error) = std::fs::remove_file(file) {
            if error.kind() != std::io::ErrorKind::NotFound {
                log::error!("cannot remove spool file {}: {error}", file.display());
            }
        }
    }
    if let Some(dir) = files.first().and_then(|f| f.parent()) {
        let _ = sync_dir(dir);
    }
}

/// The loaded spool files whose points may still be in the buffer, oldest
/// first. Spooled points enter the buffer first, so each file's points got
/// a contiguous run of the buffer's arrival numbers; a file is done once
/// the oldest point the buffer still holds arrived after its last one,
/// whichever way its points left (delivered, rejected, or dropped from
/// behind a batch in flight).
#[derive(Debug, Default)]
pub struct Backlog {
    files: VecDeque<Tracked>,
}

#[derive(Debug)]
struct Tracked {
    path: PathBuf,
    /// The arrival number of its first point.
    start: u64,
    /// The arrival number after its last point; `None` while it loads.
    end: Option<u64>,
    /// Not read to its end: never removed, never replaced.
    keep: bool,
}

impl Backlog {
    /// Starts tracking a file being loaded; its first point will get the
    /// arrival number `next_seq`.
    pub fn track(&mut self, path: &Path, next_seq: u64) {
        self.files.push_back(Tracked {
            path: path.to_path_buf(),
            start: next_seq,
            end: None,
            keep: false,
        });
    }

    /// The file being loaded is done: `next_seq` is the arrival number its
    /// last point was followed by; `keep` when it was not read to its end.
    pub fn loaded(&mut self, next_seq: u64, keep: bool) {
        if let Some(file) = self.files.back_mut() {
            file.end = Some(next_seq);
            file.keep = keep;
        }
    }

    /// Whether a loaded file may still have points in the buffer.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Every point that arrived before `oldest_held` has left the buffer:
    /// stops tracking the files all of whose points did, and returns those
    /// to remove (kept files are left on disk).
    pub fn release(&mut self, oldest_held: u64) -> Vec<PathBuf> {
        let mut done = Vec::new();
        while let Some(file) = self.files.front() {
            if file.end.is_none_or(|end| end > oldest_held) {
                break;
            }
            let file = self.files.pop_front().expect("a front file");
            if !file.keep {
                done.push(file.path);
            }
        }
        done
    }

    /// Forgets every tracked file: a save holds their points now.
    pub fn clear(&mut self) {
        self.files.clear();
    }

    /// The files a save of every buffered point replaces: not the kept
    /// ones, which the operator must see.
    pub fn replaceable(&self) -> impl Iterator<Item = &Path> {
        self.files
            .iter()
            .filter(|f| !f.keep)
            .map(|f| f.path.as_path())
    }

    /// Whether the point with arrival number `seq` came from a kept file:
    /// that file still holds it, so a save leaves it out (saved again, it
    /// would be loaded twice at every start).
    pub fn from_kept_file(&self, seq: u64) -> bool {
        self.files
            .iter()
            .any(|f| f.keep && f.start <= seq && f.end.is_none_or(|end| seq < end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::buffer::Buffer;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Instant;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dss-spool-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn load_all(dir: &Path) -> (Vec<String>, Vec<FileReport>) {
        let mut lines = Vec::new();
        let reports = load(dir, |loading| {
            if let Loading::Line(line) = loading {
                lines.push(line)
            }
        })
        .unwrap();
        (lines, reports)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_save_replaces_the_files_it_holds_the_points_of() {
        let dir = temp_dir("replace");
        let first = save(&dir, ["m f=1i 1", "m f=2i 2"].into_iter(), &[]).unwrap();
        let (lines, _) = load_all(&dir);
        // The next shutdown saves the loaded points again with new ones.
        let all: Vec<&str> = lines
            .iter()
            .map(String::as_str)
            .chain(["m f=3i 3"])
            .collect();
        let second = save(&dir, all.into_iter(), std::slice::from_ref(&first)).unwrap();
        assert!(!first.exists());
        assert_eq!(names(&dir), [second.file_name().unwrap().to_string_lossy()]);
        let (lines, _) = load_all(&dir);
        assert_eq!(lines, ["m f=1i 1", "m f=2i 2", "m f=3i 3"]);
    }

    #[test]
    fn spool_files_are_private_to_the_service() {
        let dir = temp_dir("mode");
        let path = save(&dir, ["m f=1i 1"].into_iter(), &[]).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    /// `lines` as the records of a spool file.
    fn records(lines: &[&str]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for line in lines {
            record::encode(line.as_bytes(), &mut bytes);
        }
        bytes
    }

    #[test]
    fn only_files_the_service_named_are_loaded_and_temporaries_are_removed() {
        let dir = temp_dir("names");
        std::fs::write(
            dir.join("spool-00000000000000000001.log"),
            records(&["m f=1i 1"]),
        )
        .unwrap();
        std::fs::write(dir.join("notes.log"), records(&["m f=9i 9"])).unwrap();
        std::fs::write(dir.join("spool-1.log"), records(&["m f=9i 9"])).unwrap();
        std::fs::write(
            dir.join(".spool-00000000000000000002.tmp"),
            records(&["m f=2i 2"]),
        )
        .unwrap();
        let (lines, reports) = load_all(&dir);
        assert_eq!(lines, ["m f=1i 1"]);
        assert_eq!(reports.len(), 1);
        assert_eq!(
            names(&dir),
            ["notes.log", "spool-00000000000000000001.log", "spool-1.log"]
        );
    }

    #[test]
    fn damaged_torn_and_invalid_records_are_skipped_and_reported() {
        let dir = temp_dir("corrupt");
        let mut bytes = records(&["m f=1i 1"]);
        let garbage_at = bytes.len();
        bytes.extend_from_slice(b"garbage between records");
        bytes.extend(records(&["not line protocol", "m f=2i 3", "m f=3i 4"]));
        bytes.truncate(bytes.len() - 3);
        std::fs::write(dir.join("spool-00000000000000000001.log"), bytes).unwrap();
        let (lines, reports) = load_all(&dir);
        assert_eq!(lines, ["m f=1i 1", "m f=2i 3"]);
        let problem = reports[0].problem().unwrap();
        assert!(
            problem.contains("3 damaged or invalid record(s)"),
            "{problem}"
        );
        assert!(
            problem.contains(&format!("first at offset {garbage_at}")),
            "{problem}"
        );
        assert_eq!(reports[0].points, 2);
    }

    #[test]
    fn a_failed_save_names_the_path_and_keeps_the_old_files() {
        let dir = temp_dir("failed");
        let old = save(&dir, ["m f=1i 1"].into_iter(), &[]).unwrap();
        // A file where the directory should be: fails for root too.
        let blocked = dir.join("blocked");
        std::fs::write(&blocked, "").unwrap();
        let (path, _) = save(
            &blocked,
            ["m f=1i 1"].into_iter(),
            std::slice::from_ref(&old),
        )
        .unwrap_err();
        assert_eq!(path, blocked);
        assert!(old.exists());
        assert!(names(&dir).iter().all(|n| !n.ends_with(".tmp")));
    }

    #[test]
    fn the_backlog_releases_a_file_once_the_buffer_holds_none_of_its_points() {
        let mut backlog = Backlog::default();
        backlog.track(Path::new("a"), 0);
        backlog.loaded(2, false);
        backlog.track(Path::new("empty"), 2);
        backlog.loaded(2, false);
        backlog.track(Path::new("b"), 2);
        assert!(backlog.release(1).is_empty());
        assert_eq!(
            backlog.release(2),
            [PathBuf::from("a"), PathBuf::from("empty")]
        );
        assert!(backlog.release(9).is_empty(), "b is still loading");
        backlog.loaded(3, false);
        assert_eq!(backlog.release(9), [PathBuf::from("b")]);
        assert!(backlog.is_empty());
    }

    #[test]
    fn a_kept_file_is_never_removed_nor_replaced() {
        let mut backlog = Backlog::default();
        backlog.track(Path::new("unreadable"), 0);
        backlog.loaded(1, true);
        backlog.track(Path::new("b"), 1);
        backlog.loaded(2, false);
        assert!(backlog.from_kept_file(0) && !backlog.from_kept_file(1));
        assert_eq!(backlog.replaceable().collect::<Vec<_>>(), [Path::new("b")]);
        assert_eq!(backlog.release(2), [PathBuf::from("b")]);
        assert!(backlog.is_empty());
    }

    #[test]
    fn a_missing_directory_is_an_empty_spool() {
        let (lines, reports) = load_all(Path::new("/nonexistent/dss-spool"));
        assert!(lines.is_empty() && reports.is_empty());
    }

    /// The writer's way with a spool backlog, as `BatchWriterActor` does it.
    fn release(buffer: &Buffer, backlog: &mut Backlog) -> Vec<PathBuf> {
        backlog.release(buffer.oldest_seq().unwrap_or(buffer.next_seq()))
    }

    #[test]
    fn a_spool_file_stays_while_its_points_are_in_flight() {
        // Room for 30 one-letter points.
        let mut buffer = Buffer::new(30 * Buffer::cost_of("a"));
        let mut backlog = Backlog::default();
        for (file, points) in [("a", 10), ("b", 20)] {
            backlog.track(Path::new(file), buffer.next_seq());
            for _ in 0..points {
                buffer.push(file.into(), Instant::now());
            }
            backlog.loaded(buffer.next_seq(), false);
        }
        buffer.start_batch(5);
        // Ten new points drop the ten oldest waiting: a's last five and
        // b's first five, from behind a's five in flight.
        let mut released = Vec::new();
        for _ in 0..10 {
            buffer.push("n".into(), Instant::now());
            released.extend(release(&buffer, &mut backlog));
        }
        assert!(
            released.is_empty(),
            "{released:?} removed with 5 of its points in flight"
        );
        buffer.finish_batch(0);
        assert_eq!(release(&buffer, &mut backlog), [PathBuf::from("a")]);
    }

    #[test]
    fn an_unreadable_file_does_not_stop_the_others_loading() {
        let dir = temp_dir("unreadable");
        std::fs::write(
            dir.join("spool-00000000000000000001.log"),
            records(&["m f=1i 1"]),
        )
        .unwrap();
        // A directory under a spool file's name: it opens, and reading it
        // fails (EISDIR), for root too.
        std::fs::create_dir(dir.join("spool-00000000000000000002.log")).unwrap();
        std::fs::write(
            dir.join("spool-00000000000000000003.log"),
            records(&["m f=3i 3"]),
        )
        .unwrap();
        let (lines, reports) = load_all(&dir);
        assert_eq!(lines, ["m f=1i 1", "m f=3i 3"]);
        let unreadable: Vec<_> = reports.iter().map(|r| r.unreadable.is_some()).collect();
        assert_eq!(unreadable, [false, true, false]);
    }
}
