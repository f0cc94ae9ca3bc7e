//! When to try a failed write again: exponential backoff with full jitter,
//! bounded by the first delay, the cap, and the attempts per batch.

use std::time::Duration;

use crate::backoff::Backoff;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// `INFLUXDB_RETRY_DELAY`: the base of the exponential.
    pub first_delay: Duration,
    /// `INFLUXDB_RETRY_MAX_DELAY`: no wait is longer than this.
    pub max_delay: Duration,
    /// `INFLUXDB_RETRY_MAX`: attempts at the backoff schedule before every
    /// further attempt waits the full cap.
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// The upper bound of the wait after the `failures`-th consecutive
    /// failure (1-based): `first × 2^(failures-1)`, capped; the cap itself
    /// once the attempts are used up.
    pub fn ceiling(&self, failures: u32) -> Duration {
        if failures > self.max_attempts {
            return self.max_delay;
        }
        Backoff {
            first: self.first_delay,
            max: self.max_delay,
        }
        .delay(failures)
    }

    /// The wait before the next attempt: uniformly random up to the ceiling
    /// ("full jitter", so that many writers do not retry in lockstep), but
    /// never less than a tenth of it, to keep a floor under tight loops.
    pub fn delay(&self, failures: u32, unit_random: f64) -> Duration {
        let ceiling = self.ceiling(failures);
        ceiling.mul_f64(unit_random.clamp(0.1, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_attempts: 5,
        }
    }

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let p = policy();
        let ceilings: Vec<u128> = (1..=6).map(|n| p.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn after_max_attempts_every_wait_is_the_cap() {
        let p = RetryPolicy {
            max_attempts: 2,
            ..policy()
        };
        assert_eq!(p.ceiling(3), Duration::from_millis(1000));
        assert_eq!(p.ceiling(1000), Duration::from_millis(1000));
    }

    #[test]
    fn jitter_stays_within_a_tenth_and_the_ceiling() {
        let p = policy();
        assert_eq!(p.delay(3, 0.0), Duration::from_millis(40));
        assert_eq!(p.delay(3, 1.0), Duration::from_millis(400));
    }
}
