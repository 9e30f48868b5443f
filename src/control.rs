//! The daemon's control surface: requests from the API (and the CLI behind
//! it) into the main loop, and the snapshot it answers status with. The API
//! never reaches into tasks; it asks the loop, which owns all state.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::SystemTime;

use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot};

use crate::bgp::peer::PeerStatus;
use crate::dataplane::DataplaneStatus;
use crate::health::CheckState;
use crate::steer::Counters;
use crate::vip::Mode;

/// Everything `anyvip status` and the metrics show, as of one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub version: &'static str,
    pub started: SystemTime,
    pub config_file: PathBuf,
    /// The BGP Identifier in use, and where it came from ("configured", or
    /// how `router_id = "auto"` derived it).
    pub router_id: Ipv4Addr,
    pub router_id_source: String,
    /// When the configuration was last reloaded, and whether it applied.
    pub last_reload: Option<(SystemTime, Result<(), String>)>,
    pub peers: Vec<PeerStatus>,
    pub vips: Vec<VipStatus>,
    pub checks: Vec<CheckState>,
    /// The nftables counters (`None` when the data plane is not managed or
    /// could not be read).
    pub counters: Option<Counters>,
    /// The data plane's reconciler (`None` when it is not managed).
    pub dataplane: Option<DataplaneStatus>,
}

/// One VIP as the lifecycle sees it.
#[derive(Debug, Clone)]
pub struct VipStatus {
    pub prefix: IpNet,
    pub mode: Mode,
    /// All its checks are up (always true for `always = true`).
    pub healthy: bool,
    /// An operator (or a stop) asked for it to be drained.
    pub drained: bool,
    pub checks: Vec<String>,
    /// When `mode` last changed.
    pub since: SystemTime,
    /// Why it is in `mode`.
    pub reason: String,
    pub transitions: u64,
}

/// What [`Control`] can ask the main loop.
#[derive(Debug)]
pub enum Request {
    Status(oneshot::Sender<Snapshot>),
    /// Drain one VIP, or all (`None`). Answers the VIPs affected.
    Drain {
        prefix: Option<IpNet>,
        reply: oneshot::Sender<Result<Vec<IpNet>, String>>,
    },
    /// Undo a drain.
    Resume {
        prefix: Option<IpNet>,
        reply: oneshot::Sender<Result<Vec<IpNet>, String>>,
    },
    /// Re-read the configuration file; an invalid one keeps the running
    /// configuration and answers why.
    Reload(oneshot::Sender<Result<(), String>>),
}

/// A cheap, cloneable handle to the running daemon.
#[derive(Debug, Clone)]
pub struct Control {
    tx: mpsc::Sender<Request>,
}

/// The daemon is gone (stopping or stopped).
pub const GONE: &str = "anyvip is stopping";

impl Control {
    pub fn new() -> (Control, mpsc::Receiver<Request>) {
        let (tx, rx) = mpsc::channel(16);
        (Control { tx }, rx)
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Request) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(make(reply)).await.ok()?;
        answer.await.ok()
    }

    pub async fn status(&self) -> Option<Snapshot> {
        self.ask(Request::Status).await
    }

    pub async fn drain(&self, prefix: Option<IpNet>) -> Result<Vec<IpNet>, String> {
        self.ask(|reply| Request::Drain { prefix, reply })
            .await
            .unwrap_or_else(|| Err(GONE.to_string()))
    }

    pub async fn resume(&self, prefix: Option<IpNet>) -> Result<Vec<IpNet>, String> {
        self.ask(|reply| Request::Resume { prefix, reply })
            .await
            .unwrap_or_else(|| Err(GONE.to_string()))
    }

    pub async fn reload(&self) -> Result<(), String> {
        self.ask(Request::Reload)
            .await
            .unwrap_or_else(|| Err(GONE.to_string()))
    }
}
