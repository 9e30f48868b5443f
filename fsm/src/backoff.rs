//! Exponential backoff of the ConnectRetry timer.
//!
//! RFC 4271 counts failures in ConnectRetryCounter and §8.1.1 allows
//! damping peer oscillations; this is that, made concrete: the interval is
//! `base · 2^(failures − 1)`, capped, then jittered by the caller. A peer
//! that rejects every OPEN is retried after base, 2·base, 4·base, ... and
//! never in a tight loop.

use std::time::Duration;

/// Shortest configurable base: a zero interval would be a hot loop.
const MIN_BASE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
    /// Consecutive failures since the session was last Established (or
    /// manually started or stopped).
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(base: Duration, max: Duration) -> Backoff {
        let base = base.max(MIN_BASE);
        Backoff {
            base,
            max: max.max(base),
            failures: 0,
        }
    }

    /// The un-jittered interval to wait now: `base` until the second
    /// failure, then doubling, never above `max`.
    pub(crate) fn interval(&self) -> Duration {
        let doublings = self.failures.saturating_sub(1).min(31);
        self.base.saturating_mul(1u32 << doublings).min(self.max)
    }

    pub(crate) fn failed(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }

    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_doubles_per_failure_and_stops_at_the_ceiling() {
        let mut b = Backoff::new(Duration::from_secs(5), Duration::from_secs(60));
        let mut seen = vec![b.interval()];
        for _ in 0..6 {
            b.failed();
            seen.push(b.interval());
        }
        let secs: Vec<u64> = seen.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [5, 5, 10, 20, 40, 60, 60]);
        b.reset();
        assert_eq!(b.interval(), Duration::from_secs(5));
    }

    #[test]
    fn a_zero_base_is_raised_to_one_second() {
        let b = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(b.interval(), Duration::from_secs(1));
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::MAX);
        for _ in 0..100 {
            b.failed();
        }
        assert_eq!(b.interval(), Duration::from_secs(1u64 << 31));
    }
}
