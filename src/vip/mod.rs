//! A VIP's life on this node, owned in one place (design sections 2 and 6):
//! its health (from the checks' current state), the operator's drain, how
//! it is announced, and whether its address belongs on the node.
//!
//! - [`Lifecycle`] holds every VIP's record and decides; it does no I/O and
//!   never waits, so the main loop that drives it can always withdraw at
//!   once (design invariant 2).
//! - [`Announcer`] publishes the routes every peer task sends.
//! - The data plane ([`crate::dataplane`]) is told which addresses belong
//!   on the node and reports which are there; the lifecycle announces a VIP
//!   only once its address is there, and takes an address away only after
//!   every peer has sent the withdrawal.

mod announcer;
mod lifecycle;

pub use announcer::{Announcer, Published};
pub use lifecycle::Lifecycle;

/// How a VIP is announced right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Withdrawn,
    Announced,
    /// Still announced, but made unattractive (RFC 8326 GRACEFUL_SHUTDOWN,
    /// the drain prepends and MED) so routers move flows elsewhere before
    /// the withdrawal.
    Draining,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Withdrawn => "withdrawn",
            Mode::Announced => "announced",
            Mode::Draining => "draining",
        }
    }
}
