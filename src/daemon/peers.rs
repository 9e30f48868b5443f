//! The one registry of BGP peers: their tasks, the passive side's dispatch
//! table and the listening sockets' TCP MD5 keys, kept in step in one place.

use std::collections::BTreeMap;
use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::bgp::listener::{self, Dispatch};
use crate::bgp::peer::{self, Command, PeerHandle, PeerStatus};
use crate::bgp::socket;
use crate::config::{Peer, Speaker};
use crate::vip::Published;

/// How long peers get to send their Cease and close at a stop.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(3);

pub(super) struct Peers {
    running: BTreeMap<IpAddr, (Peer, PeerHandle)>,
    dispatch: Arc<RwLock<Dispatch>>,
    /// Second handles on the listening sockets (the accept tasks own the
    /// first), so that a reload can change their MD5 keys.
    listeners: Vec<TcpListener>,
    /// The MD5 keys installed on the listeners, by peer address.
    keys: BTreeMap<IpAddr, Vec<u8>>,
}

impl Peers {
    /// Bind the listening sockets (with every peer's MD5 key) and start
    /// accepting; no peer runs yet.
    pub(super) fn listen(speaker: &Speaker, peers: &[Peer]) -> std::io::Result<Peers> {
        let keys: BTreeMap<IpAddr, Vec<u8>> = peers
            .iter()
            .filter_map(|p| p.password.clone().map(|k| (p.address, k)))
            .collect();
        let key_list: Vec<(IpAddr, Vec<u8>)> = keys.clone().into_iter().collect();
        let dispatch = Arc::new(RwLock::new(Dispatch::default()));
        let mut listeners = Vec::new();
        for addr in &speaker.listen {
            let listener = socket::listen(*addr, &key_list).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
            })?;
            let std = listener.into_std()?;
            listeners.push(std.try_clone()?);
            let listener = tokio::net::TcpListener::from_std(std)?;
            tracing::info!(%addr, "listening for passive peers");
            tokio::spawn(listener::serve(listener, dispatch.clone()));
        }
        Ok(Peers {
            running: BTreeMap::new(),
            dispatch,
            listeners,
            keys,
        })
    }

    pub(super) fn start(
        &mut self,
        p: Peer,
        speaker: &Speaker,
        routes: watch::Receiver<Arc<Published>>,
    ) {
        let handle = peer::spawn(p.clone(), speaker, routes);
        if let Ok(mut d) = self.dispatch.write() {
            d.insert(p.address, handle.incoming.clone());
        }
        self.running.insert(p.address, (p, handle));
    }

    /// Take a peer out of the registry; the caller stops it.
    pub(super) fn remove(&mut self, address: IpAddr) -> Option<PeerHandle> {
        let (_, handle) = self.running.remove(&address)?;
        if let Ok(mut d) = self.dispatch.write() {
            d.remove(address);
        }
        Some(handle)
    }

    /// A reload changed only what the peer task does not use (BFD).
    pub(super) fn set_config(&mut self, p: &Peer) {
        if let Some((running, _)) = self.running.get_mut(&p.address) {
            *running = p.clone();
        }
    }

    /// The peer's BFD session went down: have its task close the BGP
    /// session (without waiting: a full command queue means it is busy
    /// stopping anyway).
    pub(super) fn bfd_down(&self, address: IpAddr) {
        if let Some((_, handle)) = self.running.get(&address) {
            if handle.commands.try_send(Command::BfdDown).is_err() {
                tracing::warn!(%address, "BFD down: the peer task is not taking commands");
            }
        }
    }

    pub(super) fn config(&self, address: &IpAddr) -> Option<&Peer> {
        self.running.get(address).map(|(p, _)| p)
    }

    pub(super) fn addresses(&self) -> Vec<IpAddr> {
        self.running.keys().copied().collect()
    }

    pub(super) fn contains(&self, address: &IpAddr) -> bool {
        self.running.contains_key(address)
    }

    /// Every peer's status, to wait on.
    pub(super) fn statuses(&self) -> Vec<watch::Receiver<PeerStatus>> {
        self.running
            .values()
            .map(|(_, h)| h.status.clone())
            .collect()
    }

    pub(super) fn snapshot(&self) -> Vec<PeerStatus> {
        self.running
            .values()
            .map(|(_, h)| h.status.borrow().clone())
            .collect()
    }

    pub(super) fn len(&self) -> usize {
        self.running.len()
    }

    pub(super) fn established(&self) -> usize {
        self.running
            .values()
            .filter(|(_, h)| h.status.borrow().state == anyvip_fsm::State::Established)
            .count()
    }

    /// Every peer, out of the registry (at a stop).
    pub(super) fn take_all(&mut self) -> Vec<PeerHandle> {
        let addresses = self.addresses();
        addresses
            .into_iter()
            .filter_map(|a| self.remove(a))
            .collect()
    }

    /// Bring the listeners' MD5 keys in line with `peers` (RFC 2385: a key
    /// on a listening socket applies to connections accepted later), so a
    /// changed `password_file` reaches passive sessions too.
    pub(super) fn set_keys(&mut self, peers: &[Peer]) -> Result<(), String> {
        let wanted: BTreeMap<IpAddr, Vec<u8>> = peers
            .iter()
            .filter_map(|p| p.password.clone().map(|k| (p.address, k)))
            .collect();
        let changes: Vec<(IpAddr, Option<&Vec<u8>>)> = self
            .keys
            .keys()
            .filter(|a| !wanted.contains_key(a))
            .map(|a| (*a, None))
            .chain(
                wanted
                    .iter()
                    .filter(|(a, k)| self.keys.get(a) != Some(k))
                    .map(|(a, k)| (*a, Some(k))),
            )
            .collect();
        for (address, key) in &changes {
            for l in &self.listeners {
                let v6 = l.local_addr().map(|a| a.is_ipv6()).unwrap_or(false);
                if v6 != address.is_ipv6() {
                    continue;
                }
                socket::set_md5(&socket2::SockRef::from(l), *address, key.map(Vec::as_slice))
                    .map_err(|e| {
                        format!("TCP MD5 key for {address} on the listening socket: {e}")
                    })?;
            }
            tracing::info!(%address, set = key.is_some(), "TCP MD5 key of the listening socket changed");
        }
        self.keys = wanted;
        Ok(())
    }
}

/// Ask every peer to close with Cease / Administrative Shutdown and
/// `message`, all at once, and wait (at most [`STOP_GRACE`]) for them all.
pub(super) async fn stop(peers: Vec<PeerHandle>, message: String) {
    let stops = peers.into_iter().map(|p| {
        let message = message.clone();
        async move {
            let _ = p
                .commands
                .send(Command::Stop {
                    message: Some(message),
                })
                .await;
            p.task.await
        }
    });
    if tokio::time::timeout(STOP_GRACE, futures_util::future::join_all(stops))
        .await
        .is_err()
    {
        tracing::warn!("a peer did not stop within {STOP_GRACE:?}");
    }
}

/// Wait until every peer in `statuses` has acted on `version` of the
/// routes (sent it, or had nothing to send because its session is down),
/// at most `grace`.
pub(super) async fn converged(
    mut statuses: Vec<watch::Receiver<PeerStatus>>,
    version: u64,
    grace: Duration,
) {
    let all = async {
        for status in &mut statuses {
            let _ = status.wait_for(|s| s.converged_version >= version).await;
        }
    };
    if tokio::time::timeout(grace, all).await.is_err() {
        tracing::warn!(
            "a peer did not send its withdrawal within {grace:?}; removing the address anyway"
        );
    }
}
