//! `router_id = "auto"` (or no `router_id`): the BGP Identifier derived
//! from the node, so that one file fits every control-plane node.
//!
//! The identifier is the IPv4 source address the kernel would use toward
//! the first peer (the first IPv4 peer when the first is IPv6): a UDP
//! socket `connect()`ed to the peer makes the kernel pick a route and a
//! source address, and `local_addr()` reads it back. UDP `connect()` only
//! records the destination: no packet is sent. Without an IPv4 peer, it is
//! the node's first global IPv4 address. Either way it is one of the
//! node's own addresses, unique per node in any sane network, which is
//! what RFC 6286 §2.1 asks of the identifier (unique within the AS).
//!
//! [`resolve_router_id`] is the one place this happens: `anyvip run`,
//! `anyvip check-config` and a reload all call it, so the three agree.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

use super::{Config, ConfigError, Peer, Vip};

/// Where the router ID in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouterIdSource {
    /// Written in the file.
    Configured,
    /// The source address toward this peer.
    TowardPeer(IpAddr),
    /// The first global IPv4 address, on this interface (no IPv4 peer).
    Interface(String),
}

impl RouterIdSource {
    pub fn is_auto(&self) -> bool {
        *self != RouterIdSource::Configured
    }
}

impl fmt::Display for RouterIdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouterIdSource::Configured => write!(f, "configured"),
            RouterIdSource::TowardPeer(p) => write!(f, "source address toward peer {p}"),
            RouterIdSource::Interface(i) => {
                write!(f, "the node's first global IPv4 address, on {i}")
            }
        }
    }
}

/// Fill in `config.speaker.router_id` if the file left it to the node, and
/// say where the one in use came from. An identifier written in the file
/// is kept as it is.
pub fn resolve_router_id(config: &mut Config) -> Result<RouterIdSource, ConfigError> {
    if !config.speaker.router_id.is_unspecified() {
        return Ok(RouterIdSource::Configured);
    }
    let error = |reason: String| ConfigError {
        key: "speaker.router_id".to_string(),
        reason: format!("auto: {reason}; write the node's router_id in the file instead"),
    };
    let (id, source) = match first_ipv4_peer(&config.peers) {
        Some(peer) => {
            let id = source_toward(peer).map_err(|e| {
                error(format!(
                    "no IPv4 source address toward peer {} ({e})",
                    peer.address
                ))
            })?;
            (id, RouterIdSource::TowardPeer(peer.address))
        }
        None => {
            let addresses = node_ipv4_addresses().map_err(|e| {
                error(format!(
                    "no IPv4 peer, and the node's addresses cannot be listed ({e})"
                ))
            })?;
            let (interface, id) = first_global(addresses, &config.vips).ok_or_else(|| {
                error("no IPv4 peer, and the node has no global IPv4 address".to_string())
            })?;
            (id, RouterIdSource::Interface(interface))
        }
    };
    // The VIP is on every node that announces it: as an identifier it
    // would be the same on all of them.
    if config
        .vips
        .iter()
        .any(|v| v.prefix.addr() == IpAddr::V4(id))
    {
        return Err(error(format!(
            "the {source} is {id}, a VIP, the same on every node"
        )));
    }
    config.speaker.router_id = id;
    Ok(source)
}

/// The first peer if it is IPv4, else the first IPv4 peer.
fn first_ipv4_peer(peers: &[Peer]) -> Option<&Peer> {
    peers.iter().find(|p| p.address.is_ipv4())
}

/// The IPv4 address the kernel picks as the source toward `peer` (its
/// `local_address`, if set, as the session binds to it). Sends nothing.
fn source_toward(peer: &Peer) -> io::Result<Ipv4Addr> {
    let local = match peer.local_address {
        Some(a @ IpAddr::V4(_)) => a,
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    let socket = UdpSocket::bind(SocketAddr::new(local, 0))?;
    socket.connect(SocketAddr::new(peer.address, peer.port))?;
    match socket.local_addr()?.ip() {
        IpAddr::V4(a) if !a.is_unspecified() => Ok(a),
        other => Err(io::Error::other(format!(
            "the kernel chose {other}, not an IPv4 address"
        ))),
    }
}

/// Every IPv4 address of an interface that is up, in the kernel's order.
fn node_ipv4_addresses() -> io::Result<Vec<(String, Ipv4Addr)>> {
    use nix::net::if_::InterfaceFlags;
    let list = nix::ifaddrs::getifaddrs().map_err(io::Error::from)?;
    Ok(list
        .filter(|i| i.flags.contains(InterfaceFlags::IFF_UP))
        .filter_map(|i| {
            let a = i.address.as_ref()?.as_sockaddr_in()?.ip();
            Some((i.interface_name, a))
        })
        .collect())
}

/// The first address fit to identify the node: not loopback, link-local,
/// multicast, broadcast or unspecified, and not one of the VIPs (which a
/// node announcing them has on `lo`).
fn first_global(addresses: Vec<(String, Ipv4Addr)>, vips: &[Vip]) -> Option<(String, Ipv4Addr)> {
    addresses.into_iter().find(|(_, a)| {
        !(a.is_loopback()
            || a.is_link_local()
            || a.is_multicast()
            || a.is_broadcast()
            || a.is_unspecified()
            || vips.iter().any(|v| v.prefix.addr() == IpAddr::V4(*a)))
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(speaker: &str, peers: &[&str]) -> Config {
        let mut text = format!("[speaker]\nasn = 65001\n{speaker}\n");
        for p in peers {
            text.push_str(&format!("[[peer]]\naddress = \"{p}\"\nasn = 65000\n"));
            if p.contains(':') {
                text.push_str("families = [\"ipv6\", \"ipv4\"]\nnext_hop_v4 = \"192.0.2.11\"\n");
            }
        }
        text.push_str("[[vip]]\nprefix = \"192.0.2.100/32\"\nalways = true\n");
        super::super::parse(&text, Path::new(".")).expect("a valid configuration")
    }

    #[test]
    fn auto_is_the_source_address_toward_a_loopback_peer() {
        for speaker in ["router_id = \"auto\"", ""] {
            let mut c = config(speaker, &["127.0.0.2"]);
            assert_eq!(c.speaker.router_id, Ipv4Addr::UNSPECIFIED);
            let source = resolve_router_id(&mut c).unwrap();
            assert_eq!(c.speaker.router_id, Ipv4Addr::LOCALHOST, "{speaker:?}");
            assert_eq!(source.to_string(), "source address toward peer 127.0.0.2");
            assert!(source.is_auto());
        }
    }

    #[test]
    fn an_ipv6_first_peer_defers_to_the_first_ipv4_peer() {
        let mut c = config("", &["::1", "127.0.0.3", "127.0.0.4"]);
        let source = resolve_router_id(&mut c).unwrap();
        assert_eq!(
            source,
            RouterIdSource::TowardPeer("127.0.0.3".parse().unwrap())
        );
        assert_eq!(c.speaker.router_id, Ipv4Addr::LOCALHOST);
    }

    #[test]
    fn a_peer_local_address_is_the_source() {
        let mut c = config("", &["127.0.0.2"]);
        c.peers[0].local_address = Some("127.0.0.5".parse().unwrap());
        resolve_router_id(&mut c).unwrap();
        assert_eq!(c.speaker.router_id, Ipv4Addr::new(127, 0, 0, 5));
    }

    #[test]
    fn a_configured_router_id_is_kept() {
        let mut c = config("router_id = \"192.0.2.11\"", &["127.0.0.2"]);
        assert_eq!(resolve_router_id(&mut c), Ok(RouterIdSource::Configured));
        assert_eq!(c.speaker.router_id, Ipv4Addr::new(192, 0, 2, 11));
    }

    #[test]
    fn a_derived_vip_is_refused() {
        let mut c = config("", &["127.0.0.2"]);
        c.vips[0].prefix = "127.0.0.1/32".parse().unwrap();
        let e = resolve_router_id(&mut c).unwrap_err();
        assert_eq!(e.key, "speaker.router_id");
        assert!(e.reason.contains("127.0.0.1, a VIP"), "{e}");
    }

    #[test]
    fn without_an_ipv4_peer_the_first_global_address_serves() {
        let c = config("", &["::1"]);
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let list = vec![
            ("lo".to_string(), a("127.0.0.1")),
            ("lo".to_string(), a("192.0.2.100")), // the VIP
            ("eth0".to_string(), a("169.254.1.1")),
            ("eth0".to_string(), a("10.0.0.11")),
            ("eth1".to_string(), a("10.1.0.11")),
        ];
        assert_eq!(
            first_global(list, &c.vips),
            Some(("eth0".to_string(), a("10.0.0.11")))
        );
        let only_local = vec![("lo".to_string(), a("127.0.0.1"))];
        assert_eq!(first_global(only_local, &c.vips), None);
        assert_eq!(
            RouterIdSource::Interface("eth0".to_string()).to_string(),
            "the node's first global IPv4 address, on eth0"
        );
    }

    #[test]
    fn a_source_that_cannot_be_had_is_a_clear_error() {
        // A local_address that is not the node's (RFC 5737 TEST-NET-3, on
        // no real node) cannot be bound.
        let mut c = config("", &["127.0.0.2"]);
        c.peers[0].local_address = Some("203.0.113.254".parse().unwrap());
        let e = resolve_router_id(&mut c).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "speaker.router_id: auto: no IPv4 source address toward peer 127.0.0.2 ("
            ),
            "{e}"
        );
        assert!(
            e.ends_with("write the node's router_id in the file instead"),
            "{e}"
        );
        assert_eq!(c.speaker.router_id, Ipv4Addr::UNSPECIFIED);
    }
}
