//! Random event sequences: the machine never panics and keeps its
//! invariants, checked after every step.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use anyvip_proto::{DecodeError, ErrorCode, Message, Notification, RouteRefresh, Update};
use bytes::Bytes;

use super::*;
use crate::{Direction, SplitMix64};

#[derive(Debug, Clone)]
enum Step {
    /// Let time pass (milliseconds) and fire what is due.
    Wait(u64),
    Start,
    AutoStart,
    Stop(bool),
    /// BFD Down (RFC 5882): Cease subcode 10.
    Cease,
    Accept,
    /// Connection events pick an id by index (see [`Checker::pick`]).
    Connected(usize),
    Fails(usize),
    Receive(usize, Incoming),
    /// The message a well-behaved peer would send next on the connection
    /// (OPEN in OpenSent, KEEPALIVE later), so that runs get somewhere.
    Cooperate(usize, bool),
    Garbage(usize),
}

#[derive(Debug, Clone)]
enum Incoming {
    Open { higher_id: bool, hold: u16 },
    BadOpen,
    Keepalive,
    Update,
    Notification,
    RouteRefresh,
}

impl Incoming {
    fn message(&self) -> Message {
        match self {
            Incoming::Open { higher_id, hold } => {
                let mut open = peer_open();
                open.hold_time = *hold;
                if *higher_id {
                    open.bgp_identifier = Ipv4Addr::new(203, 0, 113, 9);
                }
                Message::Open(open)
            }
            Incoming::BadOpen => {
                Message::Open(Open::new(Asn(65099), hold(90), PEER_ID, Vec::new()))
            }
            Incoming::Keepalive => Message::Keepalive,
            Incoming::Update => Message::Update(Update::default()),
            Incoming::Notification => {
                Message::Notification(Notification::new(ErrorCode::Cease, 2, Bytes::new()))
            }
            Incoming::RouteRefresh => {
                Message::RouteRefresh(RouteRefresh::new(Family::IPV4_UNICAST))
            }
        }
    }
}

fn incoming() -> impl Strategy<Value = Incoming> {
    prop_oneof![
        4 => (any::<bool>(), prop::sample::select(vec![0u16, 1, 3, 9, 90, 90]))
            .prop_map(|(higher_id, hold)| Incoming::Open { higher_id, hold }),
        1 => Just(Incoming::BadOpen),
        6 => Just(Incoming::Keepalive),
        2 => Just(Incoming::Update),
        1 => Just(Incoming::Notification),
        1 => Just(Incoming::RouteRefresh),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => prop_oneof![0u64..1_000, 1_000u64..100_000, 100_000u64..400_000].prop_map(Step::Wait),
        2 => Just(Step::Start),
        1 => Just(Step::AutoStart),
        1 => any::<bool>().prop_map(Step::Stop),
        1 => Just(Step::Cease),
        2 => Just(Step::Accept),
        3 => (0usize..8).prop_map(Step::Connected),
        1 => (0usize..8).prop_map(Step::Fails),
        8 => ((0usize..8), incoming()).prop_map(|(i, m)| Step::Receive(i, m)),
        8 => ((0usize..8), any::<bool>()).prop_map(|(i, higher_id)| Step::Cooperate(i, higher_id)),
        1 => (0usize..8).prop_map(Step::Garbage),
    ]
}

/// What the test has seen of one connection.
#[derive(Default)]
struct Seen {
    open_received: bool,
    keepalive_after_open: bool,
    notifications_sent: usize,
    closed: bool,
}

struct Checker {
    fsm: Fsm<SplitMix64>,
    now: Instant,
    /// Ids in the order they were issued.
    ids: Vec<ConnectionId>,
    seen: HashMap<ConnectionId, Seen>,
    state: State,
    last_connect: Option<Instant>,
}

impl Checker {
    /// Mostly the newest id (so sessions get somewhere), sometimes any
    /// earlier one or one never issued.
    fn pick(&self, index: usize) -> ConnectionId {
        let newest = self.ids.last().copied();
        match index.checked_sub(4) {
            None => newest.unwrap_or(ConnectionId(u64::MAX)),
            Some(i) => self
                .ids
                .get(i % (self.ids.len() + 1))
                .copied()
                .unwrap_or(ConnectionId(u64::MAX)),
        }
    }

    fn run(&mut self, step: &Step) -> Result<(), TestCaseError> {
        let mut received: Option<(ConnectionId, Message)> = None;
        let event = match step {
            Step::Wait(ms) => {
                self.now += millis(*ms);
                Event::Timeout
            }
            Step::Start => Event::ManualStart,
            Step::AutoStart => Event::AutomaticStart,
            Step::Stop(with_text) => Event::ManualStop {
                shutdown_message: with_text.then(|| "bye".to_string()),
            },
            Step::Cease => Event::CeaseNow { subcode: 10 },
            Step::Accept => Event::TcpAccepted,
            Step::Connected(i) => Event::TcpConnected {
                connection: self.pick(*i),
            },
            Step::Fails(i) => Event::TcpConnectionFails {
                connection: self.pick(*i),
            },
            Step::Receive(i, m) => {
                let connection = self.pick(*i);
                let message = m.message();
                received = Some((connection, message.clone()));
                Event::MessageReceived {
                    connection,
                    message,
                }
            }
            Step::Cooperate(i, higher_id) => {
                let connection = self.pick(*i);
                let state = self
                    .fsm
                    .connections()
                    .iter()
                    .find(|c| c.id == connection)
                    .map(|c| c.state);
                let message = match state {
                    Some(State::Connect) => {
                        return self.handle(Event::TcpConnected { connection }, None);
                    }
                    Some(State::OpenSent) => Incoming::Open {
                        higher_id: *higher_id,
                        hold: 90,
                    }
                    .message(),
                    _ => Message::Keepalive,
                };
                received = Some((connection, message.clone()));
                Event::MessageReceived {
                    connection,
                    message,
                }
            }
            Step::Garbage(i) => Event::DecodeError {
                connection: self.pick(*i),
                error: DecodeError::BadMessageType { message_type: 9 },
            },
        };
        if matches!(step, Step::Start | Step::AutoStart) {
            self.last_connect = None;
        }
        self.handle(event, received)
    }

    /// Handle one event and check every invariant.
    fn handle(
        &mut self,
        event: Event,
        received: Option<(ConnectionId, Message)>,
    ) -> Result<(), TestCaseError> {
        let failed = match &event {
            Event::TcpConnectionFails { connection } => Some(*connection),
            _ => None,
        };
        let live_before: HashSet<ConnectionId> =
            self.fsm.connections().iter().map(|c| c.id).collect();

        let actions = self.fsm.handle(self.now, event);

        // The test's own record of what the connection received. Only
        // messages on a live connection count.
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
        if let Some(id) = failed {
            self.seen.entry(id).or_default().closed = true;
        }

        for (n, action) in actions.iter().enumerate() {
            match action {
                Action::Connect { connection } | Action::Accept { connection } => {
                    prop_assert!(!self.ids.contains(connection), "id reused: {connection}");
                    self.ids.push(*connection);
                    if matches!(action, Action::Connect { .. }) {
                        // No hot loop: connects are at least 0.75 × the 5 s
                        // base apart unless an operator (re)started.
                        if let Some(last) = self.last_connect {
                            prop_assert!(
                                self.now - last >= millis(3750),
                                "connect {:?} after the last one",
                                self.now - last
                            );
                        }
                        self.last_connect = Some(self.now);
                    }
                }
                Action::Send {
                    connection,
                    message,
                } => {
                    let seen = self.seen.entry(*connection).or_default();
                    prop_assert!(!seen.closed, "send on closed {connection}: {actions:?}");
                    if let Message::Notification(_) = message {
                        seen.notifications_sent += 1;
                        prop_assert!(
                            seen.notifications_sent == 1,
                            "two NOTIFICATIONs on {connection}"
                        );
                        // A NOTIFICATION is always followed by the close.
                        prop_assert_eq!(
                            actions.get(n + 1),
                            Some(&Action::Close {
                                connection: *connection
                            })
                        );
                    }
                    // Never answer a NOTIFICATION (RFC 4271 §6.4).
                    if let Some((id, Message::Notification(_))) = &received {
                        prop_assert!(id != connection, "answered a NOTIFICATION: {actions:?}");
                    }
                }
                Action::Close { connection } => {
                    self.seen.entry(*connection).or_default().closed = true;
                }
                Action::StateChanged { from, to } => {
                    prop_assert_eq!(*from, self.state);
                    prop_assert_ne!(from, to);
                    self.state = *to;
                }
                Action::Down { .. } => {
                    // Right before a StateChanged that goes backwards from
                    // OpenSent or beyond.
                    let next = actions.get(n + 1);
                    let ok = matches!(next, Some(Action::StateChanged { from, to })
                        if *from >= State::OpenSent && to < from);
                    prop_assert!(ok, "Down not followed by a fall back: {actions:?}");
                }
                Action::Established {
                    connection,
                    negotiated,
                } => {
                    let seen = self.seen.entry(*connection).or_default();
                    prop_assert!(seen.open_received && seen.keepalive_after_open);
                    prop_assert_ne!(negotiated.hold_time, Some(Duration::ZERO));
                    prop_assert_ne!(negotiated.keepalive, Some(Duration::ZERO));
                    prop_assert!(!negotiated.families.is_empty());
                }
                Action::Reject | Action::UpdateReceived(_) | Action::RouteRefreshRequested(_) => {}
            }
        }

        // Reported state is the machine's state.
        prop_assert_eq!(self.state, self.fsm.state());
        // Deadlines always lie ahead.
        if let Some(at) = self.fsm.poll_timeout() {
            prop_assert!(at > self.now, "deadline in the past");
        }
        // At most one connection per direction, at most one past OpenSent,
        // and none while Idle.
        let conns = self.fsm.connections();
        prop_assert!(conns.len() <= 2);
        for direction in [Direction::Outgoing, Direction::Incoming] {
            prop_assert!(conns.iter().filter(|c| c.direction == direction).count() <= 1);
        }
        prop_assert!(
            conns
                .iter()
                .filter(|c| c.state >= State::OpenConfirm)
                .count()
                <= 1
        );
        if self.fsm.state() == State::Idle {
            prop_assert!(conns.is_empty());
        }
        for c in conns {
            prop_assert!(
                !self.seen.get(&c.id).is_some_and(|s| s.closed),
                "closed {} still tracked",
                c.id
            );
        }
        // Established only after an OPEN and a KEEPALIVE were received.
        if self.fsm.state() == State::Established {
            let (id, _) = self.fsm.established().expect("an Established connection");
            let seen = self.seen.get(&id);
            prop_assert!(seen.is_some_and(|s| s.open_received && s.keepalive_after_open));
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_event_sequences_never_panic_and_keep_the_invariants(
        seed in any::<u64>(),
        passive in any::<bool>(),
        steps in prop::collection::vec(step(), 1..80),
    ) {
        let t0 = Instant::now();
        let mut c = config();
        c.passive = passive;
        let mut checker = Checker {
            fsm: Fsm::with_rng(c, t0, SplitMix64::new(seed)),
            now: t0,
            ids: Vec::new(),
            seen: HashMap::new(),
            state: State::Idle,
            last_connect: None,
        };
        for step in &steps {
            checker.run(step)?;
        }
    }
}
