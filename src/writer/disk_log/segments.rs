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

pub(super) fn create_segment(dir: &Path, id: u64) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join(segment_name(id)))
}
