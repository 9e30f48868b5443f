//! The session state machine: events in, actions out, timers as deadlines.

use std::time::Instant;

use bytes::Bytes;

use anyvip_proto::notification::{cease, MAX_SHUTDOWN_COMMUNICATION, UNSPECIFIC};
use anyvip_proto::{
    DecodeError, ErrorCode, Message, Notification, Open, RouteRefresh, RouteRefreshSubtype,
};

use crate::action::{Action, DownReason, Negotiated};
use crate::backoff::Backoff;
use crate::collision::{preferred_direction, resolve_collision, Side, Survivor};
use crate::config::SessionConfig;
use crate::connection::{Connection, ConnectionId, ConnectionView, Direction};
use crate::event::Event;
use crate::open_check::{check_open, local_open};
use crate::state::State;
use crate::timers::{deadline, jitter, Rng, SplitMix64, OPEN_SENT_HOLD_TIME};

/// Whether the session is meant to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not started, or ManualStop: Idle.
    Stopped,
    /// Started, but Idle after an error until ConnectRetry fires (the
    /// IdleHoldTimer of RFC 4271 §8.1.1, driven by the backoff).
    HoldingOff,
    /// Connecting, listening or talking.
    Running,
}

/// The timers; the order breaks ties between equal deadlines, so a hold
/// timer that expires with a keepalive never lets the keepalive out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    ConnectRetry,
    Hold(ConnectionId),
    Keepalive(ConnectionId),
}

/// An [`Event`] about one connection, once the id is known to be current.
enum ConnectionEvent {
    TcpConnected,
    TcpConnectionFails,
    Message(Message),
    DecodeError(DecodeError),
}

/// How a connection ends.
enum Ending {
    /// Send this NOTIFICATION, then close.
    Notify(Notification),
    /// Close without a word (after receiving a NOTIFICATION: RFC 4271 §6.4
    /// never answers one).
    Close,
    /// Already gone (TcpConnectionFails): nothing to do on it.
    Gone,
}

/// The BGP session with one peer (RFC 4271 §8).
///
/// [`handle`](Fsm::handle) never fails and never panics; what it cannot use
/// it ignores. The caller sleeps until [`poll_timeout`](Fsm::poll_timeout)
/// and then calls [`handle_timeout`](Fsm::handle_timeout).
#[derive(Debug, Clone)]
pub struct Fsm<R = SplitMix64> {
    config: SessionConfig,
    /// Our OPEN, built once from the configuration.
    open: Open,
    rng: R,
    mode: Mode,
    /// The state last reported in `StateChanged`.
    state: State,
    /// At most one outgoing and one incoming connection.
    connections: Vec<Connection>,
    connect_retry: Option<Instant>,
    backoff: Backoff,
    next_id: u64,
    /// Latest time seen; time never runs backwards inside the machine.
    now: Instant,
    /// Why the last connection ended, for `Down`.
    down_reason: Option<DownReason>,
}

impl Fsm<SplitMix64> {
    /// A stopped session (Idle) with randomly seeded jitter. Send
    /// [`Event::ManualStart`] or [`Event::AutomaticStart`] to start it.
    pub fn new(config: SessionConfig, now: Instant) -> Fsm<SplitMix64> {
        Fsm::with_rng(config, now, SplitMix64::from_entropy())
    }
}

impl<R: Rng> Fsm<R> {
    /// Like [`Fsm::new`], with the jitter source given.
    pub fn with_rng(config: SessionConfig, now: Instant, rng: R) -> Fsm<R> {
        Fsm {
            open: local_open(&config),
            backoff: Backoff::new(config.connect_retry, config.connect_retry_max),
            config,
            rng,
            mode: Mode::Stopped,
            state: State::Idle,
            connections: Vec::new(),
            connect_retry: None,
            next_id: 0,
            now,
            down_reason: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The Established connection and what it negotiated.
    pub fn established(&self) -> Option<(ConnectionId, &Negotiated)> {
        self.connections
            .iter()
            .filter(|c| c.state == State::Established)
            .find_map(|c| Some((c.id, c.negotiated.as_ref()?)))
    }

    /// Every connection the machine tracks (at most one per direction),
    /// read-only.
    pub fn connection_views(&self) -> impl Iterator<Item = ConnectionView<'_>> {
        self.connections.iter().map(Connection::view)
    }

    /// Consecutive failures since the session was last Established or
    /// manually started or stopped (RFC 4271 ConnectRetryCounter).
    pub fn consecutive_failures(&self) -> u32 {
        self.backoff.failures()
    }

    /// The earliest deadline of any running timer; `None` when none runs.
    /// After any `handle`, it is later than the `now` passed in.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timer().map(|(at, _)| at)
    }

    /// Fire every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Action> {
        self.handle(now, Event::Timeout)
    }

    /// Handle one event at `now`. Timers due at `now` fire first.
    pub fn handle(&mut self, now: Instant, event: Event) -> Vec<Action> {
        let now = now.max(self.now);
        self.now = now;
        let mut out = Vec::new();
        self.fire_due_timers(now, &mut out);
        self.dispatch(now, event, &mut out);
        self.settle(&mut out);
        out
    }

    fn dispatch(&mut self, now: Instant, event: Event, out: &mut Vec<Action>) {
        let (id, event) = match event {
            Event::ManualStart => {
                self.manual_start(now, out);
                return;
            }
            Event::AutomaticStart => {
                self.automatic_start(now, out);
                return;
            }
            Event::ManualStop { shutdown_message } => {
                self.manual_stop(shutdown_message.as_deref(), out);
                return;
            }
            Event::CeaseNow { subcode } => {
                self.cease_now(now, subcode, out);
                return;
            }
            Event::TcpAccepted => {
                self.tcp_accepted(now, out);
                return;
            }
            Event::Timeout => return,
            Event::TcpConnected { connection } => (connection, ConnectionEvent::TcpConnected),
            Event::TcpConnectionFails { connection } => {
                (connection, ConnectionEvent::TcpConnectionFails)
            }
            Event::MessageReceived {
                connection,
                message,
            } => (connection, ConnectionEvent::Message(message)),
            Event::DecodeError { connection, error } => {
                (connection, ConnectionEvent::DecodeError(error))
            }
        };
        let Some(state) = self.connection(id).map(|c| c.state) else {
            // Stale: a connection already dropped (or never issued). A late
            // successful connect still holds a socket, which must go.
            if matches!(event, ConnectionEvent::TcpConnected) {
                out.push(Action::Close { connection: id });
            }
            return;
        };
        match state {
            State::Connect => self.connect(now, id, event, out),
            State::OpenSent => self.open_sent(now, id, event, out),
            State::OpenConfirm => self.open_confirm(now, id, event, out),
            State::Established => self.established_event(now, id, event, out),
            // Never the state of a connection.
            State::Idle | State::Active => {}
        }
    }

    // ----- Session events (Idle, Active, and admin events in any state) -----

    /// Event 1 ManualStart: in Idle, start (RFC 4271 §8.2.2); elsewhere
    /// ignored. An operator start also forgets earlier failures.
    fn manual_start(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.mode {
            Mode::Running => {}
            Mode::Stopped | Mode::HoldingOff => {
                self.backoff.reset();
                self.begin(now, out);
            }
        }
    }

    /// Event 3 AutomaticStart: start a stopped session; a session holding
    /// off after errors keeps waiting.
    fn automatic_start(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.mode == Mode::Stopped {
            self.begin(now, out);
        }
    }

    /// Leave Idle: connect (Connect), or wait for the peer (Active) when
    /// passive.
    fn begin(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.mode = Mode::Running;
        self.connect_retry = None;
        if !self.config.passive {
            self.connect_out(now, out);
        }
    }

    /// Start an outgoing connection and bound it with ConnectRetry.
    fn connect_out(&mut self, now: Instant, out: &mut Vec<Action>) {
        let id = self.issue_id();
        out.push(Action::Connect { connection: id });
        self.connections
            .push(Connection::new(id, Direction::Outgoing, State::Connect));
        self.arm_connect_retry(now);
    }

    /// Event 2 ManualStop, in any state.
    fn manual_stop(&mut self, message: Option<&str>, out: &mut Vec<Action>) {
        let notification = shutdown_notification(message);
        for c in std::mem::take(&mut self.connections) {
            // RFC 4271 §8.2.2: in OpenSent, OpenConfirm and Established
            // ManualStop "sends the NOTIFICATION with a Cease"; in Connect
            // the attempt is just dropped.
            if c.state >= State::OpenSent {
                out.push(Action::Send {
                    connection: c.id,
                    message: Message::Notification(notification.clone()),
                });
            }
            out.push(Action::Close { connection: c.id });
        }
        self.mode = Mode::Stopped;
        self.connect_retry = None;
        // RFC 4271 §8.2.2: ManualStop "sets the ConnectRetryCounter to zero".
        self.backoff.reset();
        self.down_reason = Some(DownReason::AdminStop);
    }

    /// Event 8 AutomaticStop with a Cease: like an error the session
    /// detected itself (RFC 4271 §8.2.2 "drops the TCP connection ...
    /// increments the ConnectRetryCounter"), so it comes back on its own
    /// once the peer is reachable again.
    fn cease_now(&mut self, now: Instant, subcode: u8, out: &mut Vec<Action>) {
        let notification = Notification::new(ErrorCode::Cease, subcode, Bytes::new());
        let ids: Vec<(ConnectionId, State)> =
            self.connections.iter().map(|c| (c.id, c.state)).collect();
        for (id, state) in ids {
            let ending = if state >= State::OpenSent {
                Ending::Notify(notification.clone())
            } else {
                Ending::Close
            };
            let reason = DownReason::NotificationSent(notification.clone());
            self.end(now, id, ending, reason, out);
        }
    }

    /// Events 14 and 17: the listener accepted a connection from the peer.
    fn tcp_accepted(&mut self, now: Instant, out: &mut Vec<Action>) {
        // RFC 4271 §8.2.2: Idle "refuses all incoming BGP connections". A
        // second incoming connection is refused as well: the one we have
        // is resolved by its own hold timer, and only an outgoing and an
        // incoming connection can collide (§6.8).
        let has_incoming = self
            .connections
            .iter()
            .any(|c| c.direction == Direction::Incoming);
        if self.mode != Mode::Running || has_incoming {
            out.push(Action::Reject);
            return;
        }
        // Connect/Active, Event 17: stop ConnectRetry, send OPEN, go to
        // OpenSent. An outgoing attempt still in TCP connect is dropped: the
        // peer's connection is already up, and a single attempt in flight
        // keeps ConnectRetry in one place.
        if let Some(pos) = self
            .connections
            .iter()
            .position(|c| c.state == State::Connect)
        {
            let attempt = self.connections.swap_remove(pos);
            out.push(Action::Close {
                connection: attempt.id,
            });
        }
        self.connect_retry = None;
        let id = self.issue_id();
        out.push(Action::Accept { connection: id });
        self.connections
            .push(Connection::new(id, Direction::Incoming, State::Connect));
        self.send_open(now, id, out);
    }

    /// Event 9 ConnectRetryTimer_Expires, by session state.
    fn connect_retry_expired(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.connect_retry = None;
        match self.derived_state() {
            // The hold-off after an error is over.
            State::Idle => {
                if self.mode == Mode::HoldingOff {
                    self.begin(now, out);
                }
            }
            // Connect: "drops the TCP connection, restarts the
            // ConnectRetryTimer, ... initiates a TCP connection". A timed-out
            // attempt counts as a failure, so the next window is longer.
            State::Connect => {
                if let Some(pos) = self
                    .connections
                    .iter()
                    .position(|c| c.state == State::Connect)
                {
                    let attempt = self.connections.swap_remove(pos);
                    out.push(Action::Close {
                        connection: attempt.id,
                    });
                }
                self.backoff.failed();
                self.connect_out(now, out);
            }
            // Active: "initiates a TCP connection ... changes its state to
            // Connect" (a passive session only listens).
            State::Active => {
                if !self.config.passive {
                    self.connect_out(now, out);
                }
            }
            // Stopped once a connection reached OpenSent.
            State::OpenSent | State::OpenConfirm | State::Established => {}
        }
    }

    // ----- Connection states (RFC 4271 §8.2.2) -----

    /// Connect: our TCP connection is being set up.
    fn connect(
        &mut self,
        now: Instant,
        id: ConnectionId,
        event: ConnectionEvent,
        out: &mut Vec<Action>,
    ) {
        match event {
            // Event 16: "stops the ConnectRetryTimer ..., sends an OPEN
            // message to its peer, sets the HoldTimer to a large value, and
            // changes its state to OpenSent."
            ConnectionEvent::TcpConnected => {
                self.connect_retry = None;
                self.send_open(now, id, out);
            }
            // Event 18: back to Active, retry when ConnectRetry fires.
            ConnectionEvent::TcpConnectionFails => {
                self.end(now, id, Ending::Gone, DownReason::TcpClosed, out);
            }
            // No socket yet: nothing can have arrived on it.
            ConnectionEvent::Message(_) | ConnectionEvent::DecodeError(_) => {}
        }
    }

    /// OpenSent: our OPEN is out, the peer's is awaited.
    fn open_sent(
        &mut self,
        now: Instant,
        id: ConnectionId,
        event: ConnectionEvent,
        out: &mut Vec<Action>,
    ) {
        match event {
            // Event 19 BGPOpen.
            ConnectionEvent::Message(Message::Open(open)) => {
                self.open_received(now, id, &open, out)
            }
            ConnectionEvent::Message(Message::Notification(n)) => {
                self.end(
                    now,
                    id,
                    Ending::Close,
                    DownReason::NotificationReceived(n),
                    out,
                );
            }
            // RFC 6608: a KEEPALIVE, UPDATE or ROUTE-REFRESH before the OPEN.
            ConnectionEvent::Message(message) => {
                self.unexpected(now, id, State::OpenSent, &message, out)
            }
            ConnectionEvent::DecodeError(error) => self.decode_error(now, id, &error, out),
            // Event 18 in OpenSent: "changes its state to Active".
            ConnectionEvent::TcpConnectionFails => {
                self.end(now, id, Ending::Gone, DownReason::TcpClosed, out);
            }
            // A repeated report for a connection that is already up.
            ConnectionEvent::TcpConnected => {}
        }
    }

    /// OpenConfirm: OPENs accepted, the peer's KEEPALIVE is awaited.
    fn open_confirm(
        &mut self,
        now: Instant,
        id: ConnectionId,
        event: ConnectionEvent,
        out: &mut Vec<Action>,
    ) {
        match event {
            // Event 26 KeepAliveMsg: "restarts the HoldTimer and changes its
            // state to Established". Failures are forgotten here.
            ConnectionEvent::Message(Message::Keepalive) => {
                self.backoff.reset();
                if let Some(c) = self.connection_mut(id) {
                    c.state = State::Established;
                }
                self.restart_hold(now, id);
            }
            ConnectionEvent::Message(Message::Notification(n)) => {
                self.end(
                    now,
                    id,
                    Ending::Close,
                    DownReason::NotificationReceived(n),
                    out,
                );
            }
            // RFC 6608 (5/2): an UPDATE or ROUTE-REFRESH before the
            // KEEPALIVE, or a second OPEN on this connection (a collision is
            // an OPEN on the *other* connection, handled in OpenSent).
            ConnectionEvent::Message(message) => {
                self.unexpected(now, id, State::OpenConfirm, &message, out)
            }
            ConnectionEvent::DecodeError(error) => self.decode_error(now, id, &error, out),
            ConnectionEvent::TcpConnectionFails => {
                self.end(now, id, Ending::Gone, DownReason::TcpClosed, out);
            }
            ConnectionEvent::TcpConnected => {}
        }
    }

    /// Established: UPDATEs flow.
    fn established_event(
        &mut self,
        now: Instant,
        id: ConnectionId,
        event: ConnectionEvent,
        out: &mut Vec<Action>,
    ) {
        match event {
            // Events 26 and 27: KEEPALIVE and UPDATE restart the hold timer.
            ConnectionEvent::Message(Message::Keepalive) => self.restart_hold(now, id),
            ConnectionEvent::Message(Message::Update(update)) => {
                self.restart_hold(now, id);
                out.push(Action::UpdateReceived(update));
            }
            // Any message shows the peer is alive, a ROUTE-REFRESH too.
            ConnectionEvent::Message(Message::RouteRefresh(request)) => {
                self.restart_hold(now, id);
                if self.wants_route_refresh(id, &request) {
                    out.push(Action::RouteRefreshRequested(request));
                }
            }
            ConnectionEvent::Message(Message::Notification(n)) => {
                self.end(
                    now,
                    id,
                    Ending::Close,
                    DownReason::NotificationReceived(n),
                    out,
                );
            }
            // RFC 6608 (5/3): an OPEN on an Established connection.
            ConnectionEvent::Message(message @ Message::Open(_)) => {
                self.unexpected(now, id, State::Established, &message, out);
            }
            ConnectionEvent::DecodeError(error) => self.decode_error(now, id, &error, out),
            ConnectionEvent::TcpConnectionFails => {
                self.end(now, id, Ending::Gone, DownReason::TcpClosed, out);
            }
            ConnectionEvent::TcpConnected => {}
        }
    }

    // ----- Pieces shared by the states -----

    /// Send our OPEN and start the large OpenSent hold timer.
    fn send_open(&mut self, now: Instant, id: ConnectionId, out: &mut Vec<Action>) {
        out.push(Action::Send {
            connection: id,
            message: Message::Open(self.open.clone()),
        });
        if let Some(c) = self.connection_mut(id) {
            c.state = State::OpenSent;
            c.hold = deadline(now, OPEN_SENT_HOLD_TIME);
        }
    }

    /// Event 19 in OpenSent: check the OPEN, resolve a collision, then
    /// "sends a KEEPALIVE message, sets a KeepaliveTimer, sets the
    /// HoldTimer according to the negotiated value, changes its state to
    /// OpenConfirm."
    fn open_received(
        &mut self,
        now: Instant,
        id: ConnectionId,
        open: &Open,
        out: &mut Vec<Action>,
    ) {
        let negotiated = match check_open(&self.config, open) {
            Ok(negotiated) => negotiated,
            Err(notification) => {
                self.end(
                    now,
                    id,
                    Ending::Notify(notification.clone()),
                    DownReason::NotificationSent(notification),
                    out,
                );
                return;
            }
        };
        if !self.survives_collision(now, id, &negotiated, out) {
            return;
        }
        out.push(Action::Send {
            connection: id,
            message: Message::Keepalive,
        });
        let keepalive = negotiated.keepalive.map(|k| jitter(k, &mut self.rng));
        let Some(c) = self.connection_mut(id) else {
            return;
        };
        c.state = State::OpenConfirm;
        c.keepalive = keepalive.and_then(|k| deadline(now, k));
        // With a hold time of zero RFC 4271 starts no timer here. We keep
        // the OpenSent hold timer until the KEEPALIVE instead, so a peer
        // that never confirms cannot wedge the session; once Established,
        // no timer runs.
        if let Some(hold) = negotiated.hold_time {
            c.hold = deadline(now, hold);
        }
        c.negotiated = Some(negotiated);
    }

    /// RFC 4271 §6.8: "Upon receipt of an OPEN message, the local system
    /// MUST examine all of its connections that are in the OpenConfirm
    /// state" (and Established ones, which always win). Returns whether the
    /// connection `id` lives on; the loser gets Cease 6/7.
    fn survives_collision(
        &mut self,
        now: Instant,
        id: ConnectionId,
        negotiated: &Negotiated,
        out: &mut Vec<Action>,
    ) -> bool {
        let side = |c: &Connection| Side {
            direction: c.direction,
            state: c.state,
        };
        let Some(new) = self.connection(id).map(side) else {
            return false;
        };
        let Some((other, existing)) = self
            .connections
            .iter()
            .find(|c| c.id != id && c.state >= State::OpenConfirm)
            .map(|c| (c.id, side(c)))
        else {
            return true;
        };
        let preferred = preferred_direction(
            self.config.router_id,
            self.config.local_asn,
            negotiated.peer_router_id,
            negotiated.peer_asn,
        );
        let (loser, survives) = match resolve_collision(existing, new, preferred) {
            Survivor::Existing => (id, false),
            Survivor::New => (other, true),
        };
        let notification = Notification::new(
            ErrorCode::Cease,
            cease::CONNECTION_COLLISION_RESOLUTION,
            Bytes::new(),
        );
        self.end(
            now,
            loser,
            Ending::Notify(notification.clone()),
            DownReason::NotificationSent(notification),
            out,
        );
        survives
    }

    /// RFC 6608 §4: an unexpected message is answered with Finite State
    /// Machine Error, the subcode for the state (one table, see
    /// [`State::unexpected_message_subcode`]), and "The Data field is a
    /// 1-octet, unsigned integer that indicates the type of the unexpected
    /// message."
    fn unexpected(
        &mut self,
        now: Instant,
        id: ConnectionId,
        state: State,
        message: &Message,
        out: &mut Vec<Action>,
    ) {
        let subcode = state.unexpected_message_subcode().unwrap_or(UNSPECIFIC);
        let data = Bytes::copy_from_slice(&[message.message_type().code()]);
        let notification = Notification::new(ErrorCode::FiniteStateMachine, subcode, data);
        self.end(
            now,
            id,
            Ending::Notify(notification.clone()),
            DownReason::NotificationSent(notification),
            out,
        );
    }

    /// RFC 4271 §6: a message that does not decode is answered with its
    /// NOTIFICATION (the codec decides which, in one place) and the
    /// connection is closed.
    fn decode_error(
        &mut self,
        now: Instant,
        id: ConnectionId,
        error: &DecodeError,
        out: &mut Vec<Action>,
    ) {
        let notification = error.notification();
        self.end(
            now,
            id,
            Ending::Notify(notification.clone()),
            DownReason::NotificationSent(notification),
            out,
        );
    }

    /// RFC 2918 §4: a ROUTE-REFRESH for a family "that the speaker didn't
    /// advertise to the peer at the session establishment time via
    /// capability advertisement" is ignored; RFC 7313 §5 has unknown
    /// subtypes ignored, and the BoRR/EoRR markers only matter with
    /// enhanced route refresh, which we do not advertise.
    fn wants_route_refresh(&self, id: ConnectionId, request: &RouteRefresh) -> bool {
        self.config.route_refresh
            && request.subtype == RouteRefreshSubtype::Normal
            && self
                .connection(id)
                .and_then(|c| c.negotiated.as_ref())
                .is_some_and(|n| n.families.contains(&request.family))
    }

    fn restart_hold(&mut self, now: Instant, id: ConnectionId) {
        if let Some(c) = self.connection_mut(id) {
            let hold = c.negotiated.as_ref().and_then(|n| n.hold_time);
            c.hold = hold.and_then(|h| deadline(now, h));
        }
    }

    /// Finish connection `id`: send the NOTIFICATION if any, close, forget
    /// it. If it was the last one, the session falls back (RFC 4271 §8.2.2):
    /// to Active after a TCP failure in Connect or OpenSent, to Idle after
    /// anything else, and in both cases ConnectRetry is armed with the next
    /// backoff interval, so a rejected OPEN is never retried at once.
    fn end(
        &mut self,
        now: Instant,
        id: ConnectionId,
        ending: Ending,
        reason: DownReason,
        out: &mut Vec<Action>,
    ) {
        let Some(pos) = self.connections.iter().position(|c| c.id == id) else {
            return;
        };
        let connection = self.connections.swap_remove(pos);
        match ending {
            Ending::Notify(notification) => {
                out.push(Action::Send {
                    connection: id,
                    message: Message::Notification(notification),
                });
                out.push(Action::Close { connection: id });
            }
            Ending::Close => out.push(Action::Close { connection: id }),
            Ending::Gone => {}
        }
        let to_active = reason == DownReason::TcpClosed && connection.state <= State::OpenSent;
        self.down_reason = Some(reason);
        if !self.connections.is_empty() || self.mode != Mode::Running {
            return;
        }
        self.backoff.failed();
        if to_active {
            if !self.config.passive {
                self.arm_connect_retry(now);
            }
        } else {
            self.mode = Mode::HoldingOff;
            self.arm_connect_retry(now);
        }
    }

    // ----- Timers -----

    /// RFC 4271 §10: ConnectRetry is jittered; its base is the backoff
    /// interval.
    fn arm_connect_retry(&mut self, now: Instant) {
        let after = jitter(self.backoff.interval(), &mut self.rng);
        self.connect_retry = deadline(now, after);
    }

    fn next_timer(&self) -> Option<(Instant, Timer)> {
        let retry = self.connect_retry.map(|at| (at, Timer::ConnectRetry));
        let per_connection = self.connections.iter().flat_map(|c| {
            [
                c.hold.map(|at| (at, Timer::Hold(c.id))),
                c.keepalive.map(|at| (at, Timer::Keepalive(c.id))),
            ]
        });
        retry.into_iter().chain(per_connection.flatten()).min()
    }

    /// Fire every timer due at `now`, earliest first. Each firing stops its
    /// timer or re-arms it after `now`, so the loop ends within one round
    /// per timer (ConnectRetry plus two per connection).
    fn fire_due_timers(&mut self, now: Instant, out: &mut Vec<Action>) {
        for _ in 0..8 {
            match self.next_timer() {
                Some((at, timer)) if at <= now => {
                    self.fire(now, timer, out);
                    self.settle(out);
                }
                _ => return,
            }
        }
    }

    fn fire(&mut self, now: Instant, timer: Timer, out: &mut Vec<Action>) {
        match timer {
            Timer::ConnectRetry => self.connect_retry_expired(now, out),
            // Event 10 HoldTimer_Expires in OpenSent, OpenConfirm or
            // Established: "sends a NOTIFICATION message with the Error Code
            // Hold Timer Expired" and drops the connection.
            Timer::Hold(id) => self.end(
                now,
                id,
                Ending::Notify(Notification::hold_timer_expired()),
                DownReason::HoldTimerExpired,
                out,
            ),
            // Event 11 KeepaliveTimer_Expires: "sends a KEEPALIVE message,
            // restarts its KeepaliveTimer" (jittered, RFC 4271 §10).
            Timer::Keepalive(id) => {
                let next = self
                    .connection(id)
                    .and_then(|c| c.negotiated.as_ref())
                    .and_then(|n| n.keepalive)
                    .map(|k| jitter(k, &mut self.rng));
                if let Some(c) = self.connection_mut(id) {
                    c.keepalive = next.and_then(|k| deadline(now, k));
                    out.push(Action::Send {
                        connection: id,
                        message: Message::Keepalive,
                    });
                }
            }
        }
    }

    // ----- Bookkeeping -----

    /// The session state: the furthest connection's, or Active/Idle when
    /// there is none.
    fn derived_state(&self) -> State {
        let without_connection = match self.mode {
            Mode::Running => State::Active,
            Mode::Stopped | Mode::HoldingOff => State::Idle,
        };
        self.connections
            .iter()
            .map(|c| c.state)
            .max()
            .unwrap_or(without_connection)
    }

    /// Report a state change (with `Down` first when the session fell back
    /// from OpenSent or beyond, and `Established` after reaching it).
    fn settle(&mut self, out: &mut Vec<Action>) {
        let reason = self.down_reason.take();
        let (from, to) = (self.state, self.derived_state());
        if from == to {
            return;
        }
        if from >= State::OpenSent && to < from {
            if let Some(reason) = reason {
                out.push(Action::Down { reason });
            }
        }
        out.push(Action::StateChanged { from, to });
        self.state = to;
        if to == State::Established {
            if let Some((connection, negotiated)) = self.established() {
                out.push(Action::Established {
                    connection,
                    negotiated: negotiated.clone(),
                });
            }
        }
    }

    fn issue_id(&mut self) -> ConnectionId {
        self.next_id = self.next_id.wrapping_add(1);
        ConnectionId(self.next_id)
    }

    fn connection(&self, id: ConnectionId) -> Option<&Connection> {
        self.connections.iter().find(|c| c.id == id)
    }

    fn connection_mut(&mut self, id: ConnectionId) -> Option<&mut Connection> {
        self.connections.iter_mut().find(|c| c.id == id)
    }

    #[cfg(test)]
    pub(crate) fn connections(&self) -> &[Connection] {
        &self.connections
    }
}

/// Cease / Administrative Shutdown (RFC 4486 §4) with the RFC 9003 §2
/// shutdown communication: at most 255 octets of UTF-8, so a longer text is
/// cut at the last character boundary that fits.
fn shutdown_notification(message: Option<&str>) -> Notification {
    let text = message.unwrap_or_default();
    let mut end = text.len().min(MAX_SHUTDOWN_COMMUNICATION);
    while !text.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    let text = text.get(..end).unwrap_or_default();
    let bare = || {
        Notification::new(
            ErrorCode::Cease,
            cease::ADMINISTRATIVE_SHUTDOWN,
            Bytes::new(),
        )
    };
    if text.is_empty() {
        return bare();
    }
    Notification::cease_with_message(cease::ADMINISTRATIVE_SHUTDOWN, text)
        .unwrap_or_else(|_| bare())
}
