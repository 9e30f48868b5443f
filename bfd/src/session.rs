//! One BFD session (RFC 5880 §6.2, §6.8): packets and timeouts in,
//! packets to send and state changes out.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use crate::action::Action;
use crate::config::{from_micros, to_micros, SessionConfig};
use crate::discard::Discard;
use crate::jitter::{jitter, Rng};
use crate::packet::{ControlPacket, Diagnostic, State};

/// RFC 5880 §6.8.3: "When bfd.SessionState is not Up, the system MUST set
/// bfd.DesiredMinTxInterval to a value of not less than one second".
pub const SLOW_TX_INTERVAL: Duration = Duration::from_secs(1);

/// RFC 5880 §6.8.1: bfd.RemoteMinRxInterval "MUST be initialized to 1".
const INITIAL_REMOTE_MIN_RX: Duration = Duration::from_micros(1);

/// A deadline is never closer than this: a timeout always lies ahead.
const MIN_TIMER: Duration = Duration::from_micros(1);

/// A Poll Sequence (RFC 5880 §6.5): P rides the periodic packets until a
/// packet with F comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Poll {
    Idle,
    /// `values_changed`: the advertised intervals changed again after the
    /// sequence began, so a Final may answer a Poll that carried older
    /// values; one more round is needed before the new ones are in force.
    Active {
        values_changed: bool,
    },
}

/// The BFD session with one peer, in Asynchronous mode.
///
/// The caller owns the socket, the clock and discriminator lookup: it
/// decodes a datagram with [`ControlPacket::decode`], finds the session (by
/// a non-zero Your Discriminator equal to [`Session::local_discriminator`],
/// otherwise by the peer's address), and passes the packet to
/// [`Session::handle_packet`]. It sleeps until [`Session::poll_timeout`] and
/// then calls [`Session::handle_timeout`]. Every [`Action`] returned is to
/// be carried out in order. Nothing here panics or fails on any input.
#[derive(Debug, Clone)]
pub struct Session<R> {
    config: SessionConfig,
    rng: R,
    /// Latest time seen; time never runs backwards inside the session.
    now: Instant,

    // RFC 5880 §6.8.1 state variables (Demand mode and authentication are
    // not implemented: bfd.DemandMode and bfd.AuthType stay 0).
    /// bfd.SessionState
    state: State,
    /// bfd.RemoteSessionState
    remote_state: State,
    /// bfd.LocalDiscr
    local_discriminator: NonZeroU32,
    /// bfd.RemoteDiscr; zero until the peer is heard, and again after a
    /// Detection Time without a packet.
    remote_discriminator: u32,
    /// bfd.LocalDiag
    local_diagnostic: Diagnostic,
    /// bfd.RemoteMinRxInterval
    remote_min_rx: Duration,
    /// bfd.RemoteDemandMode
    remote_demand: bool,

    // From the last accepted packet, for the Detection Time (§6.8.4).
    remote_desired_min_tx: Duration,
    /// Zero: nothing heard since the start or the last detection timeout.
    remote_detect_multiplier: u8,
    remote_diagnostic: Diagnostic,
    last_received: Option<Instant>,

    // §6.8.3: the local intervals in force, which lag the advertised ones
    // while a Poll Sequence is outstanding.
    /// The bfd.DesiredMinTxInterval the transmit interval is computed from.
    tx_in_force: Duration,
    /// The bfd.RequiredMinRxInterval the Detection Time is computed from.
    rx_in_force: Duration,
    poll: Poll,

    next_transmit: Option<Instant>,
    /// The transmit interval `next_transmit` was drawn from.
    transmit_interval_in_use: Option<Duration>,
}

impl<R: Rng> Session<R> {
    /// A session in Down, sending its first packet at once (`poll_timeout`
    /// is `now`). `local_discriminator` is bfd.LocalDiscr: the caller keeps
    /// it unique among its sessions (RFC 5880 §6.8.1).
    pub fn new(
        config: SessionConfig,
        local_discriminator: NonZeroU32,
        now: Instant,
        rng: R,
    ) -> Session<R> {
        let tx_in_force = config.desired_min_tx().max(SLOW_TX_INTERVAL);
        Session {
            config,
            rng,
            now,
            state: State::Down,
            remote_state: State::Down,
            local_discriminator,
            remote_discriminator: 0,
            local_diagnostic: Diagnostic::NoDiagnostic,
            remote_min_rx: INITIAL_REMOTE_MIN_RX,
            remote_demand: false,
            remote_desired_min_tx: Duration::ZERO,
            remote_detect_multiplier: 0,
            remote_diagnostic: Diagnostic::NoDiagnostic,
            last_received: None,
            tx_in_force,
            rx_in_force: config.required_min_rx(),
            poll: Poll::Idle,
            next_transmit: Some(now),
            transmit_interval_in_use: Some(tx_in_force),
        }
    }

    /// bfd.SessionState.
    pub fn state(&self) -> State {
        self.state
    }

    /// bfd.RemoteSessionState: the State of the last accepted packet (Down
    /// before any, and after a detection timeout).
    pub fn remote_state(&self) -> State {
        self.remote_state
    }

    /// bfd.LocalDiag: why the session last changed state (No Diagnostic
    /// once it came up again).
    pub fn local_diagnostic(&self) -> Diagnostic {
        self.local_diagnostic
    }

    /// The Diagnostic of the last accepted packet.
    pub fn remote_diagnostic(&self) -> Diagnostic {
        self.remote_diagnostic
    }

    /// bfd.LocalDiscr: a packet whose Your Discriminator is non-zero
    /// belongs to this session only if it equals this.
    pub fn local_discriminator(&self) -> NonZeroU32 {
        self.local_discriminator
    }

    /// bfd.RemoteDiscr, once the peer has been heard.
    pub fn remote_discriminator(&self) -> Option<NonZeroU32> {
        NonZeroU32::new(self.remote_discriminator)
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Whether a Poll Sequence is outstanding.
    pub fn polling(&self) -> bool {
        self.poll != Poll::Idle
    }

    /// The negotiated transmit interval before jitter (RFC 5880 §6.8.2,
    /// §6.8.7): the larger of bfd.DesiredMinTxInterval (at least one second
    /// while not Up) and bfd.RemoteMinRxInterval. `None` while periodic
    /// transmission is forbidden: the peer asked for no packets (Required
    /// Min RX Interval zero) or runs Demand mode with both sides Up.
    pub fn transmit_interval(&self) -> Option<Duration> {
        if self.remote_min_rx.is_zero() {
            return None;
        }
        // §6.8.7: "MUST NOT periodically transmit BFD Control packets if
        // Demand mode is active on the remote system (bfd.RemoteDemandMode
        // is 1, bfd.SessionState is Up, and bfd.RemoteSessionState is Up)
        // and a Poll Sequence is not being transmitted."
        if self.remote_demand
            && self.state == State::Up
            && self.remote_state == State::Up
            && self.poll == Poll::Idle
        {
            return None;
        }
        Some(self.tx_in_force.max(self.remote_min_rx))
    }

    /// The interval the peer is agreed to send at: the larger of our
    /// bfd.RequiredMinRxInterval (in force) and its Desired Min TX Interval.
    /// `None` until a packet has been accepted.
    pub fn receive_interval(&self) -> Option<Duration> {
        if self.remote_detect_multiplier == 0 {
            return None;
        }
        Some(self.rx_in_force.max(self.remote_desired_min_tx))
    }

    /// RFC 5880 §6.8.4: "the Detection Time ... is equal to the value of
    /// Detect Mult received from the remote system, multiplied by the
    /// agreed transmit interval of the remote system (the greater of
    /// bfd.RequiredMinRxInterval and the last received Desired Min TX
    /// Interval)". `None` until a packet has been accepted.
    pub fn detection_time(&self) -> Option<Duration> {
        let interval = self.receive_interval()?;
        Some(interval.saturating_mul(u32::from(self.remote_detect_multiplier)))
    }

    /// The earliest deadline: the next periodic packet or the end of the
    /// Detection Time. `None` when neither runs. After `handle_timeout(now)`
    /// it lies after `now`; after another call it may be due already (a
    /// shorter Detection Time, a new session): then call `handle_timeout`
    /// at once.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.next_transmit, self.detection_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Run what is due at `now`: the detection timeout (§6.8.4), then the
    /// periodic packet (§6.8.7).
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Action> {
        self.advance(now);
        let mut actions = Vec::new();
        if self.detection_deadline().is_some_and(|at| at <= self.now) {
            self.detection_expired(&mut actions);
        }
        if self.next_transmit.is_some_and(|at| at <= self.now) {
            actions.push(Action::Transmit(self.packet(false)));
            self.schedule_transmit();
        }
        actions
    }

    /// A received packet, already decoded (which made the first checks of
    /// RFC 5880 §6.8.6) and matched to this session by the caller.
    ///
    /// Runs the rest of §6.8.6 in order: the packet checks of
    /// [`ControlPacket::check`], a non-zero Your Discriminator that is not
    /// ours, the A bit without authentication in use. `Err` is a discarded
    /// packet; nothing changed.
    ///
    /// An accepted packet updates the remote variables, ends our Poll
    /// Sequence if it carries F, restarts the Detection Time, moves the
    /// state machine (§6.2: Down→Init on Down, Down→Up on Init, Init→Up on
    /// Init or Up, Up→Down on Down, and any→Down with diagnostic 3 on
    /// AdminDown) and answers P with F at once (§6.8.7). While we are
    /// AdminDown the RFC discards the packet after updating the remote
    /// variables: the state machine does not run, but the Poll is still
    /// answered (§6.8.7: "without respect to the session state").
    pub fn handle_packet(
        &mut self,
        now: Instant,
        packet: &ControlPacket,
    ) -> Result<Vec<Action>, Discard> {
        self.advance(now);
        packet.check()?;
        // "If the Your Discriminator field is nonzero, it MUST be used to
        // select the session ... If no session is found, the packet MUST be
        // discarded."
        if packet.your_discriminator != 0
            && packet.your_discriminator != self.local_discriminator.get()
        {
            return Err(Discard::YourDiscriminatorUnknown);
        }
        // "If the A bit is set and no authentication is in use (bfd.AuthType
        // is zero), the packet MUST be discarded."
        if packet.authentication.is_some() {
            return Err(Discard::AuthenticationNotConfigured);
        }

        self.remote_discriminator = packet.my_discriminator;
        self.remote_state = packet.state;
        self.remote_demand = packet.demand;
        self.remote_min_rx = from_micros(packet.required_min_rx_us);
        self.remote_desired_min_tx = from_micros(packet.desired_min_tx_us);
        self.remote_detect_multiplier = packet.detect_multiplier;
        self.remote_diagnostic = packet.diagnostic;
        // "If the packet was not discarded, it has been received for
        // purposes of the Detection Time expiration rules in section 6.8.4."
        self.last_received = Some(self.now);
        // "If a Poll Sequence is being transmitted by the local system and
        // the Final (F) bit in the received packet is set, the Poll Sequence
        // MUST be terminated."
        if packet.final_ {
            self.final_received();
        }
        self.transmit_interval_changed();

        let mut actions = Vec::new();
        if self.state != State::AdminDown {
            self.run_state_machine(packet.state, &mut actions);
        }
        // "If the Poll (P) bit is set, send a BFD Control packet to the
        // remote system with the Poll (P) bit clear, and the Final (F) bit
        // set."
        if packet.poll {
            actions.push(Action::Transmit(self.packet(true)));
        }
        Ok(actions)
    }

    /// New local intervals or multiplier (a reload), without resetting the
    /// session. RFC 5880 §6.8.3: a change of either interval starts a Poll
    /// Sequence carried on the periodic packets (§6.5: "additional packets
    /// MUST NOT be sent"); while Up, an increase of DesiredMinTxInterval
    /// and a reduction of RequiredMinRxInterval only take effect once the
    /// Final arrives, so neither side's Detection Time is ever shorter than
    /// the real packet spacing. §6.8.12: a new multiplier simply goes out
    /// in the next packet. Re-read [`Session::poll_timeout`] afterwards.
    pub fn set_config(&mut self, now: Instant, config: SessionConfig) {
        self.advance(now);
        let (old_tx, old_rx) = self.advertised();
        self.config = config;
        self.advertised_changed(old_tx, old_rx);
        self.transmit_interval_changed();
    }

    /// Take the session administratively down (RFC 5880 §6.8.16) with
    /// `diagnostic` — Administratively Down (7) for a planned stop, Path
    /// Down (5) when something outside BFD knows the path failed. Sends an
    /// AdminDown packet at once; the session keeps sending AdminDown
    /// packets at the slow rate until [`Session::enable`] (the RFC wants at
    /// least a Detection Time of them; a daemon that stops may drop the
    /// session after the first).
    pub fn admin_down(&mut self, now: Instant, diagnostic: Diagnostic) -> Vec<Action> {
        self.advance(now);
        let mut actions = Vec::new();
        self.set_state(State::AdminDown, diagnostic, &mut actions);
        actions
    }

    /// Leave AdminDown: "If enabling session, Set bfd.SessionState to
    /// Down" (RFC 5880 §6.8.16). Nothing happens in any other state.
    pub fn enable(&mut self, now: Instant) -> Vec<Action> {
        self.advance(now);
        let mut actions = Vec::new();
        if self.state == State::AdminDown {
            self.set_state(State::Down, Diagnostic::NoDiagnostic, &mut actions);
        }
        actions
    }

    /// RFC 5880 §6.8.6, the state table after the checks.
    fn run_state_machine(&mut self, received: State, actions: &mut Vec<Action>) {
        let next = match (self.state, received) {
            // "If received state is AdminDown: If bfd.SessionState is not
            // Down: Set bfd.LocalDiag to 3 (Neighbor signaled session down),
            // Set bfd.SessionState to Down"
            (State::Down, State::AdminDown) => None,
            (_, State::AdminDown) => Some((State::Down, Diagnostic::NeighborSignaledSessionDown)),
            (State::Down, State::Down) => Some((State::Init, Diagnostic::NoDiagnostic)),
            (State::Down, State::Init) => Some((State::Up, Diagnostic::NoDiagnostic)),
            (State::Init, State::Init | State::Up) => Some((State::Up, Diagnostic::NoDiagnostic)),
            (State::Up, State::Down) => {
                Some((State::Down, Diagnostic::NeighborSignaledSessionDown))
            }
            _ => None,
        };
        if let Some((state, diagnostic)) = next {
            self.set_state(state, diagnostic, actions);
        }
    }

    /// RFC 5880 §6.8.4: no packet for a Detection Time. "bfd.RemoteDiscr
    /// ... MUST be set to zero" and, in Init or Up, the session goes Down
    /// with diagnostic 1. The other remote variables go back to their
    /// initial values too, so that a peer that vanished after asking for
    /// no packets (Required Min RX 0) cannot silence us for good.
    fn detection_expired(&mut self, actions: &mut Vec<Action>) {
        self.remote_discriminator = 0;
        self.remote_state = State::Down;
        self.remote_min_rx = INITIAL_REMOTE_MIN_RX;
        self.remote_demand = false;
        self.remote_detect_multiplier = 0;
        self.last_received = None;
        self.transmit_interval_changed();
        if matches!(self.state, State::Init | State::Up) {
            self.set_state(
                State::Down,
                Diagnostic::ControlDetectionTimeExpired,
                actions,
            );
        }
    }

    /// A state change: reported, the advertised DesiredMinTx follows
    /// (§6.8.3 slow rate when not Up), and a packet with the new state goes
    /// out at once rather than waiting for the timer, as FRR and BIRD do,
    /// so that the three-way handshake takes one round trip per step.
    fn set_state(&mut self, to: State, diagnostic: Diagnostic, actions: &mut Vec<Action>) {
        if to == self.state {
            return;
        }
        let from = self.state;
        let (old_tx, old_rx) = self.advertised();
        self.state = to;
        self.local_diagnostic = diagnostic;
        actions.push(Action::StateChanged {
            from,
            to,
            diagnostic,
        });
        self.advertised_changed(old_tx, old_rx);
        self.transmit_interval_changed();
        actions.push(Action::Transmit(self.packet(false)));
        self.schedule_transmit();
    }

    /// bfd.DesiredMinTxInterval and bfd.RequiredMinRxInterval as sent.
    fn advertised(&self) -> (Duration, Duration) {
        let configured = self.config.desired_min_tx();
        let tx = if self.state == State::Up {
            configured
        } else {
            configured.max(SLOW_TX_INTERVAL)
        };
        (tx, self.config.required_min_rx())
    }

    /// RFC 5880 §6.8.3 after the advertised intervals may have changed.
    fn advertised_changed(&mut self, old_tx: Duration, old_rx: Duration) {
        let (tx, rx) = self.advertised();
        if (tx, rx) == (old_tx, old_rx) {
            return;
        }
        if self.state == State::Up {
            // A faster transmit rate and a longer detection time are safe at
            // once; the opposite waits for the Final.
            self.tx_in_force = self.tx_in_force.min(tx);
            self.rx_in_force = self.rx_in_force.max(rx);
        } else {
            self.tx_in_force = tx;
            self.rx_in_force = rx;
        }
        // "If either bfd.DesiredMinTxInterval is changed or
        // bfd.RequiredMinRxInterval is changed, a Poll Sequence MUST be
        // initiated"
        self.poll = match self.poll {
            Poll::Idle => Poll::Active {
                values_changed: false,
            },
            Poll::Active { .. } => Poll::Active {
                values_changed: true,
            },
        };
    }

    fn final_received(&mut self) {
        match self.poll {
            Poll::Idle => {}
            Poll::Active {
                values_changed: true,
            } => {
                self.poll = Poll::Active {
                    values_changed: false,
                };
            }
            Poll::Active {
                values_changed: false,
            } => {
                self.poll = Poll::Idle;
                (self.tx_in_force, self.rx_in_force) = self.advertised();
            }
        }
    }

    /// After anything that may change the transmit interval. §6.8.3: "If
    /// the local system reduces its transmit interval due to
    /// bfd.RemoteMinRxInterval being reduced ... the local system MUST
    /// honor the new interval immediately": a shorter interval reschedules
    /// the next packet when that brings it closer; a longer one applies
    /// from the next packet on.
    fn transmit_interval_changed(&mut self) {
        let interval = self.transmit_interval();
        match (self.transmit_interval_in_use, interval) {
            (_, None) => {
                self.next_transmit = None;
                self.transmit_interval_in_use = None;
            }
            (None, Some(_)) => self.schedule_transmit(),
            (Some(old), Some(new)) if new < old => {
                let wait = jitter(new, self.config.detect_multiplier(), &mut self.rng);
                if let Some(candidate) = self.after(wait) {
                    if self.next_transmit.is_none_or(|at| candidate < at) {
                        self.next_transmit = Some(candidate);
                    }
                }
                self.transmit_interval_in_use = Some(new);
            }
            (Some(_), Some(new)) => self.transmit_interval_in_use = Some(new),
        }
    }

    /// The next periodic packet, jittered (§6.8.7), or none when periodic
    /// transmission is forbidden.
    fn schedule_transmit(&mut self) {
        let interval = self.transmit_interval();
        self.transmit_interval_in_use = interval;
        self.next_transmit = interval.and_then(|interval| {
            let wait = jitter(interval, self.config.detect_multiplier(), &mut self.rng);
            self.after(wait)
        });
    }

    fn detection_deadline(&self) -> Option<Instant> {
        self.last_received?.checked_add(self.detection_time()?)
    }

    /// The packet we send now (§6.8.7). P while polling, except in the
    /// answer to a Poll: "A BFD Control packet MUST NOT have both the Poll
    /// (P) and Final (F) bits set."
    fn packet(&self, final_: bool) -> ControlPacket {
        let (tx, rx) = self.advertised();
        ControlPacket {
            diagnostic: self.local_diagnostic,
            state: self.state,
            poll: !final_ && self.poll != Poll::Idle,
            final_,
            control_plane_independent: false,
            demand: false,
            multipoint: false,
            detect_multiplier: self.config.detect_multiplier(),
            my_discriminator: self.local_discriminator.get(),
            your_discriminator: self.remote_discriminator,
            desired_min_tx_us: to_micros(tx),
            required_min_rx_us: to_micros(rx),
            // We never take Echo packets.
            required_min_echo_rx_us: 0,
            authentication: None,
        }
    }

    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// `now + wait`, at least [`MIN_TIMER`] ahead; `None` (never) if it
    /// does not fit an `Instant`.
    fn after(&self, wait: Duration) -> Option<Instant> {
        self.now.checked_add(wait.max(MIN_TIMER))
    }
}
