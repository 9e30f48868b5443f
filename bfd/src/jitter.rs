//! Transmit jitter (RFC 5880 §6.8.7) from an injected random source.

use std::time::Duration;

/// A source of random numbers for jitter. Closures `FnMut() -> u32`
/// qualify, so the daemon can hand in whatever generator it already has
/// (for instance `move || split_mix.next_u32()` over `anyvip_fsm::SplitMix64`;
/// `Box<dyn FnMut() -> u32 + Send>` gives a type to name in a struct) and
/// tests a seeded one.
pub trait Rng {
    fn next_u32(&mut self) -> u32;
}

impl<F: FnMut() -> u32> Rng for F {
    fn next_u32(&mut self) -> u32 {
        self()
    }
}

/// RFC 5880 §6.8.7: "The periodic transmission of BFD Control packets MUST
/// be jittered on a per-packet basis by up to 25%, that is, the interval
/// MUST be reduced by a random value of 0 to 25%" and "If bfd.DetectMult is
/// equal to 1, the interval between transmitted BFD Control packets MUST be
/// no more than 90% of the negotiated transmission interval, and MUST be no
/// less than 75%". So the factor lies in [0.75, 1.0), or [0.75, 0.90) with
/// a multiplier of 1, computed in integers from a random 32-bit value.
pub fn jitter(interval: Duration, detect_multiplier: u8, rng: &mut impl Rng) -> Duration {
    // factor = (75 + span * r / 2^32) / 100, span in percent.
    let span: u128 = if detect_multiplier == 1 { 15 } else { 25 };
    let r = u128::from(rng.next_u32());
    let numerator = (75 << 32) + span * r;
    let nanos = interval.as_nanos().saturating_mul(numerator) / (100 << 32);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}
