//! Passive side: accept connections and hand each to its peer's task.
//! A connection from an address that is not a configured peer is closed at
//! once, before any OPEN (nothing about us leaks to strangers).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Where accepted connections go, by the peer's address.
#[derive(Debug, Default, Clone)]
pub struct Dispatch {
    peers: HashMap<IpAddr, mpsc::Sender<TcpStream>>,
}

impl Dispatch {
    pub fn insert(&mut self, address: IpAddr, to: mpsc::Sender<TcpStream>) {
        self.peers.insert(canonical(address), to);
    }

    pub fn remove(&mut self, address: IpAddr) {
        self.peers.remove(&canonical(address));
    }

    fn route(&self, address: IpAddr) -> Option<mpsc::Sender<TcpStream>> {
        self.peers.get(&canonical(address)).cloned()
    }
}

/// An IPv4 peer reaching a dual-stack socket shows up as ::ffff:a.b.c.d.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// Accept forever, dispatching to peer tasks.
pub async fn serve(listener: TcpListener, dispatch: Arc<RwLock<Dispatch>>) {
    let local = listener.local_addr().ok();
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and friends: back off a little rather than spin.
                tracing::warn!(?local, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        // Peers come and go with reloads: look up at every accept.
        let to = dispatch.read().ok().and_then(|d| d.route(remote.ip()));
        match to {
            Some(to) => {
                if to.try_send(stream).is_err() {
                    tracing::debug!(%remote, "peer task busy or gone; connection closed");
                }
            }
            None => {
                tracing::info!(%remote, "connection from an address that is not a configured peer closed");
                drop(stream);
            }
        }
    }
}
