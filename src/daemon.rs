//! Wiring: configuration -> health checks -> announcer -> peer tasks and
//! listeners, and the signals that stop it all.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

use crate::bgp::listener::{self, Dispatch};
use crate::bgp::peer::{self, Command, PeerHandle};
use crate::bgp::socket;
use crate::config::Config;
use crate::health::{Checks, VipChange, VipHealth};
use crate::vip::Announcer;

/// How long peers get to send their Cease and close at a stop.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Run until SIGTERM or SIGINT.
pub async fn run(config: Config) -> std::io::Result<()> {
    let mut announcer = Announcer::new(&config.vips);
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
    // `always = true` VIPs are announced once, for the life of the daemon;
    // every other VIP follows its checks (all up = announced), starting
    // withdrawn (fail closed).
    for v in config.vips.iter().filter(|v| v.always) {
        tracing::info!(prefix = %v.prefix, "VIP announced (always)");
        announcer.set(v.prefix, true);
    }
    let checks = Checks::spawn(&config.checks).map_err(std::io::Error::other)?;
    let mut vip_health = VipHealth::new(&config.vips, &checks);

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let why = loop {
        tokio::select! {
            changes = vip_health.changed() => follow(&mut announcer, changes),
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
        }
    };
    tracing::info!(signal = why, "stopping: closing sessions");
    stop(peers, "anyvip is stopping").await;
    drop(checks);
    Ok(())
}

/// Pass VIP health changes to the announcer. The announcer comes first:
/// peers send their UPDATEs before anything else reacts (design invariant
/// 2); the log line follows.
pub(crate) fn follow(announcer: &mut Announcer, changes: Vec<VipChange>) {
    for c in changes {
        announcer.set(c.prefix, c.up);
        if c.up {
            tracing::info!(prefix = %c.prefix, reason = %c.reason, "VIP up: announcing");
        } else {
            tracing::warn!(prefix = %c.prefix, reason = %c.reason, "VIP down: withdrawing");
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
