//! Every probe's latency, kept as a histogram with fixed buckets so the
//! metrics endpoint can export it exactly (a scrape sees every probe since
//! the check started, not just the last one).

use std::time::Duration;

/// Upper bounds in seconds; a last, implicit bucket is +Inf. From a local
/// apiserver's sub-millisecond answers to a probe that times out.
pub const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LatencyHistogram {
    /// Observations per bucket (not cumulative); the last is +Inf.
    pub counts: [u64; BUCKETS.len() + 1],
    pub sum_seconds: f64,
}

impl LatencyHistogram {
    pub fn observe(&mut self, latency: Duration) {
        let s = latency.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i] += 1;
        self.sum_seconds += s;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// (upper bound, observations in that bucket alone), +Inf last.
    pub fn buckets(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.counts.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let mut h = LatencyHistogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(1)); // on the bound: le="0.001"
        h.observe(Duration::from_millis(30));
        h.observe(Duration::from_secs(11));
        assert_eq!(h.count(), 4);
        let b: Vec<(f64, u64)> = h.buckets().filter(|(_, n)| *n > 0).collect();
        assert_eq!(b, vec![(0.001, 2), (0.05, 1), (f64::INFINITY, 1)]);
        assert!((h.sum_seconds - 11.0313).abs() < 1e-9);
    }
}
