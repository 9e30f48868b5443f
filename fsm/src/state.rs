//! The six session states (RFC 4271 §8.2.2) and the RFC 6608 table of
//! FSM error subcodes keyed by them.

use std::fmt;

use anyvip_proto::notification::fsm;

/// A BGP session state (RFC 4271 §8.2.2).
///
/// Ordered by progress, so "the session went backwards" is `to < from`.
/// A single connection is only ever in Connect, OpenSent, OpenConfirm or
/// Established; Idle and Active describe a session with no connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Refusing connections: not started, stopped, or holding off after an
    /// error until the ConnectRetry deadline.
    Idle,
    /// An outgoing TCP connection is being set up.
    Connect,
    /// Waiting for the peer to connect (passive peer), or for the
    /// ConnectRetry deadline before connecting again.
    Active,
    /// Our OPEN is sent; waiting for the peer's.
    OpenSent,
    /// OPENs exchanged and accepted; waiting for the peer's KEEPALIVE.
    OpenConfirm,
    /// UPDATEs may flow.
    Established,
}

impl State {
    /// RFC 6608 §3: the Finite State Machine Error subcode for a message
    /// that is unexpected in this state. One table, keyed by state; the
    /// subcode is never derived from an internal index. `None` for states
    /// in which no BGP message can arrive.
    pub fn unexpected_message_subcode(self) -> Option<u8> {
        match self {
            State::OpenSent => Some(fsm::UNEXPECTED_MESSAGE_IN_OPEN_SENT),
            State::OpenConfirm => Some(fsm::UNEXPECTED_MESSAGE_IN_OPEN_CONFIRM),
            State::Established => Some(fsm::UNEXPECTED_MESSAGE_IN_ESTABLISHED),
            State::Idle | State::Connect | State::Active => None,
        }
    }

    /// The name RFC 4271 uses.
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
