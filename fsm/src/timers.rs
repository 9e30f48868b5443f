//! Timer values and jitter (RFC 4271 §10).
//!
//! The state machine keeps every timer as a deadline (`Option<Instant>`);
//! `None` is "not running", never "expire now". Randomness comes from an
//! injected [`Rng`] so tests choose it.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

/// RFC 4271 §8.2.2 (Connect/Active, on the TCP connection succeeding):
/// "sets the HoldTimer to a large value ... A HoldTimer value of 4 minutes
/// is suggested." Used until the peer's OPEN tells us the real hold time.
pub const OPEN_SENT_HOLD_TIME: Duration = Duration::from_secs(240);

/// The shortest timer ever armed: a deadline always lies in the future.
const MIN_TIMER: Duration = Duration::from_millis(1);

/// A source of random numbers for jitter.
pub trait Rng {
    fn next_u32(&mut self) -> u32;
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a tiny, fast, deterministic
/// generator. Plenty for spreading timers; not for anything secret.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// Seeded from the standard library's per-process random hash keys, so
    /// that speakers started at the same moment do not retry in lockstep.
    pub fn from_entropy() -> SplitMix64 {
        SplitMix64::new(RandomState::new().build_hasher().finish())
    }
}

impl Rng for SplitMix64 {
    fn next_u32(&mut self) -> u32 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        u32::try_from(z >> 32).unwrap_or(u32::MAX)
    }
}

/// RFC 4271 §10: "the base value for each jittered timer SHOULD be
/// multiplied by a random factor uniformly distributed in the range from
/// 0.75 to 1.0". Computed in integers: factor = (3·2³² + r) / 2³⁴ for a
/// random 32-bit r, so it lies in [0.75, 1.0).
pub fn jitter(base: Duration, rng: &mut impl Rng) -> Duration {
    let r = u128::from(rng.next_u32());
    let scaled = base.as_nanos().saturating_mul((3 << 32) + r) >> 34;
    Duration::from_nanos(u64::try_from(scaled).unwrap_or(u64::MAX))
}

/// `now + after`, at least [`MIN_TIMER`] ahead; `None` (never) if the sum
/// does not fit in an `Instant`.
pub(crate) fn deadline(now: Instant, after: Duration) -> Option<Instant> {
    now.checked_add(after.max(MIN_TIMER))
}
