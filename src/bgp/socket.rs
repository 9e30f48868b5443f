//! BGP transport sockets: source address, TTL and GTSM (RFC 5082), and
//! TCP MD5 signatures (RFC 2385), on connecting and listening sockets.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::config::Ttl;

/// RFC 5082 §3: send with TTL 255 and accept only 255 - 1 hop.
const GTSM_SEND_TTL: u32 = 255;
const GTSM_MIN_TTL: u32 = 254;

/// Linux `struct tcp_md5sig` (include/uapi/linux/tcp.h).
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; 80],
}

/// Install (or, with `None`, remove) the RFC 2385 key for segments to and
/// from `peer`. On a listening socket it applies to every connection later
/// accepted from that address.
pub fn set_md5(socket: &Socket, peer: IpAddr, key: Option<&[u8]>) -> io::Result<()> {
    let addr = SockAddr::from(SocketAddr::new(peer, 0));
    // SAFETY: all-zero is a valid value for this plain-data C struct.
    let mut sig: TcpMd5Sig = unsafe { std::mem::zeroed() };
    let addr_len = usize::try_from(addr.len()).unwrap_or(usize::MAX);
    if addr_len > std::mem::size_of::<libc::sockaddr_storage>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "address too long",
        ));
    }
    // SAFETY: `addr` points to `addr_len` valid bytes, and the destination
    // is a sockaddr_storage, which is at least that large (checked above).
    unsafe {
        std::ptr::copy_nonoverlapping(
            addr.as_ptr().cast::<u8>(),
            std::ptr::addr_of_mut!(sig.addr).cast::<u8>(),
            addr_len,
        );
    }
    if let Some(key) = key {
        let slot = sig.key.get_mut(..key.len()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "TCP MD5 key longer than 80 octets",
            )
        })?;
        slot.copy_from_slice(key);
        sig.keylen = u16::try_from(key.len()).unwrap_or(0);
    }
    let fd = std::os::fd::AsRawFd::as_raw_fd(socket);
    let len = libc::socklen_t::try_from(std::mem::size_of::<TcpMd5Sig>()).unwrap_or(0);
    // SAFETY: `fd` is an open socket owned by `socket`; `sig` lives across
    // the call and `len` is its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            std::ptr::addr_of!(sig).cast::<libc::c_void>(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_int(socket: &Socket, level: libc::c_int, name: libc::c_int, value: u32) -> io::Result<()> {
    let value = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
    let fd = std::os::fd::AsRawFd::as_raw_fd(socket);
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(0);
    // SAFETY: `fd` is an open socket; `value` lives across the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            std::ptr::addr_of!(value).cast::<libc::c_void>(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The outgoing TTL (or hop limit) and, for GTSM, the minimum accepted.
pub fn set_ttl(socket: &Socket, family_v6: bool, ttl: Ttl) -> io::Result<()> {
    let send = match ttl {
        Ttl::Send(n) => u32::from(n),
        Ttl::Security => GTSM_SEND_TTL,
    };
    if family_v6 {
        socket.set_unicast_hops_v6(send)?;
    } else {
        socket.set_ttl_v4(send)?;
    }
    if ttl == Ttl::Security {
        if family_v6 {
            set_int(
                socket,
                libc::IPPROTO_IPV6,
                libc::IPV6_MINHOPCOUNT,
                GTSM_MIN_TTL,
            )?;
        } else {
            set_int(socket, libc::IPPROTO_IP, libc::IP_MINTTL, GTSM_MIN_TTL)?;
        }
    }
    Ok(())
}

/// What a connection to (or from) one peer needs.
#[derive(Debug, Clone)]
pub struct Transport {
    pub remote: SocketAddr,
    pub local: Option<IpAddr>,
    pub ttl: Ttl,
    pub password: Option<Vec<u8>>,
}

/// Connect to the peer with its TTL, MD5 key and source address set before
/// the SYN goes out.
pub async fn connect(t: &Transport, timeout: Duration) -> io::Result<TcpStream> {
    let v6 = t.remote.is_ipv6();
    let socket = Socket::new(
        Domain::for_address(t.remote),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    if let Some(key) = &t.password {
        set_md5(&socket, t.remote.ip(), Some(key))?;
    }
    set_ttl(&socket, v6, t.ttl)?;
    if let Some(local) = t.local {
        socket.bind(&SockAddr::from(SocketAddr::new(local, 0)))?;
    }
    let socket = TcpSocket::from_std_stream(socket.into());
    tokio::time::timeout(timeout, socket.connect(t.remote))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
}

/// A listening socket with the MD5 keys of every peer that may connect.
pub fn listen(addr: SocketAddr, keys: &[(IpAddr, Vec<u8>)]) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    for (peer, key) in keys {
        // A key for the other address family cannot be set on this socket.
        if peer.is_ipv6() == addr.is_ipv6() {
            set_md5(&socket, *peer, Some(key))?;
        }
    }
    socket.set_nonblocking(true)?;
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(64)?;
    TcpListener::from_std(socket.into())
}

/// Apply the peer's TTL rules to a connection it opened to us.
pub fn accept_setup(stream: &TcpStream, ttl: Ttl) -> io::Result<()> {
    let socket = socket2::SockRef::from(stream);
    let v6 = stream.peer_addr()?.is_ipv6();
    stream.set_nodelay(true)?;
    set_ttl(&socket, v6, ttl)
}
