//! How many points the next batch may hold: `batch.size`, lowered for good
//! when the server refuses a batch as too large (HTTP 413), and lowered for
//! a while when it stores part of a batch without saying which part, so
//! that the batch is sent again in halves until every answer is exact.

#[derive(Debug)]
pub struct BatchLimit {
    /// `batch.size`, or lower once the server refused a batch as too large.
    limit: usize,
    /// While a batch whose answer was not exact is sent again in parts:
    /// the size of the parts, doubling back to `limit` as they succeed.
    splitting: Option<usize>,
}

impl BatchLimit {
    pub fn new(size: usize) -> Self {
        BatchLimit {
            limit: size.max(1),
            splitting: None,
        }
    }

    /// The most points the next batch may hold.
    pub fn current(&self) -> usize {
        self.splitting
            .map_or(self.limit, |part| part.min(self.limit))
    }

    /// The server refused `size` points as too large: half as many at most
    /// from now on. Answers the new limit.
    pub fn too_large(&mut self, size: usize) -> usize {
        self.limit = (size / 2).max(1);
        self.limit
    }

    /// The server stored part of a batch of `size` points (more than one)
    /// without saying which: its points are sent again in halves.
    pub fn split(&mut self, size: usize) {
        self.splitting = Some((size / 2).max(1));
    }

    /// A batch got an exact answer: the parts grow back, and once they reach
    /// the limit the splitting is over.
    pub fn answered(&mut self) {
        if let Some(part) = self.splitting {
            let next = part.saturating_mul(2);
            self.splitting = (next < self.limit).then_some(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_halves_down_to_one_point_and_grows_back_to_the_limit() {
        let mut limit = BatchLimit::new(100);
        limit.split(100);
        assert_eq!(limit.current(), 50);
        limit.split(50);
        limit.split(25);
        assert_eq!(limit.current(), 12);
        for expected in [24, 48, 96, 100] {
            limit.answered();
            assert_eq!(limit.current(), expected);
        }
        limit.answered();
        assert_eq!(limit.current(), 100);
    }

    #[test]
    fn too_large_lowers_the_limit_for_good_and_splits_stay_under_it() {
        let mut limit = BatchLimit::new(100);
        assert_eq!(limit.too_large(100), 50);
        limit.split(50);
        assert_eq!(limit.current(), 25);
        limit.answered();
        limit.answered();
        assert_eq!(limit.current(), 50);
        assert_eq!(BatchLimit::new(0).current(), 1);
    }
}
