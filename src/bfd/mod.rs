//! BFD (RFC 5880) for the BGP sessions that ask for it (`bfd` in a
//! `[[peer]]`): the sockets ([`socket`]) and one task that runs every
//! session ([`runner`]) of the pure `anyvip-bfd` state machine.
//!
//! The task lives on the daemon's own single-threaded runtime, beside the
//! health checks and the BGP keepalives (design invariant 4): if that loop
//! hangs, BFD stops too and the routers see the node as dead within the
//! detection time. A session that goes from Up to Down (RFC 5882 §3.2;
//! not when the router signalled AdminDown) is reported on the `down`
//! channel; the daemon closes that peer's BGP session with Cease / BFD
//! Down (RFC 9384) and BGP re-establishes as usual. A session that never
//! came up (the router has no BFD for us) changes nothing.

mod runner;
mod socket;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use anyvip_bfd::{Diagnostic, State};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::Peer;

pub use socket::{MULTIHOP_PORT, SINGLE_HOP_PORT};

/// What `anyvip status` and the metrics show of one BFD session.
#[derive(Debug, Clone, PartialEq)]
pub struct BfdStatus {
    pub state: State,
    pub remote_state: State,
    /// When `state` was entered.
    pub since: SystemTime,
    /// Why the session last left Up or went down (`None`: never).
    pub last_diagnostic: Option<Diagnostic>,
    /// What the router last said about its side.
    pub remote_diagnostic: Diagnostic,
    pub multihop: bool,
    /// Configured: our interval (TX and RX) and detect multiplier.
    pub interval: Duration,
    pub multiplier: u8,
    /// Negotiated (RFC 5880 §6.8.2): what we send at, what the router
    /// sends at, and how long without a packet makes it Down.
    pub tx_interval: Option<Duration>,
    pub rx_interval: Option<Duration>,
    pub detection_time: Option<Duration>,
    pub local_discriminator: u32,
    pub remote_discriminator: Option<u32>,
    /// Transitions by (new state, diagnostic).
    pub transitions: BTreeMap<(&'static str, &'static str), u64>,
    pub packets_sent: u64,
    pub packets_received: u64,
    /// Packets that could not be sent (socket errors).
    pub send_errors: u64,
}

/// Every BFD session, and the datagrams dropped before or by one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BfdReport {
    pub sessions: BTreeMap<IpAddr, BfdStatus>,
    /// By reason: each RFC 5880 §6.8.6 rule ([`anyvip_bfd::Discard`]),
    /// `ttl` (single hop below 255), `not_a_peer`, `receive_error`.
    pub dropped: BTreeMap<&'static str, u64>,
}

/// The reasons the socket layer adds to [`anyvip_bfd::Discard`]'s.
pub const DROP_TTL: &str = "ttl";
pub const DROP_NOT_A_PEER: &str = "not_a_peer";
pub const DROP_RECEIVE_ERROR: &str = "receive_error";

enum Command {
    Reconfigure(Vec<Peer>),
    Stop(oneshot::Sender<()>),
}

/// The daemon's handle on the BFD task.
pub struct Bfd {
    commands: mpsc::UnboundedSender<Command>,
    pub report: watch::Receiver<BfdReport>,
    task: tokio::task::JoinHandle<()>,
}

impl Bfd {
    /// Bind the sockets `peers` need and start the task. `down` receives
    /// the address of each peer whose session fell from Up to Down.
    pub fn spawn(peers: &[Peer], down: mpsc::UnboundedSender<IpAddr>) -> std::io::Result<Bfd> {
        let (report_tx, report) = watch::channel(BfdReport::default());
        let mut runner = runner::Runner::new(report_tx, down);
        runner.reconfigure(peers)?;
        let (commands, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(runner.run(rx));
        Ok(Bfd {
            commands,
            report,
            task,
        })
    }

    /// New peer settings (a reload): sessions added, removed (with
    /// AdminDown) or changed with a Poll Sequence (RFC 5880 §6.8.3),
    /// without touching the BGP sessions.
    pub fn reconfigure(&self, peers: &[Peer]) {
        let _ = self.commands.send(Command::Reconfigure(peers.to_vec()));
    }

    /// Planned stop: every session sends AdminDown with diagnostic 7 (RFC
    /// 5880 §6.8.16), so routers log a shutdown, not a failure.
    pub async fn stop(self) {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Stop(reply)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), done).await;
        }
        self.task.abort();
    }
}
