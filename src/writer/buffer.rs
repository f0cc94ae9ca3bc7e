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
    /// Arrival order, to find the point in `Buffer::earliest`.
    seq: u64,
}

/// What one queued point costs besides its text: its slot in the queue and
/// the allocator's header of its line.
const POINT_OVERHEAD: usize = std::mem::size_of::<Queued>() + 16;

impl Queued {
    /// Bytes a point counts against the budget: what it really holds (its
    /// line is shrunk to fit when queued).
    fn cost(&self) -> usize {
        self.line.capacity() + POINT_OVERHEAD
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

/// What adding a point cost.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// Points dropped to make room, the new one included when it went.
    pub dropped: u64,
    /// Whether the new point itself was dropped (nothing older was left
    /// to drop): it was never among the oldest.
    pub itself: bool,
    /// The point was refused, counted as rejected: longer than
    /// `MAX_POINT_BYTES`.
    pub refused: bool,
}

/// The longest point the writer takes: the most a disk buffer or spool
/// record holds, so that every point kept can be read back.
pub const MAX_POINT_BYTES: usize = super::disk_log::record::MAX_PAYLOAD;

#[derive(Debug)]
pub struct Buffer {
    waiting: VecDeque<Queued>,
    in_flight: Vec<Queued>,
    /// The waiting points that are each the earliest-taken of all points
    /// behind them, in queue order (a sliding-window minimum): the front is
    /// the earliest waiting point, found without scanning the queue.
    earliest: VecDeque<(u64, Instant)>,
    next_seq: u64,
    /// Bytes of `waiting` and `in_flight` together.
    bytes: usize,
    max_bytes: usize,
    books: Books,
}

impl Buffer {
    /// What a point of this text counts against the budget.
    pub fn cost_of(line: &str) -> usize {
        line.len() + POINT_OVERHEAD
    }

    pub fn new(max_bytes: usize) -> Self {
        Buffer {
            waiting: VecDeque::new(),
            in_flight: Vec::new(),
            earliest: VecDeque::new(),
            next_seq: 0,
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

    /// The arrival number the next point pushed gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The arrival number of the oldest point still held (in flight or
    /// waiting): every point that arrived before it has left the buffer,
    /// delivered, rejected or dropped. The batch in flight is always older
    /// than the waiting points.
    pub fn oldest_seq(&self) -> Option<u64> {
        self.in_flight
            .first()
            .or_else(|| self.waiting.front())
            .map(|q| q.seq)
    }

    /// When the earliest measurement among the waiting points was taken.
    /// Points from different streams arrive slightly out of that order, so
    /// it is not always the first one's.
    pub fn oldest_waiting(&self) -> Option<Instant> {
        self.earliest.front().map(|(_, taken)| *taken)
    }

    /// Forgets waiting points up to `seq` (they left the front).
    fn forget_earliest_through(&mut self, seq: u64) {
        while self.earliest.front().is_some_and(|(s, _)| *s <= seq) {
            self.earliest.pop_front();
        }
    }

    fn pop_front_waiting(&mut self) -> Option<Queued> {
        let point = self.waiting.pop_front()?;
        self.forget_earliest_through(point.seq);
        Some(point)
    }

    /// Adds a point; when the budget is exceeded, the oldest waiting points
    /// are dropped (the batch in flight is not touched; if nothing else is
    /// left to drop, the new point itself goes).
    pub fn push(&mut self, mut line: String, taken: Instant) -> Pushed {
        if line.len() > MAX_POINT_BYTES {
            self.books.collected += 1;
            self.books.rejected += 1;
            return Pushed {
                refused: true,
                ..Pushed::default()
            };
        }
        // Lines are built with room to spare; queued, they only wait. A
        // copy of exactly their size (rather than shrinking in place, which
        // leaves the rest of the block as a fragment between long-lived
        // lines) keeps the heap close to what is counted.
        if line.capacity() > line.len() {
            line = line.as_str().to_owned();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let point = Queued { line, taken, seq };
        self.books.collected += 1;
        self.bytes += point.cost();
        self.waiting.push_back(point);
        while self.earliest.back().is_some_and(|(_, t)| *t >= taken) {
            self.earliest.pop_back();
        }
        self.earliest.push_back((seq, taken));
        let mut pushed = Pushed::default();
        while self.bytes > self.max_bytes {
            let Some(oldest) = self.pop_front_waiting() else {
                break;
            };
            self.bytes -= oldest.cost();
            pushed.dropped += 1;
            pushed.itself = oldest.seq == seq;
        }
        self.books.dropped += pushed.dropped;
        pushed
    }

    /// Moves up to `max` of the oldest waiting points in flight and returns
    /// the request body. Only one batch is in flight at a time.
    pub fn start_batch(&mut self, max: usize) -> Option<String> {
        if self.has_in_flight() || self.waiting.is_empty() {
            return None;
        }
        let n = max.max(1).min(self.waiting.len());
        self.in_flight.extend(self.waiting.drain(..n));
        let last = self.in_flight.last().map_or(0, |q| q.seq);
        self.forget_earliest_through(last);
        let mut body = String::with_capacity(self.in_flight.iter().map(|q| q.line.len() + 1).sum());
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
            // At the front, a point is the earliest of all behind it only
            // if it is no later than the current earliest.
            if self.earliest.front().is_none_or(|(_, t)| point.taken <= *t) {
                self.earliest.push_front((point.seq, point.taken));
            }
            self.waiting.push_front(point);
        }
    }

    /// Every point still buffered, oldest first (the batch in flight, then
    /// the waiting points), for the spool.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.lines_where(|_| true)
    }

    /// The buffered points whose arrival numbers `keep` takes, oldest first.
    pub fn lines_where<'a>(
        &'a self,
        keep: impl Fn(u64) -> bool + 'a,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.in_flight
            .iter()
            .chain(self.waiting.iter())
            .filter(move |q| keep(q.seq))
            .map(|q| q.line.as_str())
    }

    /// The spool holds every buffered point durably now: they count as
    /// spooled and leave the buffer.
    pub fn mark_spooled(&mut self) {
        self.books.spooled += self.buffered();
        self.in_flight.clear();
        self.waiting.clear();
        self.earliest.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn balanced(buffer: &Buffer) -> bool {
        let b = buffer.books();
        b.collected == b.written + b.dropped + b.rejected + b.spooled + buffer.buffered()
    }

    /// What a one-letter point costs.
    const ONE: usize = 1 + POINT_OVERHEAD;

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
        let mut buffer = buffer_with(3 * ONE, &["a", "b", "c"]);
        let pushed = buffer.push("d".into(), Instant::now());
        assert_eq!(
            pushed,
            Pushed {
                dropped: 1,
                ..Pushed::default()
            }
        );
        assert_eq!(buffer.bytes(), 3 * ONE);
        assert_eq!(buffer.books().dropped, 1);
        assert!(balanced(&buffer));
        assert_eq!(buffer.start_batch(10).as_deref(), Some("b\nc\nd\n"));
    }

    #[test]
    fn the_batch_in_flight_is_never_dropped() {
        let mut buffer = buffer_with(2 * ONE, &["a", "b"]);
        buffer.start_batch(2);
        assert_eq!(
            buffer.push("c".into(), Instant::now()),
            Pushed {
                dropped: 1,
                itself: true,
                ..Pushed::default()
            },
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
        assert_eq!(buffer.lines().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(buffer.books().spooled, 0, "not spooled until saved");
        buffer.mark_spooled();
        assert_eq!((buffer.bytes(), buffer.books().spooled), (0, 3));
        assert!(balanced(&buffer));
    }

    #[test]
    fn a_point_longer_than_a_record_holds_is_refused_as_rejected() {
        let mut buffer = buffer_with(1 << 30, &["a"]);
        let pushed = buffer.push("x".repeat(MAX_POINT_BYTES + 1), Instant::now());
        assert!(pushed.refused && pushed.dropped == 0);
        assert_eq!(buffer.books().rejected, 1);
        assert!(balanced(&buffer));
        assert_eq!(buffer.start_batch(10).as_deref(), Some("a\n"));
    }

    #[test]
    fn a_line_counts_what_it_holds_not_its_length() {
        let mut line = String::with_capacity(4096);
        line.push_str("m f=1i 1");
        let mut buffer = Buffer::new(1 << 20);
        buffer.push(line, Instant::now());
        assert_eq!(buffer.bytes(), "m f=1i 1".len() + POINT_OVERHEAD);
    }

    /// The earliest waiting point, found incrementally, against a scan,
    /// through pushes out of order, batches, retries and drops.
    #[test]
    fn the_earliest_waiting_point_is_tracked_through_every_change() {
        let base = Instant::now();
        let at = |ms: u64| base + std::time::Duration::from_millis(ms);
        let mut buffer = Buffer::new(40 * ONE);
        let scan = |b: &Buffer| b.waiting.iter().map(|q| q.taken).min();
        let mut rng = fastrand::Rng::with_seed(7);
        for step in 0..5000u64 {
            match rng.u8(0..10) {
                0..=5 => {
                    // Up to 300 ms out of order.
                    buffer.push("x".into(), at(step * 10 + rng.u64(0..300)));
                }
                6 => {
                    buffer.start_batch(rng.usize(1..8));
                }
                7 => buffer.retry_batch(),
                _ => {
                    if buffer.has_in_flight() {
                        buffer.finish_batch(0);
                    }
                }
            }
            assert_eq!(buffer.oldest_waiting(), scan(&buffer), "step {step}");
            assert!(balanced(&buffer));
        }
    }
}
