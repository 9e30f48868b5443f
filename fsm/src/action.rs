//! What the state machine asks its caller to do, and what a session
//! negotiated.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use anyvip_proto::{Asn, Capability, Context, Family, Message, Notification, RouteRefresh, Update};

use crate::connection::ConnectionId;
use crate::state::State;

/// Output of [`Fsm::handle`](crate::Fsm::handle), to be carried out in
/// order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start an outgoing TCP connection to the peer and report the result
    /// as `TcpConnected` or `TcpConnectionFails` with this id.
    Connect { connection: ConnectionId },
    /// Keep the connection just reported with `TcpAccepted` under this id.
    Accept { connection: ConnectionId },
    /// Close the connection just reported with `TcpAccepted` without
    /// sending anything (RFC 4271 §8.2.2: Idle "refuses all incoming BGP
    /// connections"; a second incoming connection is refused too).
    Reject,
    /// Write this message on the connection.
    Send {
        connection: ConnectionId,
        message: Message,
    },
    /// Drop the TCP connection once what was sent on it is flushed.
    Close { connection: ConnectionId },
    /// The session state changed; `from` is always the previously reported
    /// state.
    StateChanged { from: State, to: State },
    /// The session reached Established on `connection`: UPDATEs go there,
    /// encoded with `negotiated.context`.
    Established {
        connection: ConnectionId,
        negotiated: Negotiated,
    },
    /// The session fell back from OpenSent, OpenConfirm or Established
    /// (emitted right before that `StateChanged`), and why.
    Down { reason: DownReason },
    /// An UPDATE arrived in Established (validated by the codec per RFC
    /// 7606; what to do with it is the caller's business).
    UpdateReceived(Update),
    /// The peer asked for our routes again (RFC 2918 §3), for a family we
    /// negotiated; answer by re-sending what we announce.
    RouteRefreshRequested(RouteRefresh),
}

/// Why a session went down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// We sent this NOTIFICATION: the peer's OPEN was rejected, its bytes
    /// did not decode, or a message was unexpected (RFC 6608).
    NotificationSent(Notification),
    /// The peer sent this NOTIFICATION (never answered, RFC 4271 §6.4).
    NotificationReceived(Notification),
    /// Nothing heard for the hold time; 4/0 was sent (RFC 4271 §6.5).
    HoldTimerExpired,
    /// The TCP connection closed or failed without a NOTIFICATION.
    TcpClosed,
    /// ManualStop: Cease / Administrative Shutdown was sent.
    AdminStop,
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::NotificationSent(n) => write!(f, "sent {n}"),
            DownReason::NotificationReceived(n) => write!(f, "received {n}"),
            DownReason::HoldTimerExpired => f.write_str("hold timer expired"),
            DownReason::TcpClosed => f.write_str("TCP connection closed"),
            DownReason::AdminStop => f.write_str("administratively stopped"),
        }
    }
}

/// What the two OPENs of a session agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The peer's real AS (from the four-octet AS capability when sent).
    pub peer_asn: Asn,
    pub peer_router_id: Ipv4Addr,
    /// The smaller of both hold times (RFC 4271 §4.2); `None` when either
    /// side offered zero: no hold timer, no keepalives.
    pub hold_time: Option<Duration>,
    /// A third of the hold time, or less if configured; `None` with no
    /// hold time.
    pub keepalive: Option<Duration>,
    /// How to encode and decode this session's messages: four-octet AS
    /// only when both sides advertised it (RFC 6793 §4). Add-path and
    /// extended messages are never offered, so they stay off.
    pub context: Context,
    /// Families both sides speak (RFC 4760 §8), in our configured order.
    pub families: Vec<Family>,
    /// The peer advertised route refresh (RFC 2918 §2): we may send it
    /// ROUTE-REFRESH.
    pub peer_route_refresh: bool,
    /// Every capability the peer advertised, for status output.
    pub peer_capabilities: Vec<Capability>,
}
