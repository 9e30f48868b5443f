//! Tests of the session state machine: no sockets, no sleeping; time is
//! `t0 + Duration`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod admin;
mod collision;
mod messages;
mod negotiation;
mod open_checks;
mod properties;
mod timers;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyvip_proto::{
    Asn, Capability, ErrorCode, Family, HoldTime, Message, Notification, Open, OptionalParameter,
};

use crate::{Action, ConnectionId, DownReason, Event, Fsm, Negotiated, Rng, SessionConfig, State};

pub(crate) const LOCAL_ASN: Asn = Asn(65001);
pub(crate) const PEER_ASN: Asn = Asn(65000);
/// Higher than [`PEER_ID`]: our outgoing connection wins collisions.
pub(crate) const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
pub(crate) const PEER_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// Always the same number: jitter is then an exact factor (0 gives 0.75).
#[derive(Debug, Clone)]
pub(crate) struct FixedRng(pub u32);

impl Rng for FixedRng {
    fn next_u32(&mut self) -> u32 {
        self.0
    }
}

pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(crate) fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// eBGP, both unicast families, hold time 90 s, retry 5 s .. 120 s.
pub(crate) fn config() -> SessionConfig {
    let mut config = SessionConfig::new(LOCAL_ASN, LOCAL_ID, PEER_ASN);
    config.families = vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST];
    config
}

pub(crate) fn hold(seconds: u16) -> HoldTime {
    HoldTime::new(seconds).unwrap()
}

/// What FRR or BIRD would send: both families, route refresh, four-octet AS.
pub(crate) fn peer_open() -> Open {
    Open::new(
        PEER_ASN,
        hold(90),
        PEER_ID,
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
        ],
    )
}

/// An OPEN from an RFC 4271 speaker without the four-octet AS capability.
pub(crate) fn two_octet_open(asn: u16, capabilities: Vec<Capability>) -> Open {
    let mut open = Open::new(Asn(u32::from(asn)), hold(90), PEER_ID, Vec::new());
    open.parameters = vec![OptionalParameter::Capabilities(capabilities)];
    open
}

/// One session under test, with its clock.
pub(crate) struct Session {
    pub(crate) fsm: Fsm<FixedRng>,
    pub(crate) t0: Instant,
    pub(crate) now: Instant,
}

impl Session {
    pub(crate) fn new(config: SessionConfig) -> Session {
        Session::with_rng(config, FixedRng(0))
    }

    pub(crate) fn with_rng(config: SessionConfig, rng: FixedRng) -> Session {
        let t0 = Instant::now();
        Session {
            fsm: Fsm::with_rng(config, t0, rng),
            t0,
            now: t0,
        }
    }

    /// Time since the test began.
    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    pub(crate) fn handle(&mut self, event: Event) -> Vec<Action> {
        self.fsm.handle(self.now, event)
    }

    pub(crate) fn advance(&mut self, by: Duration) -> Vec<Action> {
        self.now += by;
        self.fsm.handle_timeout(self.now)
    }

    /// Jump to the next deadline and fire it.
    pub(crate) fn advance_to_timeout(&mut self) -> Vec<Action> {
        self.now = self.fsm.poll_timeout().expect("a timer is running");
        self.fsm.handle_timeout(self.now)
    }

    pub(crate) fn receive(&mut self, connection: ConnectionId, message: Message) -> Vec<Action> {
        self.handle(Event::MessageReceived {
            connection,
            message,
        })
    }

    /// ManualStart, then the outgoing TCP connection comes up: OpenSent.
    pub(crate) fn connect(&mut self) -> ConnectionId {
        let actions = self.handle(Event::ManualStart);
        let id = connect_id(&actions);
        let actions = self.handle(Event::TcpConnected { connection: id });
        assert!(matches!(sent(&actions)[..], [Message::Open(_)]));
        assert_eq!(self.fsm.state(), State::OpenSent);
        id
    }

    /// Up to OpenConfirm with this OPEN from the peer.
    pub(crate) fn open_confirm(&mut self, open: Open) -> ConnectionId {
        let id = self.connect();
        let actions = self.receive(id, Message::Open(open));
        assert_eq!(sent(&actions), [&Message::Keepalive], "{actions:?}");
        assert_eq!(self.fsm.state(), State::OpenConfirm);
        id
    }

    /// All the way to Established; returns what was negotiated.
    pub(crate) fn establish(&mut self, open: Open) -> (ConnectionId, Negotiated) {
        let id = self.open_confirm(open);
        let actions = self.receive(id, Message::Keepalive);
        assert_eq!(self.fsm.state(), State::Established);
        let negotiated = actions
            .iter()
            .find_map(|a| match a {
                Action::Established {
                    connection,
                    negotiated,
                } if *connection == id => Some(negotiated.clone()),
                _ => None,
            })
            .expect("an Established action");
        (id, negotiated)
    }

    /// Connect and hand over the peer's OPEN; the actions that follow.
    pub(crate) fn offer(&mut self, open: Open) -> (ConnectionId, Vec<Action>) {
        let id = self.connect();
        let actions = self.receive(id, Message::Open(open));
        (id, actions)
    }
}

pub(crate) fn connect_id(actions: &[Action]) -> ConnectionId {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Connect { connection } => Some(*connection),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Connect in {actions:?}"))
}

pub(crate) fn accept_id(actions: &[Action]) -> ConnectionId {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Accept { connection } => Some(*connection),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Accept in {actions:?}"))
}

/// Every message sent, in order.
pub(crate) fn sent(actions: &[Action]) -> Vec<&Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { message, .. } => Some(message),
            _ => None,
        })
        .collect()
}

/// Messages sent on one connection.
pub(crate) fn sent_on(actions: &[Action], id: ConnectionId) -> Vec<&Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                connection,
                message,
            } if *connection == id => Some(message),
            _ => None,
        })
        .collect()
}

/// The one NOTIFICATION sent.
pub(crate) fn notification(actions: &[Action]) -> &Notification {
    let sent: Vec<&Notification> = sent(actions)
        .into_iter()
        .filter_map(|m| match m {
            Message::Notification(n) => Some(n),
            _ => None,
        })
        .collect();
    match sent[..] {
        [n] => n,
        _ => panic!("expected one NOTIFICATION in {actions:?}"),
    }
}

/// (code, subcode) of the one NOTIFICATION sent.
pub(crate) fn error(actions: &[Action]) -> (u8, u8) {
    let n = notification(actions);
    (u8::from(n.code), n.subcode)
}

pub(crate) fn closes(actions: &[Action], id: ConnectionId) -> bool {
    actions
        .iter()
        .any(|a| *a == Action::Close { connection: id })
}

pub(crate) fn down_reason(actions: &[Action]) -> Option<&DownReason> {
    actions.iter().find_map(|a| match a {
        Action::Down { reason } => Some(reason),
        _ => None,
    })
}

/// The OPEN error the session answers `open` with, and checks that it
/// closed the connection and went to Idle.
pub(crate) fn rejected_with(open: Open) -> (u8, u8) {
    let mut s = Session::new(config());
    let (id, actions) = s.offer(open);
    assert!(closes(&actions, id), "{actions:?}");
    assert_eq!(s.fsm.state(), State::Idle);
    let n = notification(&actions);
    assert_eq!(n.code, ErrorCode::Open);
    error(&actions)
}
