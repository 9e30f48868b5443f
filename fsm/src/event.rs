//! What happens to a session (RFC 4271 §8.1 event names in the docs).

use anyvip_proto::{DecodeError, Message};

use crate::connection::ConnectionId;

/// Input to [`Fsm::handle`](crate::Fsm::handle).
///
/// Connection events carry the [`ConnectionId`] the machine issued; an id
/// it no longer tracks is stale and the event is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Event 1 ManualStart (Event 4 ManualStart_with_PassiveTcpEstablishment
    /// when the session is configured passive). An operator start: the
    /// failure backoff is reset and a holding-off session starts at once.
    ManualStart,
    /// Event 2 ManualStop. Every connection that has sent its OPEN gets a
    /// Cease / Administrative Shutdown (6/2) carrying the RFC 9003 shutdown
    /// communication, if any (cut at 255 octets on a character boundary).
    ManualStop { shutdown_message: Option<String> },
    /// Event 8 AutomaticStop, for a reason outside BGP (RFC 5882 §4.3: BFD
    /// saw the path go down): every connection that has sent its OPEN gets
    /// a Cease with `subcode` (10, BFD Down, RFC 9384), every connection is
    /// closed, and the session goes to Idle and reconnects after the
    /// ConnectRetry backoff, as after any other failure.
    CeaseNow { subcode: u8 },
    /// Event 3 AutomaticStart (Event 5 when passive): start if stopped;
    /// unlike ManualStart it respects a running backoff.
    AutomaticStart,
    /// Event 16 Tcp_CR_Acked: the outgoing connection asked for with
    /// [`Action::Connect`](crate::Action::Connect) is up.
    TcpConnected { connection: ConnectionId },
    /// Event 14 TcpConnection_Valid then Event 17 TcpConnectionConfirmed:
    /// the listener accepted a connection from the peer's address. Answered
    /// with [`Action::Accept`](crate::Action::Accept) (keep it under the
    /// given id) or [`Action::Reject`](crate::Action::Reject).
    TcpAccepted,
    /// Event 18 TcpConnectionFails: the connect attempt failed, or the
    /// connection was closed or reset. The caller has already let go of it.
    TcpConnectionFails { connection: ConnectionId },
    /// Events 19-27: BGPOpen, NotifMsg, KeepAliveMsg, UpdateMsg and
    /// ROUTE-REFRESH, decoded.
    MessageReceived {
        connection: ConnectionId,
        message: Message,
    },
    /// Events 21, 22 and 28 (BGPHeaderErr, BGPOpenMsgErr, UpdateMsgErr):
    /// the bytes could not be decoded; its NOTIFICATION is sent and the
    /// connection closed.
    DecodeError {
        connection: ConnectionId,
        error: DecodeError,
    },
    /// Events 9-11 (ConnectRetryTimer_Expires, HoldTimer_Expires,
    /// KeepaliveTimer_Expires): the deadline from
    /// [`Fsm::poll_timeout`](crate::Fsm::poll_timeout) has passed. Timers
    /// that are due fire before any event is handled, so this event only
    /// exists to say "look at the clock".
    Timeout,
}
