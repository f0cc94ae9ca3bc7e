//! The writer's buffer of encoded points: arrival order, a byte budget, and
//! exact books.
//!
//! At every moment `collected = written + dropped + rejected + spooled +
//! buffered`, where `buffered` counts the points waiting and the batch in
//! flight. `dropped` are the oldest points given up when the budget was full;
//! `rejected` are points the server refused as invalid; `spooled` are points
//! handed to the spool at shutdown (zero until then).

use std::collections::VecDeque;
use std::time::Instant;

#[derive(Debug)]
pub struct Queued {
    pub line: String,
    /// When its measurement was taken (see `WritePoint`).
    pub taken: Instant,
}

impl Queued {
    /// Bytes a point counts against the budget: its line and the newline
    /// that ends it in a request body.
    fn cost(&self) -> usize {
        self.line.len() + 1
    }
}

/// Counts since the writer started; see the module comment for the balance.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Books {
    pub collected: u64,
    pub written: u64,
    pub dropped: u64,
    pub rejected: u64,
    pub spooled: u64,
}

#[derive(Debug)]
pub struct Buffer {
    waiting: VecDeque<Queued>,
    in_flight: Vec<Queued>,
    /// Bytes of `waiting` and `in_flight` together.
    bytes: usize,
    max_bytes: usize,
    books: Books,
}

impl Buffer {
    pub fn new(max_bytes: usize) -> Self {
        Buffer {
            waiting: VecDeque::new(),
            in_flight: Vec::new(),
            bytes: 0,
            max_bytes,
            books: Books::default(),
        }
    }

    pub fn books(&self) -> Books {
        self.books
    }

    /// Points waiting or in flight.
    pub fn buffered(&self) -> u64 {
        (self.waiting.len() + self.in_flight.len()) as u64
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn has_in_flight(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// When the earliest measurement among the waiting points was taken.
    /// Points from different streams arrive slightly out of that order,
    /// so this looks at all of them.
    pub fn oldest_waiting(&self) -> Option<Instant> {
        self.waiting.iter().map(|q| q.taken).min()
    }

    /// Adds a point; when the budget is exceeded, the oldest waiting points
    /// are dropped (the batch in flight is not touched; if nothing else is
    /// left to drop, the new point itself goes). Returns how many were dropped.
    pub fn push(&mut self, line: String, taken: Instant) -> u64 {
        let point = Queued { line, taken };
        self.books.collected += 1;
        self.bytes += point.cost();
        self.waiting.push_back(point);
        let mut dropped = 0;
        while self.bytes > self.max_bytes {
            let Some(oldest) = self.waiting.pop_front() else {
                break;
            };
            self.bytes -= oldest.cost();
            dropped += 1;
        }
        self.books.dropped += dropped;
        dropped
    }

    /// Moves up to `max` of the oldest waiting points in flight and returns
    /// the request body. Only one batch is in flight at a time.
    pub fn start_batch(&mut self, max: usize) -> Option<String> {
        if self.has_in_flight() || self.waiting.is_empty() {
            return None;
        }
        let n = max.max(1).min(self.waiting.len());
        self.in_flight.extend(self.waiting.drain(..n));
        let mut body = String::with_capacity(self.in_flight.iter().map(Queued::cost).sum());
        for point in &self.in_flight {
            body.push_str(&point.line);
            body.push('\n');
        }
        Some(body)
    }

    /// The lines of the batch in flight.
    pub fn in_flight_lines(&self) -> impl Iterator<Item = &str> {
        self.in_flight.iter().map(|q| q.line.as_str())
    }

    pub fn in_flight_len(&self) -> usize {
        self.in_flight.len()
    }

    /// The server stored the batch, except `rejected` invalid points.
    pub fn finish_batch(&mut self, rejected: usize) {
        let size = self.in_flight.len() as u64;
        let rejected = (rejected as u64).min(size);
        self.books.written += size - rejected;
        self.books.rejected += rejected;
        self.bytes -= self.in_flight.drain(..).map(|q| q.cost()).sum::<usize>();
    }

    /// The batch could not be written: it goes back in front of the newer
    /// points, in its original order.
    pub fn retry_batch(&mut self) {
        for point in self.in_flight.drain(..).rev() {
            self.waiting.push_front(point);
        }
    }

    /// Takes every point still buffered, oldest first, for the spool.
    pub fn take_for_spool(&mut self) -> Vec<String> {
        self.retry_batch();
        self.bytes = 0;
        self.books.spooled += self.waiting.len() as u64;
        self.waiting.drain(..).map(|q| q.line).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn balanced(buffer: &Buffer) -> bool {
        let b = buffer.books();
        b.collected == b.written + b.dropped + b.rejected + b.spooled + buffer.buffered()
    }

    fn buffer_with(max_bytes: usize, lines: &[&str]) -> Buffer {
        let mut buffer = Buffer::new(max_bytes);
        for line in lines {
            buffer.push(line.to_string(), Instant::now());
        }
        buffer
    }

    #[test]
    fn a_failed_batch_goes_back_ahead_of_newer_points_in_order() {
        let mut buffer = buffer_with(1000, &["a", "b", "c"]);
        assert_eq!(buffer.start_batch(2).as_deref(), Some("a\nb\n"));
        buffer.push("d".into(), Instant::now());
        buffer.retry_batch();
        assert!(balanced(&buffer));
        assert_eq!(buffer.start_batch(10).as_deref(), Some("a\nb\nc\nd\n"));
    }

    #[test]
    fn only_one_batch_is_in_flight() {
        let mut buffer = buffer_with(1000, &["a", "b"]);
        assert!(buffer.start_batch(1).is_some());
        assert_eq!(buffer.start_batch(1), None);
        buffer.finish_batch(0);
        assert_eq!(buffer.start_batch(1).as_deref(), Some("b\n"));
    }

    #[test]
    fn a_full_budget_drops_the_oldest_waiting_points() {
        // Each one-letter point costs 2 bytes: 6 bytes hold three.
        let mut buffer = buffer_with(6, &["a", "b", "c"]);
        assert_eq!(buffer.push("d".into(), Instant::now()), 1);
        assert_eq!(buffer.bytes(), 6);
        assert_eq!(buffer.books().dropped, 1);
        assert!(balanced(&buffer));
        assert_eq!(buffer.start_batch(10).as_deref(), Some("b\nc\nd\n"));
    }

    #[test]
    fn the_batch_in_flight_is_never_dropped() {
        let mut buffer = buffer_with(4, &["a", "b"]);
        buffer.start_batch(2);
        assert_eq!(
            buffer.push("c".into(), Instant::now()),
            1,
            "the new point itself goes"
        );
        assert!(balanced(&buffer));
        buffer.retry_batch();
        assert_eq!(buffer.start_batch(10).as_deref(), Some("a\nb\n"));
    }

    #[test]
    fn rejected_points_are_counted_apart_from_written_ones() {
        let mut buffer = buffer_with(1000, &["a", "b", "c"]);
        buffer.start_batch(3);
        buffer.finish_batch(1);
        assert_eq!(
            buffer.books(),
            Books {
                collected: 3,
                written: 2,
                dropped: 0,
                rejected: 1,
                spooled: 0,
            }
        );
        assert_eq!((buffer.buffered(), buffer.bytes()), (0, 0));
    }

    #[test]
    fn spooling_takes_in_flight_and_waiting_points_oldest_first() {
        let mut buffer = buffer_with(1000, &["a", "b", "c"]);
        buffer.start_batch(1);
        assert_eq!(buffer.take_for_spool(), ["a", "b", "c"]);
        assert_eq!((buffer.bytes(), buffer.books().spooled), (0, 3));
        assert!(balanced(&buffer));
    }
}
