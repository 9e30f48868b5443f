//! The one task that runs every BFD session: it reads the listening
//! sockets, matches each packet to its session (RFC 5880 §6.8.6: by a
//! non-zero Your Discriminator, else by the source address), fires the
//! sessions' timers and sends what they ask for.

use std::collections::BTreeMap;
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use anyvip_bfd::{Action, ControlPacket, Diagnostic, Session, State};
use anyvip_fsm::{Rng as _, SplitMix64};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use super::socket::{self, Datagram};
use super::{BfdReport, BfdStatus, Command, DROP_NOT_A_PEER, DROP_RECEIVE_ERROR, DROP_TTL};
use crate::config::{Bfd as Settings, Peer};

type Jitter = Box<dyn FnMut() -> u32 + Send>;

/// Datagrams read per wake-up before timers get their turn.
const READ_BATCH: usize = 64;
/// A Control packet with the longest authentication section is 255 octets;
/// one more tells a longer datagram apart.
const BUFFER: usize = 256;
/// At a stop the AdminDown packet goes out this many times, this far
/// apart, so one lost datagram does not turn a planned stop into a
/// detection timeout on the router.
const ADMIN_DOWN_REPEATS: usize = 3;
const ADMIN_DOWN_SPACING: Duration = Duration::from_millis(50);

struct Entry {
    peer: IpAddr,
    name: String,
    local: Option<IpAddr>,
    settings: Settings,
    session: Session<Jitter>,
    socket: UdpSocket,
    status: BfdStatus,
}

struct Listener {
    socket: UdpSocket,
    v6: bool,
    multihop: bool,
}

pub(super) struct Runner {
    entries: Vec<Entry>,
    listeners: Vec<Listener>,
    rng: SplitMix64,
    report: watch::Sender<BfdReport>,
    down: mpsc::UnboundedSender<IpAddr>,
    dropped: BTreeMap<&'static str, u64>,
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

/// The index of a listener with a datagram waiting.
async fn readable(listeners: &[Listener]) -> usize {
    if listeners.is_empty() {
        return std::future::pending().await;
    }
    poll_fn(|cx| {
        for (i, l) in listeners.iter().enumerate() {
            if l.socket.poll_recv_ready(cx).is_ready() {
                return Poll::Ready(i);
            }
        }
        Poll::Pending
    })
    .await
}

impl Runner {
    pub(super) fn new(
        report: watch::Sender<BfdReport>,
        down: mpsc::UnboundedSender<IpAddr>,
    ) -> Runner {
        Runner {
            entries: Vec::new(),
            listeners: Vec::new(),
            rng: SplitMix64::from_entropy(),
            report,
            down,
            dropped: BTreeMap::new(),
        }
    }

    pub(super) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut buf = [0u8; BUFFER];
        loop {
            let deadline = self
                .entries
                .iter()
                .filter_map(|e| e.session.poll_timeout())
                .min();
            tokio::select! {
                i = readable(&self.listeners) => self.read(i, &mut buf),
                () = sleep_until(deadline) => self.timeouts(Instant::now()),
                command = commands.recv() => match command {
                    Some(Command::Reconfigure(peers)) => {
                        if let Err(e) = self.reconfigure(&peers) {
                            tracing::error!(error = %e, "BFD: cannot listen; sessions of that kind stay Down");
                        }
                    }
                    Some(Command::Stop(reply)) => {
                        self.stop().await;
                        let _ = reply.send(());
                        return;
                    }
                    None => {
                        self.stop().await;
                        return;
                    }
                },
            }
            self.publish();
        }
    }

    /// Bring the sessions in line with `peers`. A listener that cannot be
    /// bound is an error; everything else is applied regardless.
    pub(super) fn reconfigure(&mut self, peers: &[Peer]) -> io::Result<()> {
        let now = Instant::now();
        let wanted: Vec<(&Peer, Settings)> =
            peers.iter().filter_map(|p| Some((p, p.bfd?))).collect();
        // Gone, or changed in what the session is bound to: AdminDown, then
        // dropped (and made afresh below if still wanted).
        let mut kept = Vec::new();
        for mut e in std::mem::take(&mut self.entries) {
            let same = wanted.iter().any(|(p, s)| {
                p.address == e.peer
                    && p.local_address == e.local
                    && s.multihop == e.settings.multihop
            });
            if same {
                kept.push(e);
            } else {
                tracing::info!(peer = %e.name, "BFD session removed");
                let actions = e.session.admin_down(now, Diagnostic::AdministrativelyDown);
                act(&mut e, actions, &self.down);
            }
        }
        self.entries = kept;
        for (p, settings) in wanted {
            if let Some(e) = self.entries.iter_mut().find(|e| e.peer == p.address) {
                e.name.clone_from(&p.name);
                if e.settings != settings {
                    if let Some(config) = settings.session_config() {
                        tracing::info!(peer = %e.name, interval = ?settings.interval, multiplier = settings.multiplier, "BFD timers changed: Poll Sequence");
                        e.session.set_config(now, config);
                        e.settings = settings;
                        e.status.interval = settings.interval;
                        e.status.multiplier = settings.multiplier;
                    }
                }
                continue;
            }
            match self.entry(p, settings, now) {
                Ok(e) => {
                    tracing::info!(peer = %e.name, multihop = settings.multihop, interval = ?settings.interval, multiplier = settings.multiplier, "BFD session started");
                    self.entries.push(e);
                }
                Err(e) => {
                    tracing::error!(peer = %p.name, error = %e, "BFD: cannot open the session's socket")
                }
            }
        }
        let result = self.listen();
        self.publish();
        result
    }

    /// A listening socket for every (family, kind) a session needs.
    fn listen(&mut self) -> io::Result<()> {
        let needed: Vec<(bool, bool)> = self
            .entries
            .iter()
            .map(|e| (e.peer.is_ipv6(), e.settings.multihop))
            .collect();
        for (v6, multihop) in needed {
            if self
                .listeners
                .iter()
                .any(|l| l.v6 == v6 && l.multihop == multihop)
            {
                continue;
            }
            let port = socket::port(multihop);
            let socket = socket::listen(v6, port).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "BFD: cannot listen on UDP port {port} ({}): {e}",
                        if v6 { "IPv6" } else { "IPv4" }
                    ),
                )
            })?;
            self.listeners.push(Listener {
                socket,
                v6,
                multihop,
            });
        }
        Ok(())
    }

    fn entry(&mut self, p: &Peer, settings: Settings, now: Instant) -> io::Result<Entry> {
        let config = settings.session_config().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "BFD timers out of range")
        })?;
        let rng = &mut self.rng;
        let socket = socket::sender(p.address, p.local_address, || rng.next_u32())?;
        let discriminator = self.discriminator();
        let mut jitter =
            SplitMix64::new(u64::from(self.rng.next_u32()) << 32 | u64::from(self.rng.next_u32()));
        let session = Session::new(
            config,
            discriminator,
            now,
            Box::new(move || jitter.next_u32()) as Jitter,
        );
        let status = BfdStatus {
            state: session.state(),
            remote_state: session.remote_state(),
            since: SystemTime::now(),
            last_diagnostic: None,
            remote_diagnostic: session.remote_diagnostic(),
            multihop: settings.multihop,
            interval: settings.interval,
            multiplier: settings.multiplier,
            tx_interval: None,
            rx_interval: None,
            detection_time: None,
            local_discriminator: discriminator.get(),
            remote_discriminator: None,
            transitions: BTreeMap::new(),
            packets_sent: 0,
            packets_received: 0,
            send_errors: 0,
        };
        Ok(Entry {
            peer: p.address,
            name: p.name.clone(),
            local: p.local_address,
            settings,
            session,
            socket,
            status,
        })
    }

    /// RFC 5880 §6.8.1: bfd.LocalDiscr "MUST be unique across all BFD
    /// sessions on this system, and nonzero"; random, so a restarted
    /// daemon does not reuse the last one.
    fn discriminator(&mut self) -> NonZeroU32 {
        loop {
            if let Some(d) = NonZeroU32::new(self.rng.next_u32()) {
                if !self
                    .entries
                    .iter()
                    .any(|e| e.session.local_discriminator() == d)
                {
                    return d;
                }
            }
        }
    }

    fn read(&mut self, i: usize, buf: &mut [u8]) {
        let Some(multihop) = self.listeners.get(i).map(|l| l.multihop) else {
            return;
        };
        for _ in 0..READ_BATCH {
            let Some(listener) = self.listeners.get(i) else {
                return;
            };
            match socket::try_receive(&listener.socket, buf) {
                Ok(d) => {
                    let bytes = buf.get(..d.len).unwrap_or_default();
                    self.datagram(d, bytes, multihop);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::debug!(error = %e, "BFD: receive failed");
                    self.drop_count(DROP_RECEIVE_ERROR);
                    return;
                }
            }
        }
    }

    fn drop_count(&mut self, reason: &'static str) {
        *self.dropped.entry(reason).or_default() += 1;
    }

    /// One datagram from a listener of the given kind.
    fn datagram(&mut self, d: Datagram, bytes: &[u8], multihop: bool) {
        // Only configured peers, and only on the port of their kind.
        if !self
            .entries
            .iter()
            .any(|e| e.peer == d.source && e.settings.multihop == multihop)
        {
            tracing::debug!(source = %d.source, "BFD packet from an address that is no BFD peer; dropped");
            self.drop_count(DROP_NOT_A_PEER);
            return;
        }
        // RFC 5881 §5: "received with a TTL or Hop Limit other than 255
        // ... MUST be discarded" (single hop; RFC 5082 GTSM).
        if !socket::ttl_ok(&d, multihop) {
            self.drop_count(DROP_TTL);
            return;
        }
        let packet = if d.truncated {
            // Longer than any Control packet: the Length check fails on
            // the part we have, or we say so ourselves.
            ControlPacket::decode(bytes).and(Err(anyvip_bfd::Discard::LengthExceedsPayload))
        } else {
            ControlPacket::decode(bytes)
        };
        let packet = match packet {
            Ok(p) => p,
            Err(discard) => {
                self.drop_count(discard.as_str());
                return;
            }
        };
        // RFC 5880 §6.8.6: "If the Your Discriminator field is nonzero, it
        // MUST be used to select the session ... Otherwise ... selected
        // based on some combination of other fields": the source address.
        let index = match NonZeroU32::new(packet.your_discriminator) {
            Some(yours) => self
                .entries
                .iter()
                .position(|e| e.session.local_discriminator() == yours),
            None => self
                .entries
                .iter()
                .position(|e| e.peer == d.source && e.settings.multihop == multihop),
        };
        let Some(entry) = index.and_then(|i| self.entries.get_mut(i)) else {
            self.drop_count(anyvip_bfd::Discard::YourDiscriminatorUnknown.as_str());
            return;
        };
        match entry.session.handle_packet(Instant::now(), &packet) {
            Ok(actions) => {
                entry.status.packets_received += 1;
                act(entry, actions, &self.down);
            }
            Err(discard) => {
                *self.dropped.entry(discard.as_str()).or_default() += 1;
            }
        }
    }

    fn timeouts(&mut self, now: Instant) {
        for e in &mut self.entries {
            if e.session.poll_timeout().is_some_and(|at| at <= now) {
                let actions = e.session.handle_timeout(now);
                act(e, actions, &self.down);
            }
        }
    }

    /// Planned stop: AdminDown / Administratively Down on every session,
    /// sent a few times.
    async fn stop(&mut self) {
        let now = Instant::now();
        let mut last: Vec<(usize, Vec<u8>)> = Vec::new();
        for (i, e) in self.entries.iter_mut().enumerate() {
            let actions = e.session.admin_down(now, Diagnostic::AdministrativelyDown);
            for a in &actions {
                if let Action::Transmit(p) = a {
                    last.push((i, p.encode()));
                }
            }
            act(e, actions, &self.down);
        }
        self.publish();
        for _ in 1..ADMIN_DOWN_REPEATS {
            tokio::time::sleep(ADMIN_DOWN_SPACING).await;
            for (i, bytes) in &last {
                if let Some(e) = self.entries.get_mut(*i) {
                    send(e, bytes);
                }
            }
        }
        tracing::info!(
            sessions = self.entries.len(),
            "BFD sessions administratively down"
        );
    }

    fn publish(&mut self) {
        let sessions = self
            .entries
            .iter_mut()
            .map(|e| {
                refresh(e);
                (e.peer, e.status.clone())
            })
            .collect();
        let dropped = self.dropped.clone();
        self.report.send_if_modified(|r| {
            let new = BfdReport { sessions, dropped };
            if *r == new {
                false
            } else {
                *r = new;
                true
            }
        });
    }
}

/// The session's negotiated values into its status.
fn refresh(e: &mut Entry) {
    let s = &e.session;
    e.status.state = s.state();
    e.status.remote_state = s.remote_state();
    e.status.remote_diagnostic = s.remote_diagnostic();
    e.status.tx_interval = s.transmit_interval();
    e.status.rx_interval = s.receive_interval();
    e.status.detection_time = s.detection_time();
    e.status.remote_discriminator = s.remote_discriminator().map(NonZeroU32::get);
}

/// Carry out a session's actions in order.
fn act(e: &mut Entry, actions: Vec<Action>, down: &mpsc::UnboundedSender<IpAddr>) {
    for action in actions {
        match action {
            Action::Transmit(packet) => send(e, &packet.encode()),
            Action::StateChanged {
                from,
                to,
                diagnostic,
            } => {
                tracing::info!(peer = %e.name, from = from.as_str(), to = to.as_str(), diagnostic = diagnostic.as_str(), "BFD session state changed");
                e.status.since = SystemTime::now();
                if matches!(to, State::Down | State::AdminDown) {
                    e.status.last_diagnostic = Some(diagnostic);
                }
                *e.status
                    .transitions
                    .entry((to.as_str(), diagnostic.as_str()))
                    .or_default() += 1;
                // RFC 5882 §3.2: the path is gone, the BGP session with it.
                // Not when the router took its side down on purpose
                // (AdminDown): "the receiving system ... SHOULD NOT" act.
                if from == State::Up
                    && to == State::Down
                    && e.session.remote_state() != State::AdminDown
                {
                    let _ = down.send(e.peer);
                }
            }
        }
    }
}

fn send(e: &mut Entry, bytes: &[u8]) {
    let to = SocketAddr::new(e.peer, socket::port(e.settings.multihop));
    match e.socket.try_send_to(bytes, to) {
        Ok(_) => e.status.packets_sent += 1,
        Err(error) => {
            e.status.send_errors += 1;
            tracing::debug!(peer = %e.name, %error, "BFD: send failed");
        }
    }
}
