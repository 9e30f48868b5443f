//! `[drain]`: how a planned withdrawal happens.

use std::time::Duration;

use super::schema;
use super::values::{duration, in_range};
use super::vip::MAX_PREPEND;

/// `[drain]`: how a planned withdrawal happens (RFC 8326).
#[derive(Debug, Clone, PartialEq)]
pub struct Drain {
    /// Between re-announcing with GRACEFUL_SHUTDOWN and withdrawing: long
    /// enough for routers to move new flows elsewhere and for requests in
    /// flight to finish.
    pub delay: Duration,
    /// Extra copies of our AS while draining (eBGP), for routers that do
    /// not act on GRACEFUL_SHUTDOWN.
    pub prepend: u8,
    /// MED while draining, for the same routers.
    pub med: Option<u32>,
}

/// Default drain delay: a few of the routers' keepalive intervals.
pub const DEFAULT_DRAIN_DELAY: Duration = Duration::from_secs(5);
/// Longer than any router needs to move new flows away; a stop waits this
/// long, so the unit's TimeoutStopSec= has to be raised to match.
pub const MAX_DRAIN_DELAY: Duration = Duration::from_secs(10 * 60);

impl super::Validator<'_> {
    pub(super) fn drain(&mut self, d: Option<schema::Drain>) -> Drain {
        let Some(d) = d else {
            return Drain {
                delay: DEFAULT_DRAIN_DELAY,
                prepend: 0,
                med: None,
            };
        };
        let delay = match d.delay.as_deref() {
            None => DEFAULT_DRAIN_DELAY,
            Some(t) => self
                .check("drain.delay", duration(t, Duration::ZERO, MAX_DRAIN_DELAY))
                .unwrap_or(DEFAULT_DRAIN_DELAY),
        };
        let prepend = d
            .prepend
            .and_then(|p| self.check("drain.prepend", in_range(p, 0, MAX_PREPEND)))
            .unwrap_or(0);
        Drain {
            delay,
            prepend,
            med: d.med,
        }
    }
}
