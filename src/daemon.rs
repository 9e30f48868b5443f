//! Wiring: configuration -> health checks -> announcer -> peer tasks and
//! listeners, and the signals that stop it all.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::bgp::listener::{self, Dispatch};
use crate::bgp::peer::PeerStatus;
use crate::bgp::peer::{self, Command, PeerHandle};
use crate::bgp::socket;
use crate::config::Config;
use crate::dataplane::Dataplane;
use crate::health::{Checks, VipChange, VipHealth};
use crate::vip::Announcer;

/// How long peers get to send their Cease and close at a stop.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// How long a withdrawal may take to reach every peer's socket before the
/// VIP address is removed anyway (a peer stuck writing must not keep the
/// address on the node forever).
const WITHDRAW_GRACE: Duration = Duration::from_secs(2);

/// Run until SIGTERM or SIGINT.
pub async fn run(config: Config) -> std::io::Result<()> {
    // The data plane first: the loop guard is in place before any route
    // can attract traffic, and leftovers from a crash are gone.
    let dataplane = Dataplane::start(&config.dataplane, &config.vips)
        .await
        .map_err(std::io::Error::other)?;
    let announcer = Announcer::new(&config.vips);
    let mut dispatch = Dispatch::default();
    let mut peers: Vec<PeerHandle> = Vec::new();
    for p in &config.peers {
        let handle = peer::spawn(p.clone(), &config.speaker, announcer.subscribe());
        dispatch.insert(p.address, handle.incoming.clone());
        peers.push(handle);
    }
    let keys: Vec<(IpAddr, Vec<u8>)> = config
        .peers
        .iter()
        .filter_map(|p| p.password.clone().map(|k| (p.address, k)))
        .collect();
    let dispatch = Arc::new(dispatch);
    for addr in &config.speaker.listen {
        let listener = socket::listen(*addr, &keys)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        tracing::info!(%addr, "listening for passive peers");
        tokio::spawn(listener::serve(listener, dispatch.clone()));
    }
    let mut lifecycle = Lifecycle {
        announcer,
        dataplane,
        peers: peers.iter().map(|p| p.status.clone()).collect(),
    };
    // `always = true` VIPs are announced once, for the life of the daemon;
    // every other VIP follows its checks (all up = announced), starting
    // withdrawn (fail closed).
    for v in config.vips.iter().filter(|v| v.always) {
        lifecycle
            .apply(vec![VipChange {
                prefix: v.prefix,
                up: true,
                reason: "always = true".to_string(),
            }])
            .await;
    }
    let checks = Checks::spawn(&config.checks).map_err(std::io::Error::other)?;
    let mut vip_health = VipHealth::new(&config.vips, &checks);

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let why = loop {
        tokio::select! {
            changes = vip_health.changed() => lifecycle.apply(changes).await,
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
        }
    };
    tracing::info!(signal = why, "stopping: closing sessions");
    stop(peers, "anyvip is stopping").await;
    drop(checks);
    if let Some(dp) = lifecycle.dataplane.take() {
        dp.stop().await;
    }
    Ok(())
}

/// The VIP lifecycle (design section 2): up = address, then announce;
/// down = withdraw from every peer first, then the address.
pub(crate) struct Lifecycle {
    pub(crate) announcer: Announcer,
    pub(crate) dataplane: Option<Dataplane>,
    pub(crate) peers: Vec<watch::Receiver<PeerStatus>>,
}

impl Lifecycle {
    pub(crate) async fn apply(&mut self, changes: Vec<VipChange>) {
        // Withdrawals first: one UPDATE per peer goes out before anything
        // else happens (invariant 2), also when several VIPs change at once.
        let (downs, ups): (Vec<_>, Vec<_>) = changes.into_iter().partition(|c| !c.up);
        if !downs.is_empty() {
            for c in &downs {
                self.announcer.set(c.prefix, false);
            }
            let version = self.announcer.version();
            for c in &downs {
                tracing::warn!(prefix = %c.prefix, reason = %c.reason, "VIP down: withdrawn");
            }
            self.withdrawn_everywhere(version).await;
            if let Some(dp) = &self.dataplane {
                for c in &downs {
                    if let Err(e) = dp.down(c.prefix).await {
                        tracing::error!(prefix = %c.prefix, error = %e, "cannot remove the VIP address");
                    }
                }
            }
        }
        for c in ups {
            if let Some(dp) = &self.dataplane {
                // No address, no announcement: traffic would be dropped by
                // the guard on this node (fail closed).
                if let Err(e) = dp.up(c.prefix).await {
                    tracing::error!(prefix = %c.prefix, error = %e, "cannot add the VIP address: not announcing it");
                    continue;
                }
            }
            self.announcer.set(c.prefix, true);
            tracing::info!(prefix = %c.prefix, reason = %c.reason, "VIP up: announced");
        }
    }

    /// Wait until every peer task has acted on `version` of the desired set.
    async fn withdrawn_everywhere(&mut self, version: u64) {
        let all = async {
            for status in &mut self.peers {
                let _ = status.wait_for(|s| s.converged_version >= version).await;
            }
        };
        if tokio::time::timeout(WITHDRAW_GRACE, all).await.is_err() {
            tracing::warn!("a peer did not send its withdrawal within {WITHDRAW_GRACE:?}; removing the address anyway");
        }
    }
}

async fn stop(peers: Vec<PeerHandle>, message: &str) {
    for p in &peers {
        let _ = p
            .commands
            .send(Command::Stop {
                message: Some(message.to_string()),
            })
            .await;
    }
    for p in peers {
        if tokio::time::timeout(STOP_GRACE, p.task).await.is_err() {
            tracing::warn!("a peer did not stop in time");
        }
    }
}
