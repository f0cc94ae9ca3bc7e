//! Splits the bytes of a stats stream into frames (one JSON sample per
//! line), enforcing `STATS_LINE_SIZE`: a frame longer than that is skipped,
//! up to its newline, and reported, so one bad frame costs one sample and
//! never the stream.

/// What the splitter found in the bytes it was given.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its newline.
    Line(Vec<u8>),
    /// A line longer than the limit was skipped; at least this many bytes.
    Oversized(usize),
}

#[derive(Debug)]
pub struct FrameSplitter {
    partial: Vec<u8>,
    limit: usize,
    /// Inside an oversized line: skip until its newline.
    skipping: bool,
}

impl FrameSplitter {
    /// `limit` is the longest frame accepted, in bytes; it is also all a
    /// stream holds between reads (`STATS_BUFFER_SIZE` may lower it).
    pub fn new(line_limit: usize, buffer_limit: usize) -> Self {
        FrameSplitter {
            partial: Vec::new(),
            limit: line_limit.min(buffer_limit).max(1),
            skipping: false,
        }
    }

    /// Feeds a chunk of the stream and appends the frames it completes.
    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<Frame>) {
        while !chunk.is_empty() {
            let newline = chunk.iter().position(|b| *b == b'\n');
            let (piece, rest) = match newline {
                Some(i) => (&chunk[..i], Some(&chunk[i + 1..])),
                None => (chunk, None),
            };
            if !self.skipping {
                if self.partial.len() + piece.len() > self.limit {
                    out.push(Frame::Oversized(self.partial.len() + piece.len()));
                    self.partial.clear();
                    self.skipping = true;
                } else {
                    self.partial.extend_from_slice(piece);
                }
            }
            match rest {
                Some(rest) => {
                    if !self.skipping {
                        let mut line = std::mem::take(&mut self.partial);
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                        if !line.iter().all(u8::is_ascii_whitespace) {
                            out.push(Frame::Line(line));
                        }
                    }
                    self.skipping = false;
                    chunk = rest;
                }
                None => break,
            }
        }
    }

    /// Bytes held for a line not complete yet.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(limit: usize, chunks: &[&[u8]]) -> Vec<Frame> {
        let mut splitter = FrameSplitter::new(limit, usize::MAX);
        let mut out = Vec::new();
        for chunk in chunks {
            splitter.push(chunk, &mut out);
        }
        out
    }

    fn line(s: &str) -> Frame {
        Frame::Line(s.as_bytes().to_vec())
    }

    #[test]
    fn lines_split_across_and_within_chunks() {
        let frames = split(100, &[b"{\"a\":1}\n{\"b\"", b":2}\n\n{\"c\":3}\r\n"]);
        assert_eq!(
            frames,
            [line("{\"a\":1}"), line("{\"b\":2}"), line("{\"c\":3}")]
        );
    }

    #[test]
    fn an_incomplete_line_waits_for_its_newline() {
        let mut splitter = FrameSplitter::new(100, usize::MAX);
        let mut out = Vec::new();
        splitter.push(b"{\"a\"", &mut out);
        assert!(out.is_empty());
        assert_eq!(splitter.pending(), 4);
    }

    #[test]
    fn an_oversized_line_is_skipped_to_its_newline_and_reported_once() {
        let frames = split(5, &[b"ok\n0123", b"456789", b"abc\nok2\n"]);
        assert_eq!(frames, [line("ok"), Frame::Oversized(10), line("ok2")]);
    }

    #[test]
    fn the_buffer_limit_can_lower_the_line_limit() {
        let mut splitter = FrameSplitter::new(100, 4);
        let mut out = Vec::new();
        splitter.push(b"12345\nabc\n", &mut out);
        assert_eq!(out, [Frame::Oversized(5), line("abc")]);
    }
}
