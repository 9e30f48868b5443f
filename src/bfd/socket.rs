//! The UDP sockets of BFD: RFC 5881 single hop (port 3784) and RFC 5883
//! multihop (port 4784). One listening socket per port and family, where
//! the TTL / Hop Limit of every datagram is read from its control message;
//! one sending socket per session, on its own source port.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// RFC 5881 §4: "Control packets MUST be transmitted in UDP packets with
/// destination port 3784".
pub const SINGLE_HOP_PORT: u16 = 3784;
/// RFC 5883 §5: multihop Control packets go to port 4784.
pub const MULTIHOP_PORT: u16 = 4784;
/// RFC 5881 §5: sent "with a TTL or Hop Limit value of 255"; received
/// single-hop packets with anything less are discarded (GTSM, RFC 5082).
pub const TTL: u8 = 255;
/// RFC 5881 §4: "The source port MUST be in the range 49152 through
/// 65535", and SHOULD differ per session.
const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;
/// Tries at random source ports before giving up (the range has 16384).
const BIND_TRIES: usize = 64;

/// The destination port for a session.
pub fn port(multihop: bool) -> u16 {
    if multihop {
        MULTIHOP_PORT
    } else {
        SINGLE_HOP_PORT
    }
}

/// A socket receiving Control packets on `port` for one family, with the
/// TTL (IPv4, `IP_RECVTTL`) or Hop Limit (IPv6, `IPV6_RECVHOPLIMIT`) of
/// each datagram delivered alongside it.
pub fn listen(v6: bool, port: u16) -> io::Result<UdpSocket> {
    let (domain, any) = if v6 {
        (Domain::IPV6, IpAddr::V6(Ipv6Addr::UNSPECIFIED))
    } else {
        (Domain::IPV4, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if v6 {
        // The IPv4 socket takes IPv4: no mapped addresses here.
        socket.set_only_v6(true)?;
        setsockopt(&socket.as_fd(), sockopt::Ipv6RecvHopLimit, &true)?;
    } else {
        setsockopt(&socket.as_fd(), sockopt::Ipv4RecvTtl, &true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::new(any, port).into())?;
    UdpSocket::from_std(socket.into())
}

/// A sending socket for one session: bound to `local` (or the wildcard,
/// leaving the source address to the route) on a random port of the RFC
/// 5881 range, sending with TTL / Hop Limit 255.
pub fn sender(
    peer: IpAddr,
    local: Option<IpAddr>,
    mut random: impl FnMut() -> u32,
) -> io::Result<UdpSocket> {
    let v6 = peer.is_ipv6();
    let (domain, any) = if v6 {
        (Domain::IPV6, IpAddr::V6(Ipv6Addr::UNSPECIFIED))
    } else {
        (Domain::IPV4, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if v6 {
        socket.set_only_v6(true)?;
        socket.set_unicast_hops_v6(TTL.into())?;
    } else {
        socket.set_ttl_v4(TTL.into())?;
    }
    socket.set_nonblocking(true)?;
    let address = local.unwrap_or(any);
    let span = u32::from(SOURCE_PORTS.end() - SOURCE_PORTS.start()) + 1;
    let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no free source port");
    for _ in 0..BIND_TRIES {
        let offset = u16::try_from(random() % span).unwrap_or(0);
        let port = SOURCE_PORTS.start().saturating_add(offset);
        match socket.bind(&SocketAddr::new(address, port).into()) {
            Ok(()) => return UdpSocket::from_std(socket.into()),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// One received datagram: its length in the buffer, its source and the TTL
/// / Hop Limit it arrived with (`None` if the kernel gave none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    pub len: usize,
    pub source: IpAddr,
    pub ttl: Option<u8>,
    /// Larger than the buffer: cut short.
    pub truncated: bool,
}

/// Read one datagram if there is one (`WouldBlock` if not), never waiting.
pub fn try_receive(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Datagram> {
    socket.try_io(Interest::READABLE, || receive(socket.as_raw_fd(), buf))
}

fn receive(fd: std::os::fd::RawFd, buf: &mut [u8]) -> io::Result<Datagram> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut control = nix::cmsg_space!(libc::c_int);
    let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut control), MsgFlags::empty())
        .map_err(io::Error::from)?;
    let mut ttl = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for cmsg in cmsgs {
            match cmsg {
                ControlMessageOwned::Ipv4Ttl(t) | ControlMessageOwned::Ipv6HopLimit(t) => {
                    ttl = u8::try_from(t).ok();
                }
                _ => {}
            }
        }
    }
    let source =
        msg.address.as_ref().and_then(ip_of).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "datagram without a source")
        })?;
    Ok(Datagram {
        len: msg.bytes,
        source,
        ttl,
        truncated: msg.flags.contains(MsgFlags::MSG_TRUNC),
    })
}

fn ip_of(address: &SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    let v6 = address.as_sockaddr_in6()?.ip();
    // A mapped address is the IPv4 peer it stands for.
    Some(match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    })
}

/// Whether a datagram passes RFC 5881 §5's check: single hop needs 255;
/// multihop (RFC 5883 §5 leaves the check to configuration) takes any.
pub fn ttl_ok(datagram: &Datagram, multihop: bool) -> bool {
    multihop || datagram.ttl == Some(TTL)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(ttl: Option<u8>) -> Datagram {
        Datagram {
            len: 24,
            source: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            ttl,
            truncated: false,
        }
    }

    #[test]
    fn single_hop_takes_only_ttl_255_and_multihop_takes_any() {
        assert!(ttl_ok(&datagram(Some(255)), false));
        assert!(!ttl_ok(&datagram(Some(254)), false));
        assert!(!ttl_ok(&datagram(None), false));
        assert!(ttl_ok(&datagram(Some(1)), true));
        assert_eq!((port(false), port(true)), (3784, 4784));
    }
}
