//! The session FSM fed an event sequence read from arbitrary bytes, with its
//! invariants checked after every step (a failed check panics).
//!
//! Shared by the cargo-fuzz target (`fuzz_targets/session.rs`) and the
//! corpus replay test (`../tests/fuzz_corpus.rs`, stable Rust), so both
//! check the same things: `#[path]`-included, it depends only on
//! anyvip-fsm and anyvip-proto.
//!
//! Input: a header, then steps until the bytes run out.
//! - header octet 0: bit 0 passive, bits 1-3 our hold time (from
//!   [`HOLD_TIMES`]), bit 4 route refresh off, bit 5 IPv6 unicast too;
//!   octets 1-8: the jitter seed.
//! - each step: an opcode octet (taken modulo the number of steps), then
//!   its operands (see [`Reader::step`]).
//!
//! Invariants, after every step:
//! - `handle` never panics; the reported state is the machine's state and
//!   every `StateChanged` starts from the previous one;
//! - never Established on a connection that has not received an OPEN and
//!   then a KEEPALIVE (RFC 4271 §8.2.2);
//! - the hold timer of an Established connection runs iff the negotiated
//!   hold time is not zero, and expires no later than that hold time from
//!   now (RFC 4271 §4.2, §6.5); in OpenSent and OpenConfirm it always runs
//!   (the 240 s OpenSent value, §8.2.2, kept until the KEEPALIVE when the
//!   hold time is zero); a connection in Connect has none;
//! - the keepalive timer runs iff the negotiated keepalive does;
//! - a NOTIFICATION received is never answered with one (RFC 4271 §6.4),
//!   a NOTIFICATION sent is followed by the close, at most one per
//!   connection, and nothing is sent on a closed connection;
//! - connection ids are never reused, at most one connection per direction
//!   and at most one past OpenSent, none while Idle;
//! - every deadline lies after now.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyvip_fsm::{Action, ConnectionId, Direction, Event, Fsm, SessionConfig, SplitMix64, State};
use anyvip_proto::{
    Asn, Capability, Context, ErrorCode, Family, HoldTime, Message, Notification, Open,
    OptionalParameter, RouteRefresh, Update,
};
use bytes::Bytes;

pub const LOCAL_ASN: Asn = Asn(65001);
pub const PEER_ASN: Asn = Asn(65000);
pub const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
/// Seconds we offer; 0 turns the hold timer off.
pub const HOLD_TIMES: [u16; 8] = [0, 3, 4, 9, 30, 90, 240, 65535];
/// Events per input: enough for many sessions, bounded so one input stays
/// fast.
const MAX_STEPS: usize = 4096;

/// What one input did, for tests that check the harness gets somewhere.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub steps: usize,
    /// How often the session reached Established.
    pub established: usize,
    /// NOTIFICATIONs received on a live connection.
    pub notifications_received: usize,
}

/// Run one input; panics when an invariant does not hold.
pub fn run(data: &[u8]) -> Outcome {
    let mut r = Reader { data };
    let flags = r.byte();
    let seed = u64::from_le_bytes(r.array());
    let mut config = SessionConfig::new(LOCAL_ASN, LOCAL_ID, PEER_ASN);
    config.passive = flags & 0x01 != 0;
    let hold = HOLD_TIMES
        .get(usize::from((flags >> 1) & 0x07))
        .copied()
        .unwrap_or(90);
    config.hold_time = HoldTime::new(hold).unwrap_or(HoldTime::DISABLED);
    config.route_refresh = flags & 0x10 == 0;
    if flags & 0x20 != 0 {
        config.families = vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST];
    }
    let t0 = Instant::now();
    let mut checker = Checker {
        fsm: Fsm::with_rng(config, t0, SplitMix64::new(seed)),
        now: t0,
        ids: Vec::new(),
        seen: HashMap::new(),
        state: State::Idle,
        outcome: Outcome::default(),
    };
    for _ in 0..MAX_STEPS {
        if r.data.is_empty() {
            break;
        }
        let step = r.step();
        checker.step(step);
        checker.outcome.steps += 1;
    }
    checker.outcome
}

/// One thing that happens to the session.
#[derive(Debug)]
enum Step {
    /// Let this much time pass and fire what is due.
    Wait(Duration),
    Start,
    AutoStart,
    Stop(Option<String>),
    Cease(u8),
    Accept,
    /// Connection events name a connection by a selector octet (see
    /// [`Checker::pick`]).
    Connected(u8),
    Fails(u8),
    Receive(u8, Message),
    /// Raw bytes decoded as the session's reader would: a message or a
    /// decode error.
    Raw(u8, Vec<u8>),
    /// What a well-behaved peer sends next on the connection (TCP up in
    /// Connect, its OPEN in OpenSent, a KEEPALIVE later), so that runs get
    /// to Established often.
    Cooperate(u8, u16),
}

struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    /// The next octet; 0 once the input is used up.
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        for b in &mut out {
            *b = self.byte();
        }
        out
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.array())
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head.to_vec()
    }

    fn step(&mut self) -> Step {
        match self.byte() % 16 {
            0 | 1 => {
                // Milliseconds, seconds or tens of seconds: keepalives,
                // hold timers and the ConnectRetry backoff all fire.
                let n = u64::from(self.byte());
                Step::Wait(match self.byte() % 3 {
                    0 => Duration::from_millis(n),
                    1 => Duration::from_secs(n),
                    _ => Duration::from_secs(n * 10),
                })
            }
            2 => Step::Start,
            3 => Step::AutoStart,
            4 => {
                let n = usize::from(self.byte());
                let text = String::from_utf8_lossy(&self.bytes(n)).into_owned();
                Step::Stop((n > 0).then_some(text))
            }
            5 => Step::Cease(self.byte()),
            6 => Step::Accept,
            7 => Step::Connected(self.byte()),
            8 => Step::Fails(self.byte()),
            9 | 10 => {
                let who = self.byte();
                Step::Receive(who, self.message())
            }
            11 => {
                let who = self.byte();
                let n = usize::from(self.u16());
                Step::Raw(who, self.bytes(n))
            }
            _ => {
                let who = self.byte();
                Step::Cooperate(who, self.u16())
            }
        }
    }

    /// A message built from a few octets: mostly plausible OPENs,
    /// KEEPALIVEs and NOTIFICATIONs, the other types too.
    fn message(&mut self) -> Message {
        match self.byte() % 8 {
            0..=2 => Message::Open(self.open()),
            3 | 4 => Message::Keepalive,
            5 => {
                let code = self.byte();
                let subcode = self.byte();
                let n = usize::from(self.byte() % 32);
                let data = Bytes::from(self.bytes(n));
                let code = ErrorCode::from(code);
                Message::Notification(Notification::new(code, subcode, data))
            }
            6 => Message::Update(Update::default()),
            _ => {
                let family = if self.byte() & 1 == 0 {
                    Family::IPV4_UNICAST
                } else {
                    Family::IPV6_UNICAST
                };
                Message::RouteRefresh(RouteRefresh::new(family))
            }
        }
    }

    /// An OPEN whose fields come from the input, biased towards ones the
    /// session accepts.
    fn open(&mut self) -> Open {
        let shape = self.byte();
        let hold = self.u16();
        let id_choice = self.byte();
        let asn = match shape & 0x03 {
            0 | 1 => PEER_ASN,
            2 => LOCAL_ASN,
            _ => Asn(u32::from_be_bytes(self.array())),
        };
        let bgp_identifier = match id_choice % 4 {
            // Lower and higher than ours: both collision outcomes.
            0 => Ipv4Addr::new(192, 0, 2, 1),
            1 => Ipv4Addr::new(203, 0, 113, 9),
            2 => LOCAL_ID,
            _ => Ipv4Addr::from(self.array::<4>()),
        };
        let mut capabilities = Vec::new();
        if shape & 0x04 == 0 {
            capabilities.push(Capability::Multiprotocol(Family::IPV4_UNICAST));
        }
        if shape & 0x08 != 0 {
            capabilities.push(Capability::Multiprotocol(Family::IPV6_UNICAST));
        }
        if shape & 0x10 != 0 {
            capabilities.push(Capability::RouteRefresh);
        }
        let hold_time = HoldTime::new(hold).unwrap_or(HoldTime::DISABLED);
        let mut open = Open::new(asn, hold_time, bgp_identifier, capabilities);
        // As sent, also the values `HoldTime` refuses (1 and 2, RFC 4271
        // §6.2), and sometimes no four-octet AS capability at all.
        open.hold_time = hold;
        if shape & 0x20 != 0 {
            for p in &mut open.parameters {
                if let OptionalParameter::Capabilities(cs) = p {
                    cs.retain(|c| !matches!(c, Capability::FourOctetAs(_)));
                }
            }
            open.my_as = u16::try_from(asn.0).unwrap_or(23456);
        }
        if shape & 0x40 != 0 {
            open.version = id_choice;
        }
        open
    }
}

/// What the harness has seen of one connection.
#[derive(Default)]
struct Seen {
    open_received: bool,
    keepalive_after_open: bool,
    notification_sent: bool,
    closed: bool,
}

struct Checker {
    fsm: Fsm<SplitMix64>,
    now: Instant,
    /// Every id the machine issued, in order.
    ids: Vec<ConnectionId>,
    seen: HashMap<ConnectionId, Seen>,
    /// The state as the `StateChanged` actions told it.
    state: State,
    outcome: Outcome,
}

impl Checker {
    /// Selector octet: mostly the newest id, otherwise any issued one
    /// (dropped ones are stale: the machine must ignore them). `None`
    /// before the first id.
    fn pick(&self, who: u8) -> Option<ConnectionId> {
        let i = match who.checked_sub(160) {
            None => self.ids.len().checked_sub(1)?,
            Some(i) => usize::from(i) % self.ids.len().max(1),
        };
        self.ids.get(i).copied()
    }

    fn state_of(&self, id: ConnectionId) -> Option<State> {
        self.fsm
            .connection_views()
            .find(|c| c.id == id)
            .map(|c| c.state)
    }

    fn context(&self) -> Context {
        self.fsm
            .established()
            .map(|(_, n)| n.context)
            .unwrap_or(Context::FOUR_OCTET_AS)
    }

    fn step(&mut self, step: Step) {
        let (event, received) = match step {
            Step::Wait(d) => {
                self.now += d;
                (Event::Timeout, None)
            }
            Step::Start => (Event::ManualStart, None),
            Step::AutoStart => (Event::AutomaticStart, None),
            Step::Stop(shutdown_message) => (Event::ManualStop { shutdown_message }, None),
            Step::Cease(subcode) => (Event::CeaseNow { subcode }, None),
            Step::Accept => (Event::TcpAccepted, None),
            Step::Connected(who) => {
                let Some(connection) = self.pick(who) else {
                    return;
                };
                (Event::TcpConnected { connection }, None)
            }
            Step::Fails(who) => {
                let Some(connection) = self.pick(who) else {
                    return;
                };
                (Event::TcpConnectionFails { connection }, None)
            }
            Step::Receive(who, message) => {
                let Some(connection) = self.pick(who) else {
                    return;
                };
                self.receive(connection, message)
            }
            Step::Raw(who, bytes) => {
                let Some(connection) = self.pick(who) else {
                    return;
                };
                match Message::decode_from(&bytes, &self.context()) {
                    Ok(Some((message, _))) => self.receive(connection, message),
                    Ok(None) => return,
                    Err(error) => (Event::DecodeError { connection, error }, None),
                }
            }
            Step::Cooperate(who, hold) => {
                let Some(connection) = self.pick(who) else {
                    return;
                };
                match self.state_of(connection) {
                    Some(State::Connect) => (Event::TcpConnected { connection }, None),
                    Some(State::OpenSent) => {
                        let mut open = Open::new(
                            PEER_ASN,
                            HoldTime::new(hold % 300).unwrap_or(HoldTime::DISABLED),
                            Ipv4Addr::new(192, 0, 2, 1),
                            vec![
                                Capability::Multiprotocol(Family::IPV4_UNICAST),
                                Capability::Multiprotocol(Family::IPV6_UNICAST),
                                Capability::RouteRefresh,
                            ],
                        );
                        if hold & 0x8000 != 0 {
                            open.bgp_identifier = Ipv4Addr::new(203, 0, 113, 9);
                        }
                        self.receive(connection, Message::Open(open))
                    }
                    _ => self.receive(connection, Message::Keepalive),
                }
            }
        };
        self.handle(event, received);
    }

    fn receive(
        &self,
        connection: ConnectionId,
        message: Message,
    ) -> (Event, Option<(ConnectionId, Message)>) {
        let event = Event::MessageReceived {
            connection,
            message: message.clone(),
        };
        (event, Some((connection, message)))
    }

    fn handle(&mut self, event: Event, received: Option<(ConnectionId, Message)>) {
        let live_before: HashSet<ConnectionId> =
            self.fsm.connection_views().map(|c| c.id).collect();
        if let Event::TcpConnectionFails { connection } = &event {
            if live_before.contains(connection) {
                self.seen.entry(*connection).or_default().closed = true;
            }
        }
        let actions = self.fsm.handle(self.now, event);

        // What the connection received, as this harness counts it: only
        // on a connection the machine tracked.
        if let Some((id, message)) = &received {
            if live_before.contains(id) {
                let seen = self.seen.entry(*id).or_default();
                match message {
                    Message::Open(_) => seen.open_received = true,
                    Message::Keepalive if seen.open_received => seen.keepalive_after_open = true,
                    _ => {}
                }
            }
        }
        let answered = match &received {
            Some((id, Message::Notification(_))) if live_before.contains(id) => {
                self.outcome.notifications_received += 1;
                Some(*id)
            }
            _ => None,
        };
        self.check_actions(&actions, answered);
        self.check_machine();
    }

    fn check_actions(&mut self, actions: &[Action], notification_from: Option<ConnectionId>) {
        for (n, action) in actions.iter().enumerate() {
            match action {
                Action::Connect { connection } | Action::Accept { connection } => {
                    assert!(!self.ids.contains(connection), "id {connection} reused");
                    self.ids.push(*connection);
                }
                Action::Send {
                    connection,
                    message,
                } => {
                    let seen = self.seen.entry(*connection).or_default();
                    assert!(!seen.closed, "sent on closed {connection}: {actions:?}");
                    if let Message::Notification(_) = message {
                        // RFC 4271 §6.4: never answered.
                        assert_ne!(
                            notification_from,
                            Some(*connection),
                            "a NOTIFICATION answered with one: {actions:?}"
                        );
                        assert!(!seen.notification_sent, "two NOTIFICATIONs on {connection}");
                        seen.notification_sent = true;
                        assert_eq!(
                            actions.get(n + 1),
                            Some(&Action::Close {
                                connection: *connection
                            }),
                            "a NOTIFICATION not followed by the close"
                        );
                    }
                }
                Action::Close { connection } => {
                    self.seen.entry(*connection).or_default().closed = true;
                }
                Action::StateChanged { from, to } => {
                    assert_eq!(*from, self.state, "StateChanged from a state not reported");
                    assert_ne!(from, to);
                    self.state = *to;
                }
                Action::Down { .. } => {
                    let falls_back = matches!(actions.get(n + 1),
                        Some(Action::StateChanged { from, to }) if *from >= State::OpenSent && to < from);
                    assert!(falls_back, "Down without a fall back: {actions:?}");
                }
                Action::Established {
                    connection,
                    negotiated,
                } => {
                    let seen = self.seen.get(connection);
                    assert!(
                        seen.is_some_and(|s| s.open_received && s.keepalive_after_open),
                        "Established on {connection} without OPEN then KEEPALIVE"
                    );
                    assert_ne!(negotiated.hold_time, Some(Duration::ZERO));
                    self.outcome.established += 1;
                }
                Action::Reject | Action::UpdateReceived(_) | Action::RouteRefreshRequested(_) => {}
            }
        }
    }

    fn check_machine(&self) {
        assert_eq!(
            self.state,
            self.fsm.state(),
            "reported state is not the state"
        );
        if let Some(at) = self.fsm.poll_timeout() {
            assert!(at > self.now, "a deadline not after now");
        }
        let conns: Vec<_> = self.fsm.connection_views().collect();
        for direction in [Direction::Outgoing, Direction::Incoming] {
            assert!(conns.iter().filter(|c| c.direction == direction).count() <= 1);
        }
        assert!(
            conns
                .iter()
                .filter(|c| c.state >= State::OpenConfirm)
                .count()
                <= 1
        );
        if self.fsm.state() == State::Idle {
            assert!(conns.is_empty(), "Idle with connections");
        }
        for c in &conns {
            let seen = self.seen.get(&c.id);
            assert!(
                !seen.is_some_and(|s| s.closed),
                "closed {} still tracked",
                c.id
            );
            let hold = c.negotiated.and_then(|n| n.hold_time);
            match c.state {
                State::Connect => assert!(c.hold_timer.is_none() && c.negotiated.is_none()),
                State::OpenSent => assert!(c.hold_timer.is_some() && c.negotiated.is_none()),
                State::OpenConfirm => assert!(c.hold_timer.is_some() && c.negotiated.is_some()),
                State::Established => {
                    assert!(
                        seen.is_some_and(|s| s.open_received && s.keepalive_after_open),
                        "{} Established without OPEN then KEEPALIVE",
                        c.id
                    );
                    assert_eq!(
                        c.hold_timer.is_some(),
                        hold.is_some(),
                        "hold timer armed iff the hold time is not zero: {c:?}"
                    );
                    if let (Some(at), Some(hold)) = (c.hold_timer, hold) {
                        assert!(at <= self.now + hold, "hold timer beyond the hold time");
                    }
                }
                State::Idle | State::Active => panic!("a connection in {}", c.state),
            }
            if c.state >= State::OpenConfirm {
                let keepalive = c.negotiated.and_then(|n| n.keepalive);
                assert_eq!(
                    c.keepalive_timer.is_some(),
                    keepalive.is_some(),
                    "keepalive timer armed iff a keepalive is negotiated: {c:?}"
                );
            }
        }
        if let Some((id, _)) = self.fsm.established() {
            assert!(conns.iter().any(|c| c.id == id));
        }
    }
}
