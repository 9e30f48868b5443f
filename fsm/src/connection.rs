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

/// A read-only look at one connection the machine tracks: its state and
/// the deadlines of its timers, for status output and for checking the
/// machine from outside (the fuzz target in `fsm/fuzz` checks that the hold
/// timer runs exactly when the negotiated hold time is not zero).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionView<'a> {
    pub id: ConnectionId,
    pub direction: Direction,
    /// Connect, OpenSent, OpenConfirm or Established.
    pub state: State,
    /// When the hold timer expires; `None` when it is not running.
    pub hold_timer: Option<Instant>,
    /// When the next KEEPALIVE is due; `None` when none is sent.
    pub keepalive_timer: Option<Instant>,
    /// What the OPENs agreed on, from OpenConfirm onwards.
    pub negotiated: Option<&'a Negotiated>,
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
    pub(crate) fn view(&self) -> ConnectionView<'_> {
        ConnectionView {
            id: self.id,
            direction: self.direction,
            state: self.state,
            hold_timer: self.hold,
            keepalive_timer: self.keepalive,
            negotiated: self.negotiated.as_ref(),
        }
    }

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
