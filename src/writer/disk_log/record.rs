//! The disk buffer's record format, and a reader that finds every intact
//! record of a segment file, skipping damage.
//!
//! A record is one point: `MAGIC` (4 bytes), the payload's length (u32,
//! little endian), a CRC-32 of the length and payload (u32, little
//! endian), then the payload, one line of line protocol without its
//! newline. The length is inside the checksum, so a damaged length is
//! caught; the magic lets a reader find the next record after it.
//!
//! The magic starts with the byte 0xFF, which UTF-8 text never holds, so
//! after damage a reader looking for the next record cannot find one
//! inside a point's text, whatever the text quotes. Files of the first
//! format (magic `DSR1`, which text can hold) are still read; a reader
//! tells them by their first bytes, and looks for that magic only in them.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

pub const MAGIC: [u8; 4] = [0xFF, b'D', b'S', b'2'];
/// The first format's magic, read in files that start with it.
pub const LEGACY_MAGIC: [u8; 4] = *b"DSR1";
pub const HEADER_BYTES: usize = 12;
/// The longest payload a record holds: the writer refuses a longer point
/// before it is written, and a reader takes a larger length for damage.
pub const MAX_PAYLOAD: usize = 1 << 20;
/// How much of a segment is read at once.
const CHUNK_BYTES: usize = 256 * 1024;

/// Appends the record of `payload` to `out`.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    let length = (payload.len() as u32).to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&length);
    crc.update(payload);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&length);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(payload);
}

/// What the bytes at the start of a slice hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// An intact record, `length` bytes long with its header.
    Record { length: usize },
    /// The start of what may be a record; more bytes are needed to tell.
    Incomplete,
    /// Not the start of an intact record.
    Damaged,
}

/// What `bytes` start with, in a file whose records begin with `magic`.
pub fn decode(bytes: &[u8], magic: &[u8; 4]) -> Decoded {
    let magic_seen = bytes.len().min(magic.len());
    if bytes[..magic_seen] != magic[..magic_seen] {
        return Decoded::Damaged;
    }
    if bytes.len() < HEADER_BYTES {
        return Decoded::Incomplete;
    }
    let field = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let payload = field(4) as usize;
    if payload > MAX_PAYLOAD {
        return Decoded::Damaged;
    }
    let length = HEADER_BYTES + payload;
    if bytes.len() < length {
        return Decoded::Incomplete;
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&bytes[4..8]);
    crc.update(&bytes[HEADER_BYTES..length]);
    if crc.finalize() == field(8) {
        Decoded::Record { length }
    } else {
        Decoded::Damaged
    }
}

/// One item of a segment, in file order.
#[derive(Debug, PartialEq, Eq)]
pub enum Item<'a> {
    Record {
        offset: u64,
        payload: &'a [u8],
    },
    /// Bytes that hold no intact record: a torn write at the end of the
    /// file, or damage, skipped up to the next intact record.
    Damaged {
        offset: u64,
        bytes: u64,
    },
}

/// Reads a segment file from an offset up to a limit, in large chunks.
pub struct SegmentReader {
    file: File,
    buffer: Vec<u8>,
    /// The file offset of `buffer[0]`.
    buffer_offset: u64,
    /// The next unread byte in `buffer`.
    position: usize,
    /// Bytes of the file that may be read (the segment grows while its
    /// reader lives).
    pub limit: u64,
    /// The magic of this file's records: the first format's when the file
    /// starts with it, else the current one.
    magic: [u8; 4],
}

impl SegmentReader {
    pub fn new(file: File, offset: u64, limit: u64) -> Self {
        let mut first = [0u8; 4];
        let legacy =
            limit >= 4 && file.read_exact_at(&mut first, 0).is_ok() && first == LEGACY_MAGIC;
        SegmentReader {
            file,
            buffer: Vec::new(),
            buffer_offset: offset,
            position: 0,
            limit,
            magic: if legacy { LEGACY_MAGIC } else { MAGIC },
        }
    }

    /// The file offset of the next item.
    pub fn offset(&self) -> u64 {
        self.buffer_offset + self.position as u64
    }

    /// Hands the reader the bytes the file holds from `offset` on (what was
    /// just written there), sparing it a read; ignored unless they start
    /// where the bytes it already has end, and lie within its limit.
    pub fn offer(&mut self, offset: u64, bytes: &[u8]) {
        self.buffer.drain(..self.position);
        self.buffer_offset += self.position as u64;
        self.position = 0;
        let end = self.buffer_offset + self.buffer.len() as u64;
        if offset == end && end + bytes.len() as u64 <= self.limit {
            self.buffer.extend_from_slice(bytes);
        }
    }

    /// Reads more of the file behind what is unread; answers how many
    /// bytes came, 0 at the limit.
    fn fill(&mut self) -> io::Result<usize> {
        self.buffer.drain(..self.position);
        self.buffer_offset += self.position as u64;
        self.position = 0;
        let end = self.buffer_offset + self.buffer.len() as u64;
        let wanted = (self.limit.saturating_sub(end) as usize).min(CHUNK_BYTES);
        if wanted == 0 {
            return Ok(0);
        }
        let start = self.buffer.len();
        self.buffer.resize(start + wanted, 0);
        let mut read = 0;
        while read < wanted {
            match self
                .file
                .read_at(&mut self.buffer[start + read..], end + read as u64)
            {
                Ok(0) => break,
                Ok(n) => read += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buffer.truncate(start);
                    return Err(e);
                }
            }
        }
        self.buffer.truncate(start + read);
        Ok(read)
    }

    /// The next record or damaged stretch, `None` at the limit.
    pub fn next_item(&mut self) -> io::Result<Option<Item<'_>>> {
        loop {
            match decode(&self.buffer[self.position..], &self.magic) {
                Decoded::Record { length } => {
                    let offset = self.offset();
                    let start = self.position;
                    self.position += length;
                    return Ok(Some(Item::Record {
                        offset,
                        payload: &self.buffer[start + HEADER_BYTES..start + length],
                    }));
                }
                Decoded::Incomplete => {
                    if self.fill()? > 0 {
                        continue;
                    }
                    if self.position == self.buffer.len() {
                        return Ok(None);
                    }
                    // Cut short by the end of the file: a torn write, or a
                    // damaged length that claims more than there is.
                    let bytes = self.damaged_length()?;
                    return Ok(Some(self.skip(bytes)));
                }
                Decoded::Damaged => {
                    let bytes = self.damaged_length()?;
                    return Ok(Some(self.skip(bytes)));
                }
            }
        }
    }

    fn skip(&mut self, bytes: usize) -> Item<'_> {
        let offset = self.offset();
        self.position += bytes;
        Item::Damaged {
            offset,
            bytes: bytes as u64,
        }
    }

    /// How far damage at the current position reaches: to the next place
    /// where an intact record (or one the file cuts short) starts.
    fn damaged_length(&mut self) -> io::Result<usize> {
        let mut from = 1;
        loop {
            let unread = &self.buffer[self.position..];
            match find_magic(unread, from, &self.magic) {
                Some(at) => match decode(&unread[at..], &self.magic) {
                    Decoded::Record { .. } => return Ok(at),
                    Decoded::Damaged => from = at + 1,
                    Decoded::Incomplete => {
                        if self.fill()? == 0 {
                            return Ok(at);
                        }
                    }
                },
                None => {
                    // The magic may straddle the chunk's end.
                    from = unread.len().saturating_sub(self.magic.len() - 1).max(1);
                    if self.fill()? == 0 {
                        return Ok(self.buffer.len() - self.position);
                    }
                }
            }
        }
    }
}

fn find_magic(bytes: &[u8], from: usize, magic: &[u8; 4]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(magic.len())
        .position(|w| w == magic)
        .map(|at| at + from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn encoded(lines: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for line in lines {
            encode(line.as_bytes(), &mut out);
        }
        out
    }

    /// Every item of `bytes` written to a file, as text.
    fn items(bytes: &[u8]) -> Vec<String> {
        let mut file = tempfile();
        file.write_all(bytes).unwrap();
        let mut reader = SegmentReader::new(file, 0, bytes.len() as u64);
        let mut out = Vec::new();
        while let Some(item) = reader.next_item().unwrap() {
            out.push(match item {
                Item::Record { offset, payload } => {
                    format!("{offset}:{}", std::str::from_utf8(payload).unwrap())
                }
                Item::Damaged { offset, bytes } => format!("{offset}:damaged {bytes}"),
            });
        }
        out
    }

    fn tempfile() -> File {
        let path = std::env::temp_dir().join(format!(
            "dss-record-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }

    #[test]
    fn bytes_offered_where_the_reader_stands_are_read_without_the_file() {
        let bytes = encoded(&["a", "bc"]);
        let mut file = tempfile();
        file.write_all(&bytes[..13]).unwrap();
        let mut reader = SegmentReader::new(file, 0, 13);
        assert!(matches!(
            reader.next_item().unwrap(),
            Some(Item::Record { payload: b"a", .. })
        ));
        // The file does not hold the second record: only the offer does.
        reader.limit = bytes.len() as u64;
        reader.offer(5, &bytes[13..]);
        reader.offer(13, &bytes[13..]);
        assert!(matches!(
            reader.next_item().unwrap(),
            Some(Item::Record {
                offset: 13,
                payload: b"bc"
            })
        ));
        assert_eq!(reader.next_item().unwrap(), None);
    }

    #[test]
    fn intact_records_read_back_with_their_offsets() {
        assert_eq!(items(&encoded(&["a", "bc", ""])), ["0:a", "13:bc", "27:"]);
    }

    #[test]
    fn a_record_cut_short_by_the_end_of_the_file_is_one_damaged_stretch() {
        let mut bytes = encoded(&["first", "second"]);
        bytes.truncate(bytes.len() - 3);
        assert_eq!(items(&bytes), ["0:first", "17:damaged 15"]);
    }

    #[test]
    fn a_flipped_byte_in_a_payload_or_a_length_skips_that_record_only() {
        let clean = encoded(&["one", "two", "three"]);
        let mut payload_hit = clean.clone();
        payload_hit[15 + HEADER_BYTES] ^= 0x20;
        assert_eq!(items(&payload_hit), ["0:one", "15:damaged 15", "30:three"]);
        let mut length_hit = clean;
        length_hit[15 + 4] = 0xff;
        assert_eq!(items(&length_hit), ["0:one", "15:damaged 15", "30:three"]);
    }

    #[test]
    fn garbage_between_records_is_skipped_even_when_it_holds_the_magic() {
        let mut bytes = encoded(&["a"]);
        bytes.extend_from_slice(b"xx\xffDS2yyyyyyyyyyyyyy");
        bytes.extend(encoded(&["b"]));
        assert_eq!(items(&bytes), ["0:a", "13:damaged 20", "33:b"]);
    }

    /// A first-format record whose bytes are all valid UTF-8 (its checksum
    /// included), as a point's string field could quote it.
    fn legacy_record_as_text(payload: &str) -> String {
        (0..)
            .map(|i| format!("{payload}{i}"))
            .find_map(|candidate| String::from_utf8(legacy_encoded(&[candidate.as_str()])).ok())
            .unwrap()
    }

    fn legacy_encoded(lines: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for line in lines {
            let start = out.len();
            encode(line.as_bytes(), &mut out);
            out[start..start + 4].copy_from_slice(&LEGACY_MAGIC);
        }
        out
    }

    #[test]
    fn after_damage_no_record_is_found_inside_a_point_s_text() {
        let forged = legacy_record_as_text("forged");
        let line = format!("m s=\"{forged}\" 1");
        let mut bytes = encoded(&["a"]);
        // Damage to the quoting record's header: the reader looks for the
        // next record from there on, through its text.
        let quoting_at = bytes.len();
        bytes.extend(encoded(&[line.as_str(), "b"]));
        bytes[quoting_at + 5] ^= 0x01;
        let read = items(&bytes);
        assert_eq!(read.first().map(String::as_str), Some("0:a"));
        assert!(read.last().unwrap().ends_with(":b"), "{read:?}");
        assert_eq!(read.len(), 3, "a record was read inside the text: {read:?}");
    }

    #[test]
    fn files_of_the_first_format_are_still_read_and_resynced() {
        let mut bytes = legacy_encoded(&["a"]);
        bytes.extend_from_slice(b"junk");
        bytes.extend(legacy_encoded(&["b"]));
        assert_eq!(items(&bytes), ["0:a", "13:damaged 4", "17:b"]);
    }

    #[test]
    fn records_straddling_chunks_are_read_whole() {
        let line = "x".repeat(100_000);
        let lines: Vec<&str> = std::iter::repeat_n(line.as_str(), 8).collect();
        let bytes = encoded(&lines);
        let read = items(&bytes);
        assert_eq!(read.len(), 8);
        assert!(read.iter().all(|r| r.ends_with(&line)));
    }

    #[test]
    fn damage_longer_than_a_chunk_is_one_stretch() {
        let mut bytes = encoded(&["a"]);
        bytes.extend(std::iter::repeat_n(b'z', 3 * CHUNK_BYTES + 5));
        bytes.extend(encoded(&["b"]));
        assert_eq!(
            items(&bytes),
            [
                "0:a".to_string(),
                format!("13:damaged {}", 3 * CHUNK_BYTES + 5),
                format!("{}:b", 13 + 3 * CHUNK_BYTES + 5)
            ]
        );
    }
}
