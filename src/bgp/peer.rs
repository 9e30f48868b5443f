//! One tokio task per configured peer: it owns the sockets, drives the pure
//! session FSM (`anyvip-fsm`) and carries out its actions, and keeps the
//! peer in step with the desired announcements.
//!
//! Everything for a peer happens in this one task, in order: bytes are
//! decoded with the context in force when they are read, keepalives come
//! from the same loop that reacts to health changes (design invariant 4),
//! and a peer that sends garbage only ever closes its own session.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyvip_fsm::{Action, ConnectionId, DownReason, Event, Fsm, Negotiated, SessionConfig, State};
use anyvip_proto::{frame, Context, Family, Message, Update};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::bgp::announce::{Sent, SessionView};
use crate::bgp::socket::{self, Transport};
use crate::config::{Peer, Speaker};
use crate::vip::Published;

/// How long a write may stall (peer not reading) before the connection is
/// considered dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The connect-retry ceiling (RFC 4271 §10 suggests 120 s as the base; we
/// back off from a short base to this).
const CONNECT_RETRY_MAX: Duration = Duration::from_secs(30);

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
    pub messages_sent: u64,
    pub updates_received: u64,
    pub updates_sent: u64,
    /// Prefixes announced to us, by family (counted, then dropped).
    pub prefixes_received: BTreeMap<String, u64>,
    /// Prefixes we currently announce on this session.
    pub prefixes_sent: usize,
    /// The same, by family ("ipv4-unicast", "ipv6-unicast").
    pub prefixes_sent_by_family: BTreeMap<String, u64>,
    /// The last version of the desired set this peer has acted on (sent,
    /// or had nothing to send because the session is down).
    pub converged_version: u64,
}

/// Instructions from the daemon to a running peer task.
#[derive(Debug)]
pub enum Command {
    /// Close with Cease / Administrative Shutdown and the RFC 9003 text,
    /// then end the task.
    Stop { message: Option<String> },
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
        peer,
        conns: Vec::new(),
        connecting: None,
        pending_accept: None,
        established: None,
        sent: Sent::default(),
        desired,
        status: status_tx,
    };
    let span = tracing::info_span!("peer", name = %task.peer.name);
    let task = tokio::spawn(tracing::Instrument::instrument(
        task.run(commands, incoming),
        span,
    ));
    PeerHandle {
        commands: commands_tx,
        status,
        incoming: incoming_tx,
        task,
    }
}

/// One TCP connection to the peer.
struct Conn {
    id: ConnectionId,
    stream: TcpStream,
    buf: BytesMut,
    /// Decoding context: plain until the session is Established on this
    /// connection (only OPEN, KEEPALIVE and NOTIFICATION come before).
    context: Context,
    local: Option<SocketAddr>,
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

/// The session on its established connection.
struct Established {
    connection: ConnectionId,
    view: SessionView,
}

struct PeerTask {
    peer: Peer,
    local_asn: anyvip_proto::Asn,
    fsm: Fsm,
    transport: Transport,
    conns: Vec<Conn>,
    connecting: Option<(ConnectionId, Connecting)>,
    pending_accept: Option<TcpStream>,
    established: Option<Established>,
    sent: Sent,
    desired: watch::Receiver<Arc<Published>>,
    status: watch::Sender<PeerStatus>,
}

/// Wait for bytes on any connection: (connection, result of the read).
async fn read_any(conns: &mut [Conn]) -> (ConnectionId, io::Result<usize>) {
    match conns {
        [] => std::future::pending().await,
        [a] => (a.id, a.stream.read_buf(&mut a.buf).await),
        [a, b, ..] => tokio::select! {
            r = a.stream.read_buf(&mut a.buf) => (a.id, r),
            r = b.stream.read_buf(&mut b.buf) => (b.id, r),
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
    ) {
        tracing::info!(address = %self.transport.remote, passive = self.peer.passive, "peer started");
        self.feed(Event::ManualStart).await;
        loop {
            tokio::select! {
                () = sleep_until(self.fsm.poll_timeout()) => self.feed(Event::Timeout).await,
                (id, result) = connect_result(&mut self.connecting) => {
                    self.connecting = None;
                    self.connected(id, result).await;
                }
                (id, result) = read_any(&mut self.conns) => self.received(id, result).await,
                Some(stream) = incoming.recv() => self.accepted(stream).await,
                Ok(()) = self.desired.changed() => self.converge().await,
                command = commands.recv() => match command {
                    Some(Command::Stop { message }) => {
                        self.feed(Event::ManualStop { shutdown_message: message }).await;
                        break;
                    }
                    // The daemon is gone: nothing is left to announce for.
                    None => {
                        self.feed(Event::ManualStop { shutdown_message: None }).await;
                        break;
                    }
                },
            }
        }
        tracing::info!("peer stopped");
    }

    async fn connected(&mut self, id: ConnectionId, result: io::Result<TcpStream>) {
        match result {
            Ok(stream) => {
                let local = stream.local_addr().ok();
                tracing::debug!(?local, "TCP connected");
                self.conns.push(Conn {
                    id,
                    stream,
                    buf: BytesMut::with_capacity(anyvip_proto::MAX_LEN),
                    context: Context::FOUR_OCTET_AS,
                    local,
                });
                self.feed(Event::TcpConnected { connection: id }).await;
            }
            Err(e) => {
                tracing::debug!(error = %e, "connect failed");
                self.set_error(format!("connect: {e}"));
                self.feed(Event::TcpConnectionFails { connection: id })
                    .await;
            }
        }
    }

    async fn accepted(&mut self, stream: TcpStream) {
        if let Err(e) = socket::accept_setup(&stream, self.transport.ttl) {
            tracing::warn!(error = %e, "cannot set TTL on accepted connection; closing it");
            return;
        }
        self.pending_accept = Some(stream);
        self.feed(Event::TcpAccepted).await;
        // Neither accepted nor rejected explicitly: drop it.
        self.pending_accept = None;
    }

    async fn received(&mut self, id: ConnectionId, result: io::Result<usize>) {
        match result {
            Ok(0) | Err(_) => {
                if let Err(e) = &result {
                    tracing::debug!(error = %e, "read failed");
                }
                self.drop_conn(id);
                self.feed(Event::TcpConnectionFails { connection: id })
                    .await;
            }
            Ok(_) => self.decode_frames(id).await,
        }
    }

    /// Decode every complete message in the connection's buffer, feeding
    /// each to the FSM before decoding the next (its context may change).
    async fn decode_frames(&mut self, id: ConnectionId) {
        loop {
            let Some(conn) = self.conns.iter_mut().find(|c| c.id == id) else {
                return;
            };
            let decoded = match frame(&conn.buf, &conn.context) {
                Ok(None) => {
                    // Room for one whole message, never more.
                    conn.buf.reserve(anyvip_proto::MAX_LEN);
                    return;
                }
                Ok(Some(f)) => {
                    let len = f.message.len();
                    let result = Message::decode(&f, &conn.context);
                    conn.buf.advance(len);
                    result
                }
                Err(e) => Err(e),
            };
            self.bump(|s| s.messages_received += 1);
            match decoded {
                Ok(message) => {
                    self.feed(Event::MessageReceived {
                        connection: id,
                        message,
                    })
                    .await
                }
                Err(error) => {
                    tracing::warn!(%error, "undecodable message from peer");
                    self.feed(Event::DecodeError {
                        connection: id,
                        error,
                    })
                    .await;
                    // The stream cannot be resynchronised after a framing
                    // or decode error: whatever the FSM did, this
                    // connection is finished (never decode the same bad
                    // bytes twice).
                    if self.conns.iter().any(|c| c.id == id) {
                        self.drop_conn(id);
                        self.feed(Event::TcpConnectionFails { connection: id })
                            .await;
                    }
                    return;
                }
            }
        }
    }

    /// Hand an event to the FSM and carry out what it says, in order.
    async fn feed(&mut self, event: Event) {
        let actions = self.fsm.handle(Instant::now(), event);
        for action in actions {
            self.act(action).await;
        }
    }

    async fn act(&mut self, action: Action) {
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
                    let local = stream.local_addr().ok();
                    self.conns.push(Conn {
                        id: connection,
                        stream,
                        buf: BytesMut::with_capacity(anyvip_proto::MAX_LEN),
                        context: Context::FOUR_OCTET_AS,
                        local,
                    });
                }
            }
            Action::Reject => {
                self.pending_accept = None;
            }
            Action::Send {
                connection,
                message,
            } => self.send(connection, &message).await,
            Action::Close { connection } => {
                if let Some(pos) = self.conns.iter().position(|c| c.id == connection) {
                    let mut conn = self.conns.swap_remove(pos);
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), conn.stream.shutdown()).await;
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
            } => {
                self.established(connection, negotiated).await;
            }
            Action::Down { reason } => {
                tracing::warn!(%reason, "session down");
                if !matches!(reason, DownReason::AdminStop) {
                    self.set_error(reason.to_string());
                }
                self.established = None;
                self.sent = Sent::default();
                self.status.send_modify(|s| {
                    s.prefixes_sent = 0;
                    s.prefixes_sent_by_family.clear();
                });
            }
            Action::UpdateReceived(update) => self.count_received(&update),
            Action::RouteRefreshRequested(rr) => {
                tracing::info!(family = %rr.family, "route refresh requested");
                if let Some(est) = &self.established {
                    let connection = est.connection;
                    let updates: Vec<Update> = self
                        .sent
                        .replay(&est.view)
                        .into_iter()
                        .filter(|u| family_of(u) == Some(rr.family))
                        .collect();
                    for u in updates {
                        self.send(connection, &Message::Update(u)).await;
                    }
                }
            }
        }
    }

    async fn established(&mut self, connection: ConnectionId, negotiated: Negotiated) {
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
        let view = SessionView {
            local_asn: self.local_asn,
            internal: self.peer.asn == self.local_asn,
            four_octet_as: negotiated.context.four_octet_as,
            families: negotiated.families.clone(),
            local_address: local,
            next_hop_v4: self.peer.next_hop_v4,
            next_hop_v6: self.peer.next_hop_v6,
        };
        self.established = Some(Established { connection, view });
        self.status.send_modify(|s| {
            s.established_transitions += 1;
            s.last_error = None;
        });
        // Initial announcements, then End-of-RIB for every family
        // (RFC 4724 §2: the peer knows our initial set is complete).
        self.sent = Sent::default();
        self.converge().await;
        for family in negotiated.families {
            self.send(connection, &Message::Update(Update::end_of_rib(family)))
                .await;
        }
    }

    /// Bring the peer in line with the desired set; withdrawals go first.
    async fn converge(&mut self) {
        let published = self.desired.borrow_and_update().clone();
        if let Some(est) = &self.established {
            let connection = est.connection;
            let updates = self.sent.converge(&est.view, &published.routes);
            for u in updates {
                let (announced, withdrawn) = (u.announced().count(), u.withdrawn_routes().count());
                tracing::info!(announced, withdrawn, "sending UPDATE");
                self.send(connection, &Message::Update(u)).await;
            }
        }
        let n = self.sent.len();
        let mut by_family: BTreeMap<String, u64> = BTreeMap::new();
        for p in self.sent.prefixes() {
            *by_family
                .entry(family_of_prefix(p).to_string())
                .or_default() += 1;
        }
        self.status.send_modify(|s| {
            s.prefixes_sent = n;
            s.prefixes_sent_by_family = by_family;
            s.converged_version = published.version;
        });
    }

    async fn send(&mut self, connection: ConnectionId, message: &Message) {
        let Some(conn) = self.conns.iter_mut().find(|c| c.id == connection) else {
            return;
        };
        let bytes = match message.to_bytes(&conn.context) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a message we built; not sent");
                return;
            }
        };
        let result = tokio::time::timeout(WRITE_TIMEOUT, conn.stream.write_all(&bytes)).await;
        match result {
            Ok(Ok(())) => {
                let update = matches!(message, Message::Update(_));
                self.bump(|s| {
                    s.messages_sent += 1;
                    if update {
                        s.updates_sent += 1;
                    }
                });
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "write failed");
                self.write_failed(connection).await;
            }
            Err(_) => {
                tracing::warn!("write stalled for {WRITE_TIMEOUT:?}: peer not reading");
                self.write_failed(connection).await;
            }
        }
    }

    /// A failed write is a failed connection (boxed: `send` and `feed`
    /// call each other).
    fn write_failed(
        &mut self,
        connection: ConnectionId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            self.drop_conn(connection);
            self.feed(Event::TcpConnectionFails { connection }).await;
        })
    }

    fn drop_conn(&mut self, id: ConnectionId) {
        self.conns.retain(|c| c.id != id);
    }

    fn count_received(&mut self, update: &Update) {
        // RFC 7606 treat-as-withdraw: the announced prefixes count as
        // withdrawn; we keep no routes either way, so only the counters
        // differ.
        if let Some(t) = update.treatment() {
            tracing::debug!(treatment = ?t, errors = ?update.errors, "malformed UPDATE handled per RFC 7606");
        }
        let mut by_family: BTreeMap<String, u64> = BTreeMap::new();
        for n in update.announced() {
            let family = match n.prefix {
                ipnet::IpNet::V4(_) => Family::IPV4_UNICAST,
                ipnet::IpNet::V6(_) => Family::IPV6_UNICAST,
            };
            *by_family.entry(family.to_string()).or_default() += 1;
        }
        self.status.send_modify(|s| {
            s.updates_received += 1;
            for (f, n) in by_family {
                *s.prefixes_received.entry(f).or_default() += n;
            }
        });
    }

    fn bump(&self, f: impl FnOnce(&mut PeerStatus)) {
        self.status.send_modify(f);
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

fn family_of(u: &Update) -> Option<Family> {
    u.announced().next().map(|n| match n.prefix {
        ipnet::IpNet::V4(_) => Family::IPV4_UNICAST,
        ipnet::IpNet::V6(_) => Family::IPV6_UNICAST,
    })
}
