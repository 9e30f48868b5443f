//! Wiring: configuration -> announcer -> peer tasks and listeners, and the
//! signals that stop it all.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

use crate::bgp::listener::{self, Dispatch};
use crate::bgp::peer::{self, Command, PeerHandle};
use crate::bgp::socket;
use crate::config::Config;
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
    // Until health checks exist, `always = true` is the only way a VIP is
    // up (the config refuses a VIP without it).
    for v in config.vips.iter().filter(|v| v.always) {
        tracing::info!(prefix = %v.prefix, "VIP announced (always)");
        announcer.set(v.prefix, true);
    }

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let why = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = why, "stopping: closing sessions");
    stop(peers, "anyvip is stopping").await;
    Ok(())
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
