//! Capped exponential backoff, the one rule every retry in the service
//! follows: restarting a StatsActor, reconnecting to the engine, and (with
//! jitter on top, `writer::retry`) writing to InfluxDB.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub first: Duration,
    /// No wait is longer than this.
    pub max: Duration,
}

impl Backoff {
    /// The wait after the `failures`-th consecutive failure (1-based):
    /// `first × 2^(failures-1)`, capped at `max`.
    pub fn delay(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(31);
        self.first.saturating_mul(1 << exponent).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_first_wait_up_to_the_cap() {
        let backoff = Backoff {
            first: Duration::from_millis(500),
            max: Duration::from_secs(10),
        };
        let waits: Vec<u128> = (1..=7).map(|n| backoff.delay(n).as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
        assert_eq!(backoff.delay(0), Duration::from_millis(500));
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(10));
    }
}
