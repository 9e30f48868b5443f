//! `[drain]`: how a planned withdrawal happens.

use std::time::Duration;

use super::{duration, schema};

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
                .check("drain.delay", duration(t))
                .unwrap_or(DEFAULT_DRAIN_DELAY),
        };
        Drain {
            delay,
            prepend: d.prepend.unwrap_or(0),
            med: d.med,
        }
    }
}
