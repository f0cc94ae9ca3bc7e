//! Where the writer keeps points until InfluxDB acknowledges them: the
//! memory buffer, or the disk buffer's log when `buffer.dir` is set. Both
//! keep the same books and hand out one batch at a time, oldest first.

use std::time::Instant;

use super::buffer::{Books, Buffer, Pushed};
use super::disk_log::DiskLog;
use crate::schema::line_protocol::timestamp_of;

pub enum Store {
    Memory(Buffer),
    Disk(Box<DiskLog>),
}

/// Forwards a call to whichever store holds the points.
macro_rules! either {
    ($store:expr, $s:ident => $call:expr) => {
        match $store {
            Store::Memory($s) => $call,
            Store::Disk($s) => $call,
        }
    };
}

impl Store {
    pub fn books(&self) -> Books {
        either!(self, s => s.books())
    }

    /// Points waiting or in flight.
    pub fn buffered(&self) -> u64 {
        either!(self, s => s.buffered())
    }

    /// Bytes held: in memory, or on disk for the disk buffer.
    pub fn bytes(&self) -> u64 {
        match self {
            Store::Memory(buffer) => buffer.bytes() as u64,
            Store::Disk(log) => log.bytes(),
        }
    }

    pub fn waiting(&self) -> usize {
        either!(self, s => s.waiting())
    }

    pub fn oldest_waiting(&self) -> Option<Instant> {
        either!(self, s => s.oldest_waiting())
    }

    pub fn push(&mut self, line: String, taken: Instant) -> Pushed {
        either!(self, s => s.push(line, taken))
    }

    pub fn start_batch(&mut self, max: usize) -> Option<String> {
        either!(self, s => s.start_batch(max))
    }

    pub fn in_flight_len(&self) -> usize {
        either!(self, s => s.in_flight_len())
    }

    /// The timestamps of the batch in flight's points (a line's last
    /// field), for the latency histogram.
    pub fn in_flight_timestamps(&self) -> Box<dyn Iterator<Item = i64> + '_> {
        match self {
            Store::Memory(buffer) => Box::new(buffer.in_flight_lines().filter_map(timestamp_of)),
            Store::Disk(log) => Box::new(log.in_flight_timestamps()),
        }
    }

    pub fn finish_batch(&mut self, rejected: usize) {
        either!(self, s => s.finish_batch(rejected))
    }

    pub fn retry_batch(&mut self) {
        either!(self, s => s.retry_batch())
    }

    /// Whether points from before this start wait to be sent: they go
    /// first, at once.
    pub fn replay_pending(&self) -> bool {
        match self {
            Store::Memory(_) => false,
            Store::Disk(log) => log.replay_pending(),
        }
    }
}
