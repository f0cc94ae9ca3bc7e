//! When the newest waiting points were taken, for the batch wait.

use std::collections::VecDeque;
use std::time::Instant;

/// When the waiting points among the newest `window` were taken, as a
/// sliding-window minimum, so the writer's batch wait needs no list of
/// every point; past the window a batch is due anyway.
pub(super) struct RecentTimes {
    pub(super) window: u64,
    pub(super) next_index: u64,
    pub(super) entries: VecDeque<(u64, Instant)>,
}

impl RecentTimes {
    pub(super) fn push(&mut self, taken: Instant) {
        let index = self.next_index;
        self.next_index += 1;
        while self.entries.back().is_some_and(|(_, t)| *t >= taken) {
            self.entries.pop_back();
        }
        self.entries.push_back((index, taken));
        while self
            .entries
            .front()
            .is_some_and(|(i, _)| i + self.window <= index)
        {
            self.entries.pop_front();
        }
    }

    pub(super) fn forget_before(&mut self, index: u64) {
        while self.entries.front().is_some_and(|(i, _)| *i < index) {
            self.entries.pop_front();
        }
    }

    /// The newest points, from `index` on, were given up.
    pub(super) fn forget_from(&mut self, index: u64) {
        while self.entries.back().is_some_and(|(i, _)| *i >= index) {
            self.entries.pop_back();
        }
        self.next_index = index;
    }

    pub(super) fn earliest_from(&self, index: u64) -> Option<Instant> {
        self.entries
            .iter()
            .find(|(i, _)| *i >= index)
            .map(|(_, t)| *t)
    }
}
