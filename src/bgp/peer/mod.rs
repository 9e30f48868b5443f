//! One tokio task per configured peer: it owns the connections, drives the
//! pure session FSM (`anyvip-fsm`) and carries out its actions, and keeps
//! the peer in step with the desired announcements.
//!
//! By concern:
//! - this module: the task, its `select!` loop and the FSM driving;
//! - [`inbound`]: bytes to messages, and what the peer sent us, counted;
//! - [`outbound`]: the UPDATEs we owe the peer (converge, End-of-RIB,
//!   route refresh);
//! - [`writer`]: per connection, a bounded queue and a task that writes it
//!   to the socket.
//!
//! The task never waits on a socket write: messages go to the connection's
//! writer, which takes them at once or reports its queue full — then that
//! session is reset with Cease / Out of Resources (RFC 4486 §4 subcode 8).
//! So a peer that stops reading stalls nothing, not even its own task:
//! bytes are still decoded with the context in force when they are read,
//! keepalives still come from the same loop that reacts to health changes
//! (design invariant 4), and a peer that sends garbage or reads nothing
//! only ever closes its own session (invariant 6).

mod inbound;
mod outbound;
mod writer;

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyvip_fsm::{
    Action, ConnectionId, DownReason, Event, Fsm, Negotiated, SessionConfig, State,
    OPEN_SENT_HOLD_TIME,
};
use anyvip_proto::notification::cease;
use anyvip_proto::{Context, ErrorCode, Family, Message, Notification};
use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::bgp::socket::{self, Transport};
use crate::config::{Peer, Speaker};
use crate::vip::Published;
use inbound::Inbound;
use outbound::Outbound;
use writer::{Failure, Full, Writer};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The connect-retry ceiling (RFC 4271 §10 suggests 120 s as the base; we
/// back off from a short base to this).
const CONNECT_RETRY_MAX: Duration = Duration::from_secs(30);

/// The writer queue holds this many messages, plus two per desired route.
///
/// Counted in messages, not bytes: what the bound must admit is a burst,
/// and every burst the task produces is a number of messages — one UPDATE
/// per prefix, at most one withdrawal and one announcement per route in a
/// single change, the whole set plus one End-of-RIB per family after
/// Established — put in the queue in one go (the runtime is single
/// threaded: the writer cannot drain it in between). The base covers
/// KEEPALIVEs and everyday changes. Memory stays bounded as a message is
/// at most 4096 octets (RFC 4271 §4.1); ours are under 100.
///
/// A queue that overflows means the peer has read nothing while all that
/// piled up, on top of what the kernel buffers hold: the session is reset.
const QUEUE_BASE: usize = 256;

fn queue_capacity(routes: usize) -> usize {
    QUEUE_BASE.saturating_add(routes.saturating_mul(2))
}

/// How long a write may make no progress before the connection is dead:
/// our hold time. A peer that reads nothing for that long is dead by the
/// rule BGP applies to us (RFC 4271 §6.5), and every withdrawal we owe it
/// is stuck; resetting lets it drop our routes. Without a hold time, the
/// large OpenSent hold time (RFC 4271 §8.2.2 suggests 4 minutes).
fn stall_limit(peer: &Peer) -> Duration {
    peer.hold_time.duration().unwrap_or(OPEN_SENT_HOLD_TIME)
}

/// What the rest of the daemon may see of a peer (status, metrics).
#[derive(Debug, Clone, PartialEq)]
pub struct PeerStatus {
    pub name: String,
    pub address: SocketAddr,
    pub state: State,
    /// When `state` was entered.
    pub since: SystemTime,
    pub last_error: Option<String>,
    pub established_transitions: u64,
    pub messages_received: u64,
    /// Messages handed to the connection's writer (a session reset drops
    /// what was still queued).
    pub messages_sent: u64,
    pub updates_received: u64,
    /// UPDATEs handed to the writer, as `messages_sent`.
    pub updates_sent: u64,
    /// Prefixes announced to us, by family (counted, then dropped).
    pub prefixes_received: BTreeMap<String, u64>,
    /// Prefixes we currently announce on this session.
    pub prefixes_sent: usize,
    /// The same, by family ("ipv4-unicast", "ipv6-unicast").
    pub prefixes_sent_by_family: BTreeMap<String, u64>,
    /// The last version of the desired set this peer has acted on: its
    /// UPDATEs (withdrawals first) are in the connection's writer queue,
    /// or there was nothing to send because the session is down. Handed
    /// over, not yet on the wire: the writer sends them without the peer
    /// task's help, and if the peer does not read them, the session is
    /// reset (which withdraws everything on the peer's side).
    pub converged_version: u64,
    /// The peer's BFD session, when it has one (filled in by the daemon
    /// from the BFD task's report).
    pub bfd: Option<crate::bfd::BfdStatus>,
}

/// Instructions from the daemon to a running peer task.
#[derive(Debug)]
pub enum Command {
    /// Close with Cease / Administrative Shutdown and the RFC 9003 text,
    /// then end the task once the NOTIFICATION is written (or the writer
    /// gave up, within [`writer::CLOSE_FLUSH`]).
    Stop { message: Option<String> },
    /// The peer's BFD session fell from Up to Down (RFC 5882 §3.2): close
    /// at once with Cease / BFD Down (RFC 9384 subcode 10); the session
    /// reconnects as after any failure.
    BfdDown,
}

pub struct PeerHandle {
    pub commands: mpsc::Sender<Command>,
    pub status: watch::Receiver<PeerStatus>,
    pub incoming: mpsc::Sender<TcpStream>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Start the task for `peer`.
pub fn spawn(
    peer: Peer,
    speaker: &Speaker,
    desired: watch::Receiver<Arc<Published>>,
) -> PeerHandle {
    let (commands_tx, commands) = mpsc::channel(4);
    let (incoming_tx, incoming) = mpsc::channel(2);
    let (failures_tx, failures) = mpsc::unbounded_channel();
    let address = SocketAddr::new(peer.address, peer.port);
    let (status_tx, status) = watch::channel(PeerStatus {
        name: peer.name.clone(),
        address,
        state: State::Idle,
        since: SystemTime::now(),
        last_error: None,
        established_transitions: 0,
        messages_received: 0,
        messages_sent: 0,
        updates_received: 0,
        updates_sent: 0,
        prefixes_received: BTreeMap::new(),
        prefixes_sent: 0,
        prefixes_sent_by_family: BTreeMap::new(),
        converged_version: 0,
        bfd: None,
    });
    let mut session = SessionConfig::new(speaker.asn, speaker.router_id, peer.asn);
    session.hold_time = peer.hold_time;
    session.keepalive = peer.keepalive;
    session.families = peer.families.clone();
    session.passive = peer.passive;
    session.connect_retry = peer.connect_retry;
    session.connect_retry_max = CONNECT_RETRY_MAX.max(peer.connect_retry);
    session.route_refresh = true;
    let task = PeerTask {
        fsm: Fsm::new(session, Instant::now()),
        transport: Transport {
            remote: address,
            local: peer.local_address,
            ttl: peer.ttl,
            password: peer.password.clone(),
        },
        local_asn: speaker.asn,
        internal: peer.is_internal(speaker),
        peer,
        conns: Vec::new(),
        connecting: None,
        pending_accept: None,
        outbound: None,
        desired,
        status: status_tx,
        failures_tx,
        failed: Vec::new(),
        closing: Vec::new(),
    };
    let span = tracing::info_span!("peer", name = %task.peer.name);
    let task = tokio::spawn(tracing::Instrument::instrument(
        task.run(commands, incoming, failures),
        span,
    ));
    PeerHandle {
        commands: commands_tx,
        status,
        incoming: incoming_tx,
        task,
    }
}

/// One TCP connection to the peer: its two halves.
struct Conn {
    id: ConnectionId,
    inbound: Inbound,
    writer: Writer,
    /// Encoding and decoding context: plain until the session is
    /// Established on this connection (only OPEN, KEEPALIVE and
    /// NOTIFICATION come before).
    context: Context,
    local: Option<SocketAddr>,
    /// The writer's queue length, for the log.
    queue: usize,
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

struct PeerTask {
    peer: Peer,
    local_asn: anyvip_proto::Asn,
    internal: bool,
    fsm: Fsm,
    transport: Transport,
    conns: Vec<Conn>,
    connecting: Option<(ConnectionId, Connecting)>,
    pending_accept: Option<TcpStream>,
    /// Set while the session is Established.
    outbound: Option<Outbound>,
    desired: watch::Receiver<Arc<Published>>,
    status: watch::Sender<PeerStatus>,
    /// Given to every writer, to report a connection it gave up on.
    failures_tx: mpsc::UnboundedSender<Failure>,
    /// Connections dropped while carrying out actions (queue overflow),
    /// reported to the FSM once the current batch of actions is done.
    failed: Vec<Failure>,
    /// Writers of closed connections still flushing; a Stop waits for them.
    closing: Vec<JoinHandle<()>>,
}

/// Wait for bytes on any connection: (connection, result of the read).
async fn read_any(conns: &mut [Conn]) -> (ConnectionId, io::Result<usize>) {
    match conns {
        [] => std::future::pending().await,
        [a] => (a.id, a.inbound.read().await),
        [a, b, ..] => tokio::select! {
            r = a.inbound.read() => (a.id, r),
            r = b.inbound.read() => (b.id, r),
        },
    }
}

async fn connect_result(
    c: &mut Option<(ConnectionId, Connecting)>,
) -> (ConnectionId, io::Result<TcpStream>) {
    match c {
        Some((id, fut)) => (*id, fut.await),
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

impl PeerTask {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut incoming: mpsc::Receiver<TcpStream>,
        mut failures: mpsc::UnboundedReceiver<Failure>,
    ) {
        tracing::info!(address = %self.transport.remote, passive = self.peer.passive, "peer started");
        self.feed(Event::ManualStart);
        loop {
            tokio::select! {
                () = sleep_until(self.fsm.poll_timeout()) => self.feed(Event::Timeout),
                (id, result) = connect_result(&mut self.connecting) => {
                    self.connecting = None;
                    self.connected(id, result);
                }
                (id, result) = read_any(&mut self.conns) => self.received(id, result),
                Some(failure) = failures.recv() => self.writer_failed(failure),
                Some(stream) = incoming.recv() => self.accepted(stream),
                Ok(()) = self.desired.changed() => self.converge(),
                command = commands.recv() => match command {
                    Some(Command::Stop { message }) => {
                        self.feed(Event::ManualStop { shutdown_message: message });
                        break;
                    }
                    Some(Command::BfdDown) => {
                        tracing::warn!("BFD session down: closing the BGP session");
                        self.feed(Event::CeaseNow { subcode: cease::BFD_DOWN });
                        self.set_error("BFD session went down".to_string());
                    }
                    // The daemon is gone: nothing is left to announce for.
                    None => {
                        self.feed(Event::ManualStop { shutdown_message: None });
                        break;
                    }
                },
            }
            self.report_failed();
        }
        // The Cease is queued behind what was still unsent; give every
        // writer its (bounded) time to get it out before the task ends.
        for writer in std::mem::take(&mut self.closing) {
            let _ = writer.await;
        }
        tracing::info!("peer stopped");
    }

    fn connected(&mut self, id: ConnectionId, result: io::Result<TcpStream>) {
        match result {
            Ok(stream) => {
                tracing::debug!(local = ?stream.local_addr().ok(), "TCP connected");
                self.add_conn(id, stream);
                self.feed(Event::TcpConnected { connection: id });
            }
            Err(e) => {
                tracing::debug!(error = %e, "connect failed");
                self.set_error(format!("connect: {e}"));
                self.feed(Event::TcpConnectionFails { connection: id });
            }
        }
    }

    fn accepted(&mut self, stream: TcpStream) {
        if let Err(e) = socket::accept_setup(&stream, self.transport.ttl) {
            tracing::warn!(error = %e, "cannot set TTL on accepted connection; closing it");
            return;
        }
        self.pending_accept = Some(stream);
        self.feed(Event::TcpAccepted);
        // Neither accepted nor rejected explicitly: drop it.
        self.pending_accept = None;
    }

    /// Split the stream: the read half stays here, the write half goes to
    /// the connection's own writer task.
    fn add_conn(&mut self, id: ConnectionId, stream: TcpStream) {
        let local = stream.local_addr().ok();
        let (read, write) = stream.into_split();
        let queue = queue_capacity(self.desired.borrow().routes.len());
        self.conns.push(Conn {
            id,
            inbound: Inbound::new(read),
            writer: Writer::spawn(
                id,
                write,
                queue,
                stall_limit(&self.peer),
                self.failures_tx.clone(),
            ),
            context: Context::FOUR_OCTET_AS,
            local,
            queue,
        });
    }

    fn received(&mut self, id: ConnectionId, result: io::Result<usize>) {
        match result {
            Ok(0) | Err(_) => {
                if let Err(e) = &result {
                    tracing::debug!(error = %e, "read failed");
                }
                self.drop_conn(id);
                self.feed(Event::TcpConnectionFails { connection: id });
            }
            Ok(_) => self.decode_messages(id),
        }
    }

    /// Feed every complete message in the connection's buffer to the FSM,
    /// one at a time: each may change the context the next is decoded
    /// with.
    fn decode_messages(&mut self, id: ConnectionId) {
        loop {
            let Some(conn) = self.conns.iter_mut().find(|c| c.id == id) else {
                return;
            };
            let Some(decoded) = conn.inbound.next_message(&conn.context) else {
                return;
            };
            self.status.send_modify(|s| s.messages_received += 1);
            match decoded {
                Ok(message) => self.feed(Event::MessageReceived {
                    connection: id,
                    message,
                }),
                Err(error) => {
                    tracing::warn!(%error, "undecodable message from peer");
                    self.feed(Event::DecodeError {
                        connection: id,
                        error,
                    });
                    // The stream cannot be resynchronised after a framing
                    // or decode error: whatever the FSM did, this
                    // connection is finished (never decode the same bad
                    // bytes twice).
                    if self.conns.iter().any(|c| c.id == id) {
                        self.drop_conn(id);
                        self.feed(Event::TcpConnectionFails { connection: id });
                    }
                    return;
                }
            }
        }
    }

    /// A writer gave up on its connection (write error or stall).
    fn writer_failed(&mut self, failure: Failure) {
        // Stale if the connection was already closed or dropped.
        if !self.conns.iter().any(|c| c.id == failure.connection) {
            return;
        }
        tracing::warn!(error = %failure.error, "connection failed");
        self.drop_conn(failure.connection);
        self.failed.push(failure);
    }

    /// Tell the FSM about connections dropped while carrying out actions
    /// (which may drop more), and say why in the status: the FSM only
    /// knows the TCP connection failed.
    fn report_failed(&mut self) {
        while !self.failed.is_empty() {
            for Failure { connection, error } in std::mem::take(&mut self.failed) {
                self.feed(Event::TcpConnectionFails { connection });
                self.set_error(error);
            }
        }
    }

    /// Hand an event to the FSM and carry out what it says, in order.
    fn feed(&mut self, event: Event) {
        let actions = self.fsm.handle(Instant::now(), event);
        for action in actions {
            self.act(action);
        }
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Connect { connection } => {
                let transport = self.transport.clone();
                self.connecting = Some((
                    connection,
                    Box::pin(async move { socket::connect(&transport, CONNECT_TIMEOUT).await }),
                ));
            }
            Action::Accept { connection } => {
                if let Some(stream) = self.pending_accept.take() {
                    self.add_conn(connection, stream);
                }
            }
            Action::Reject => {
                self.pending_accept = None;
            }
            Action::Send {
                connection,
                message,
            } => self.send(connection, &message),
            Action::Close { connection } => {
                if let Some(pos) = self.conns.iter().position(|c| c.id == connection) {
                    let conn = self.conns.swap_remove(pos);
                    self.closing_add(conn.writer.close());
                }
                if self
                    .connecting
                    .as_ref()
                    .is_some_and(|(id, _)| *id == connection)
                {
                    self.connecting = None;
                }
            }
            Action::StateChanged { from, to } => {
                tracing::info!(from = from.name(), to = to.name(), "session state changed");
                self.status.send_modify(|s| {
                    s.state = to;
                    s.since = SystemTime::now();
                });
            }
            Action::Established {
                connection,
                negotiated,
            } => self.established(connection, &negotiated),
            Action::Down { reason } => {
                tracing::warn!(%reason, "session down");
                if !matches!(reason, DownReason::AdminStop) {
                    self.set_error(reason.to_string());
                }
                self.outbound = None;
                self.status.send_modify(|s| {
                    s.prefixes_sent = 0;
                    s.prefixes_sent_by_family.clear();
                });
            }
            Action::UpdateReceived(update) => {
                self.status
                    .send_modify(|s| inbound::count_update(s, &update));
            }
            Action::RouteRefreshRequested(rr) => {
                tracing::info!(family = %rr.family, "route refresh requested");
                self.refresh(rr.family);
            }
        }
    }

    fn established(&mut self, connection: ConnectionId, negotiated: &Negotiated) {
        let Some(conn) = self.conns.iter_mut().find(|c| c.id == connection) else {
            return;
        };
        conn.context = negotiated.context;
        let Some(local) = conn.local.map(|a| a.ip()) else {
            return;
        };
        tracing::info!(
            peer_asn = %negotiated.peer_asn,
            peer_router_id = %negotiated.peer_router_id,
            hold_time = ?negotiated.hold_time,
            four_octet_as = negotiated.context.four_octet_as,
            families = %negotiated.families.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
            "session established"
        );
        self.status.send_modify(|s| {
            s.established_transitions += 1;
            s.last_error = None;
        });
        let mut outbound = Outbound::new(
            connection,
            &self.peer,
            self.local_asn,
            self.internal,
            negotiated,
            local,
        );
        let published = self.desired.borrow_and_update().clone();
        let updates = outbound.initial(&published.routes);
        self.outbound = Some(outbound);
        self.send_updates(connection, updates);
        self.converged(published.version);
    }

    /// Bring the peer in line with the desired set; withdrawals go first.
    fn converge(&mut self) {
        let published = self.desired.borrow_and_update().clone();
        if let Some(outbound) = &mut self.outbound {
            let connection = outbound.connection;
            let updates = outbound.converge(&published.routes);
            for u in &updates {
                let (announced, withdrawn) = (u.announced().count(), u.withdrawn_routes().count());
                tracing::info!(announced, withdrawn, "sending UPDATE");
            }
            self.send_updates(connection, updates);
        }
        self.converged(published.version);
    }

    /// The UPDATEs for `version` are with the writer (or the session is
    /// down): publish what we announce now.
    fn converged(&mut self, version: u64) {
        let (n, by_family) = self
            .outbound
            .as_ref()
            .map(Outbound::prefixes_sent)
            .unwrap_or_default();
        self.status.send_modify(|s| {
            s.prefixes_sent = n;
            s.prefixes_sent_by_family = by_family;
            s.converged_version = version;
        });
    }

    fn refresh(&mut self, family: Family) {
        if let Some(outbound) = &self.outbound {
            let connection = outbound.connection;
            let updates = outbound.refresh(family);
            self.send_updates(connection, updates);
        }
    }

    fn send_updates(&mut self, connection: ConnectionId, updates: Vec<anyvip_proto::Update>) {
        for u in updates {
            self.send(connection, &Message::Update(u));
        }
    }

    /// Encode `message` and queue it on the connection; reset the session
    /// if the queue is full.
    fn send(&mut self, connection: ConnectionId, message: &Message) {
        let Some(conn) = self.conns.iter().find(|c| c.id == connection) else {
            return;
        };
        let bytes = match message.to_bytes(&conn.context) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a message we built; not sent");
                return;
            }
        };
        match conn.writer.send(bytes) {
            Ok(()) => {
                let update = matches!(message, Message::Update(_));
                self.status.send_modify(|s| {
                    s.messages_sent += 1;
                    if update {
                        s.updates_sent += 1;
                    }
                });
            }
            Err(Full) => self.overflowed(connection),
        }
    }

    /// RFC 4486 §4: Cease / Out of Resources, for a peer that has read
    /// nothing while its queue filled. The NOTIFICATION cannot wait in the
    /// full queue: the writer drops the queue, finishes the message it is
    /// writing and sends the Cease if the peer reads within its grace,
    /// else resets the connection. The FSM has no event for a Cease we
    /// decide on, so it learns of a failed connection (TcpConnectionFails:
    /// back to Idle, reconnect after the backoff) and the status says why.
    fn overflowed(&mut self, connection: ConnectionId) {
        let Some(pos) = self.conns.iter().position(|c| c.id == connection) else {
            return;
        };
        let conn = self.conns.swap_remove(pos);
        let notification =
            Notification::new(ErrorCode::Cease, cease::OUT_OF_RESOURCES, Bytes::new());
        let last = Message::Notification(notification.clone())
            .to_bytes(&conn.context)
            .ok();
        tracing::warn!(
            connection = %connection,
            queue = conn.queue,
            "peer is not reading: outbound queue full; resetting the session with {notification}"
        );
        self.closing_add(conn.writer.reset(last));
        self.failed.push(Failure {
            connection,
            error: format!("reset with {notification}: outbound queue full, peer not reading"),
        });
    }

    fn closing_add(&mut self, writer: JoinHandle<()>) {
        self.closing.retain(|w| !w.is_finished());
        self.closing.push(writer);
    }

    /// Forget a failed connection: its writer resets it.
    fn drop_conn(&mut self, id: ConnectionId) {
        self.conns.retain(|c| c.id != id);
    }

    fn set_error(&self, error: String) {
        self.status.send_modify(|s| s.last_error = Some(error));
    }
}

fn family_of_prefix(p: &ipnet::IpNet) -> Family {
    match p {
        ipnet::IpNet::V4(_) => Family::IPV4_UNICAST,
        ipnet::IpNet::V6(_) => Family::IPV6_UNICAST,
    }
}
