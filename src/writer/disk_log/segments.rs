//! Segment files: their names, creation, and what one of an earlier run
//! holds past the cursor.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::record::{Item, SegmentReader};
use super::Damage;

pub(super) const SEGMENT_PREFIX: &str = "seg-";

pub(super) const SEGMENT_SUFFIX: &str = ".log";

pub(super) fn segment_name(id: u64) -> String {
    format!("{SEGMENT_PREFIX}{id:020}{SEGMENT_SUFFIX}")
}

pub(super) fn segment_id(name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix(SEGMENT_PREFIX)?
        .strip_suffix(SEGMENT_SUFFIX)?;
    (digits.len() == 20).then(|| digits.parse().ok()).flatten()
}

/// The segment ids in `dir`, oldest first.
pub(super) fn segment_ids(dir: &Path) -> io::Result<Vec<u64>> {
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
pub(super) struct Segment {
    pub(super) id: u64,
    /// Bytes in the file.
    pub(super) bytes: u64,
    /// Intact records past the acknowledgement cursor.
    pub(super) unacked: u64,
    /// Where its first byte stands among the bytes this run wrote (the
    /// sync thread's positions); `None` for a segment of an earlier run.
    pub(super) start: Option<u64>,
    /// For a segment that could not be read to its end: the offset the
    /// read failed at. Reading stops there, and once the segment leaves the
    /// log its file is moved aside for the operator, not removed.
    pub(super) readable_to: Option<u64>,
}

/// A segment behind the cursor whose file is not gone yet: its bytes count
/// against the budget until it is.
#[derive(Debug, Clone, Copy)]
pub(super) struct Retired {
    pub(super) id: u64,
    pub(super) bytes: u64,
    /// Could not be read to its end: moved aside, not removed.
    pub(super) aside: bool,
}

/// Where an unreadable segment's file is moved when it leaves the log: a
/// name the log does not read, beside it.
pub(super) fn aside_name(id: u64) -> String {
    format!("unreadable-{}", segment_name(id))
}

/// Whether a read error may pass by itself (no descriptor or memory to
/// spare just now), so the segment is read again later rather than given
/// up.
pub(super) fn is_transient(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::Interrupted
        || matches!(
            error.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EAGAIN)
        )
}

/// What a segment of an earlier run holds past `start`.
pub(super) struct Counted {
    /// The file's length.
    pub(super) bytes: u64,
    /// Intact records.
    pub(super) records: u64,
    pub(super) damage: Vec<Damage>,
    /// Why it could not be read to its end, and how far it was.
    pub(super) failure: Option<io::Error>,
    pub(super) read_to: u64,
}

pub(super) fn count_records(path: &Path, start: u64) -> Counted {
    let mut counted = Counted {
        // Known even when the file cannot be opened for reading.
        bytes: std::fs::metadata(path).map_or(0, |m| m.len()),
        records: 0,
        damage: Vec::new(),
        failure: None,
        read_to: start,
    };
    let file = match File::open(path) {
        Ok(file) => file,
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

pub(super) fn create_segment(dir: &Path, id: u64) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join(segment_name(id)))
}
