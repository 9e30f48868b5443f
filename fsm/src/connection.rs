//! One TCP connection to the peer as the state machine tracks it.

use std::fmt;
use std::time::Instant;

use crate::action::Negotiated;
use crate::state::State;

/// Names one TCP connection. Issued by the state machine (in
/// [`Action::Connect`](crate::Action::Connect) and
/// [`Action::Accept`](crate::Action::Accept)) and never reused, so an event
/// about a connection the machine has already dropped is recognised as
/// stale and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub(crate) u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Who opened the TCP connection (RFC 4271 §8: "outgoing" is the one the
/// local system initiated). Collision resolution keeps one by direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Outgoing,
    Incoming,
}

/// Per-connection state: RFC 4271 runs one FSM per connection; this is
/// that FSM's state and timers.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub(crate) id: ConnectionId,
    pub(crate) direction: Direction,
    /// Connect, OpenSent, OpenConfirm or Established.
    pub(crate) state: State,
    pub(crate) hold: Option<Instant>,
    pub(crate) keepalive: Option<Instant>,
    /// Set when the peer's OPEN was accepted (OpenConfirm onwards).
    pub(crate) negotiated: Option<Negotiated>,
}

impl Connection {
    pub(crate) fn new(id: ConnectionId, direction: Direction, state: State) -> Connection {
        Connection {
            id,
            direction,
            state,
            hold: None,
            keepalive: None,
            negotiated: None,
        }
    }
}
