//! `bfd` in a `[[peer]]`: Bidirectional Forwarding Detection (RFC 5880)
//! for that session, `true` for the defaults or a table of timers.

use std::time::Duration;

use super::schema;
use super::values::{duration, in_range};

/// `bfd = true`: 300 ms × 3, FRR's bfdd defaults (also kube-vip's and
/// MetalLB's). A router with a plain `neighbor X bfd` negotiates exactly
/// these, so a dead node leaves the ECMP group within 900 ms, a tenth of
/// the 9 s default hold time, while three packets in a row have to go
/// missing before a busy node is declared dead.
pub const DEFAULT_BFD_INTERVAL: Duration = Duration::from_millis(300);
pub const DEFAULT_BFD_MULTIPLIER: u8 = 3;
/// The floor: packets come from the daemon's single-threaded event loop
/// (design invariant 4), which also runs the health checks and the BGP
/// sessions; below 50 ms a short scheduling stall on a loaded node would be
/// a false failure. Routers' hardware BFD goes lower, anyvip does not.
pub const MIN_BFD_INTERVAL: Duration = Duration::from_millis(50);
/// Above this BFD detects nothing the BGP hold time would not.
pub const MAX_BFD_INTERVAL: Duration = Duration::from_secs(10);

/// One peer's BFD session settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bfd {
    /// Both bfd.DesiredMinTxInterval and bfd.RequiredMinRxInterval (RFC
    /// 5880 §6.8.1): what we send at and what we ask the router to send at.
    pub interval: Duration,
    /// bfd.DetectMult: the router declares us dead after this many
    /// intervals without a packet.
    pub multiplier: u8,
    /// RFC 5883 multihop (UDP 4784) rather than RFC 5881 single hop (UDP
    /// 3784, TTL 255 both ways): set when the peer has `multihop`.
    pub multihop: bool,
}

impl Bfd {
    /// The session parameters for `anyvip-bfd`; `None` cannot happen for
    /// validated values (both bounds are within what the wire carries).
    pub fn session_config(&self) -> Option<anyvip_bfd::SessionConfig> {
        anyvip_bfd::SessionConfig::new(self.interval, self.interval, self.multiplier).ok()
    }
}

impl super::Validator<'_> {
    pub(super) fn bfd(&mut self, key: &str, b: Option<schema::Bfd>, multihop: bool) -> Option<Bfd> {
        let defaults = Bfd {
            interval: DEFAULT_BFD_INTERVAL,
            multiplier: DEFAULT_BFD_MULTIPLIER,
            multihop,
        };
        match b? {
            schema::Bfd::On(false) => None,
            schema::Bfd::On(true) => Some(defaults),
            schema::Bfd::Timers(t) => {
                let interval = match t.interval.as_deref() {
                    None => DEFAULT_BFD_INTERVAL,
                    Some(i) => self
                        .check(
                            &format!("{key}.interval"),
                            duration(i, MIN_BFD_INTERVAL, MAX_BFD_INTERVAL),
                        )
                        .unwrap_or(DEFAULT_BFD_INTERVAL),
                };
                let multiplier = match t.multiplier {
                    None => DEFAULT_BFD_MULTIPLIER,
                    Some(m) => self
                        .check(&format!("{key}.multiplier"), in_range(m, 1, 255))
                        .and_then(|m| u8::try_from(m).ok())
                        .unwrap_or(DEFAULT_BFD_MULTIPLIER),
                };
                Some(Bfd {
                    interval,
                    multiplier,
                    multihop,
                })
            }
        }
    }
}
