//! The on-disk record format of the disk buffer and the spool, written and
//! read here from the README's description (magic `FF 44 53 32`, the line's length
//! as u32 little endian, the CRC-32 of length and line, the line), not with
//! the service's own code.

/// The magic that starts every record: 0xFF, then `DS2`.
pub const MAGIC: &[u8; 4] = b"\xffDS2";

/// `lines` as records.
pub fn encode(lines: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        let length = (line.len() as u32).to_le_bytes();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&length);
        crc.update(line.as_bytes());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&length);
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        out.extend_from_slice(line.as_bytes());
    }
    out
}

/// The records of a file, each with its offset; panics on any damage.
pub fn read(path: &str) -> Vec<(usize, String)> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut at = 0;
    while at + 12 <= bytes.len() {
        assert_eq!(&bytes[at..at + 4], MAGIC, "{path} at {at}");
        let length = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let end = at + 12 + length;
        let crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&bytes[at + 4..at + 8]);
        hasher.update(&bytes[at + 12..end]);
        assert_eq!(hasher.finalize(), crc, "{path} at {at}");
        out.push((at, String::from_utf8(bytes[at + 12..end].to_vec()).unwrap()));
        at = end;
    }
    assert_eq!(at, bytes.len(), "{path} ends inside a record");
    out
}
