//! What the operator sets for one session: the local timer parameters of
//! RFC 5880 §6.8.1.

use std::time::Duration;

/// The largest interval the 32-bit microsecond fields can carry (~71 min).
pub const MAX_INTERVAL: Duration = Duration::from_micros(u32::MAX as u64);

/// bfd.DesiredMinTxInterval, bfd.RequiredMinRxInterval and bfd.DetectMult
/// as configured. Built only through [`SessionConfig::new`], so every value
/// fits the wire and none is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionConfig {
    desired_min_tx: Duration,
    required_min_rx: Duration,
    detect_multiplier: u8,
}

/// A value [`SessionConfig::new`] refuses; the message states the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "BFD transmit interval {0:?} is out of range (1µs to {MAX_INTERVAL:?}, whole microseconds)"
    )]
    DesiredMinTx(Duration),
    #[error(
        "BFD receive interval {0:?} is out of range (1µs to {MAX_INTERVAL:?}, whole microseconds)"
    )]
    RequiredMinRx(Duration),
    #[error("BFD detect multiplier 0 is out of range (1 to 255)")]
    DetectMultiplierZero,
}

impl SessionConfig {
    /// Intervals are whole microseconds from 1 µs to [`MAX_INTERVAL`].
    ///
    /// RFC 5880 §6.8.1: DesiredMinTxInterval "MUST be initialized to a
    /// value of at least one second" applies to the value sent while not Up,
    /// which the session enforces itself (§6.8.3); the configured value is
    /// what it uses once Up. A RequiredMinRxInterval of zero ("do not send
    /// me packets") is refused: anyvip always wants to detect a dead peer.
    pub fn new(
        desired_min_tx: Duration,
        required_min_rx: Duration,
        detect_multiplier: u8,
    ) -> Result<SessionConfig, ConfigError> {
        if !wire_interval(desired_min_tx) {
            return Err(ConfigError::DesiredMinTx(desired_min_tx));
        }
        if !wire_interval(required_min_rx) {
            return Err(ConfigError::RequiredMinRx(required_min_rx));
        }
        if detect_multiplier == 0 {
            return Err(ConfigError::DetectMultiplierZero);
        }
        Ok(SessionConfig {
            desired_min_tx,
            required_min_rx,
            detect_multiplier,
        })
    }

    /// bfd.DesiredMinTxInterval once Up.
    pub fn desired_min_tx(&self) -> Duration {
        self.desired_min_tx
    }

    /// bfd.RequiredMinRxInterval.
    pub fn required_min_rx(&self) -> Duration {
        self.required_min_rx
    }

    /// bfd.DetectMult.
    pub fn detect_multiplier(&self) -> u8 {
        self.detect_multiplier
    }
}

fn wire_interval(interval: Duration) -> bool {
    interval >= Duration::from_micros(1)
        && interval <= MAX_INTERVAL
        && interval.subsec_nanos() % 1_000 == 0
}

/// An interval as the wire carries it. Values come from a
/// [`SessionConfig`] or from the wire, so they fit; saturate regardless.
pub(crate) fn to_micros(interval: Duration) -> u32 {
    u32::try_from(interval.as_micros()).unwrap_or(u32::MAX)
}

pub(crate) fn from_micros(micros: u32) -> Duration {
    Duration::from_micros(u64::from(micros))
}
