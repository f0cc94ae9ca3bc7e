//! The disk buffer's ledger: where delivery stands (the acknowledgement
//! cursor) and the books of every earlier run, kept beside the segments so
//! they survive restarts and crashes.
//!
//! The file holds two fixed slots, written alternately in place with a
//! generation number and a checksum: a write torn by a crash spoils only
//! the slot being written, and loading takes the intact slot of the higher
//! generation.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

const MAGIC: [u8; 4] = *b"DSL1";
const FIELDS: usize = 7;
const SLOT_BYTES: u64 = 64;
pub const FILE_NAME: &str = "ledger";

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ledger {
    pub generation: u64,
    /// The first record not yet delivered: a segment and a byte offset in it.
    pub ack_segment: u64,
    pub ack_offset: u64,
    pub written: u64,
    pub dropped: u64,
    pub rejected: u64,
    /// Segments up to this one have had their damage counted (as dropped)
    /// at an earlier start, so it is not counted again.
    pub checked_segment: u64,
}

impl Ledger {
    fn fields(&self) -> [u64; FIELDS] {
        [
            self.generation,
            self.ack_segment,
            self.ack_offset,
            self.written,
            self.dropped,
            self.rejected,
            self.checked_segment,
        ]
    }

    fn encode(&self) -> [u8; SLOT_BYTES as usize] {
        let mut slot = [0u8; SLOT_BYTES as usize];
        slot[..4].copy_from_slice(&MAGIC);
        for (i, value) in self.fields().iter().enumerate() {
            slot[4 + i * 8..12 + i * 8].copy_from_slice(&value.to_le_bytes());
        }
        let end = 4 + FIELDS * 8;
        let crc = crc32fast::hash(&slot[..end]);
        slot[end..end + 4].copy_from_slice(&crc.to_le_bytes());
        slot
    }

    fn decode(slot: &[u8]) -> Option<Ledger> {
        let end = 4 + FIELDS * 8;
        if slot.len() < end + 4 || slot[..4] != MAGIC {
            return None;
        }
        let crc = u32::from_le_bytes(slot[end..end + 4].try_into().unwrap());
        if crc32fast::hash(&slot[..end]) != crc {
            return None;
        }
        let f = |i: usize| u64::from_le_bytes(slot[4 + i * 8..12 + i * 8].try_into().unwrap());
        Some(Ledger {
            generation: f(0),
            ack_segment: f(1),
            ack_offset: f(2),
            written: f(3),
            dropped: f(4),
            rejected: f(5),
            checked_segment: f(6),
        })
    }
}

pub struct LedgerFile {
    file: File,
}

impl LedgerFile {
    /// Opens (or creates) the ledger in `dir` and answers the newest intact
    /// state it holds, `None` when it holds none.
    pub fn open(dir: &Path) -> io::Result<(LedgerFile, Option<Ledger>)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(dir.join(FILE_NAME))?;
        let mut bytes = vec![0u8; 2 * SLOT_BYTES as usize];
        let read = file.read_at(&mut bytes, 0)?;
        bytes.truncate(read);
        let newest = bytes
            .chunks(SLOT_BYTES as usize)
            .filter_map(Ledger::decode)
            .max_by_key(|l| l.generation);
        Ok((LedgerFile { file }, newest))
    }

    /// Writes the next generation of `ledger` over the older slot. Not
    /// synced: a process crash keeps it (the page cache does); `sync`
    /// before anything that relies on it surviving the machine.
    pub fn write(&mut self, ledger: &mut Ledger) -> io::Result<()> {
        ledger.generation += 1;
        let slot = (ledger.generation % 2) * SLOT_BYTES;
        self.file.write_all_at(&ledger.encode(), slot)
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "dss-ledger-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_newest_intact_slot_wins_and_a_torn_one_is_ignored() {
        let dir = dir();
        let (mut file, none) = LedgerFile::open(&dir).unwrap();
        assert_eq!(none, None);
        let mut ledger = Ledger {
            written: 10,
            ..Ledger::default()
        };
        file.write(&mut ledger).unwrap();
        ledger.written = 20;
        file.write(&mut ledger).unwrap();
        assert_eq!(LedgerFile::open(&dir).unwrap().1.unwrap().written, 20);
        // A crash in the middle of the next write spoils that slot only.
        let torn_slot = ((ledger.generation + 1) % 2) * SLOT_BYTES;
        file.file.write_all_at(&[0xAA; 20], torn_slot).unwrap();
        assert_eq!(LedgerFile::open(&dir).unwrap().1.unwrap().written, 20);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
