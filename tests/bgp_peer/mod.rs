//! A scripted BGP peer on the loopback, written with anyvip-proto: it
//! connects to anyvip from a chosen 127.0.0.x address (AS 65010, router
//! ID 10.0.0.2) and speaks exactly what a test tells it to. Shared by
//! tests/sessions.rs and tests/api.rs; each uses part of it.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyvip_proto::{frame, Asn, Capability, Context, Family, HoldTime, Message, Open};

/// The AS anyvip runs as in these tests, and the peer's.
pub const LOCAL_AS: u32 = 65001;
pub const PEER_AS: u32 = 65010;

pub struct Peer {
    pub stream: TcpStream,
    buf: Vec<u8>,
    ctx: Context,
}

impl Peer {
    pub fn connect(from: Ipv4Addr, to: SocketAddr) -> Peer {
        Peer::try_connect(from, to, None).unwrap()
    }

    /// Connect, with SO_RCVBUF set first if given (a small one makes a
    /// peer that stops reading push back on anyvip quickly).
    pub fn try_connect(
        from: Ipv4Addr,
        to: SocketAddr,
        receive_buffer: Option<usize>,
    ) -> io::Result<Peer> {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        if let Some(size) = receive_buffer {
            socket.set_recv_buffer_size(size)?;
        }
        socket.bind(&SocketAddr::new(IpAddr::V4(from), 0).into())?;
        socket.connect_timeout(&to.into(), Duration::from_secs(5))?;
        let stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        Ok(Peer {
            stream,
            buf: Vec::new(),
            ctx: Context::FOUR_OCTET_AS,
        })
    }

    /// The next message, `None` on EOF, or the read error.
    pub fn try_recv(&mut self) -> io::Result<Option<Message>> {
        loop {
            if let Some(f) = frame(&self.buf, &self.ctx).expect("anyvip sends valid framing") {
                let len = f.message.len();
                let m = Message::decode(&f, &self.ctx).expect("anyvip sends valid messages");
                self.buf.drain(..len);
                return Ok(Some(m));
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk)? {
                0 => return Ok(None),
                n => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The next message, or `None` on EOF.
    pub fn recv(&mut self) -> Option<Message> {
        self.try_recv().unwrap_or_else(|e| panic!("read: {e}"))
    }

    pub fn send(&mut self, m: &Message) {
        self.stream
            .write_all(&m.to_bytes(&self.ctx).unwrap())
            .unwrap();
    }

    /// Answer anyvip's OPEN and reach Established.
    pub fn establish(&mut self) {
        if let Err(e) = self.try_establish(9) {
            panic!("{e}");
        }
    }

    /// Answer anyvip's OPEN offering `hold_time` seconds and reach
    /// Established; what went wrong otherwise.
    pub fn try_establish(&mut self, hold_time: u16) -> Result<(), String> {
        match self.try_recv() {
            Ok(Some(Message::Open(o))) if o.asn() == Asn(LOCAL_AS) => {}
            other => return Err(format!("expected OPEN, got {other:?}")),
        }
        let open = Message::Open(Open::new(
            Asn(PEER_AS),
            HoldTime::new(hold_time).ok_or("hold time 1 or 2")?,
            Ipv4Addr::new(10, 0, 0, 2),
            vec![Capability::Multiprotocol(Family::IPV4_UNICAST)],
        ));
        for m in [open, Message::Keepalive] {
            self.stream
                .write_all(&m.to_bytes(&self.ctx).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        }
        match self.try_recv() {
            Ok(Some(Message::Keepalive)) => Ok(()),
            other => Err(format!("expected KEEPALIVE, got {other:?}")),
        }
    }

    /// Read until a KEEPALIVE arrives; panic on a NOTIFICATION or EOF.
    pub fn expect_alive(&mut self) {
        loop {
            match self.recv() {
                Some(Message::Keepalive) => return,
                Some(Message::Notification(n)) => panic!("session reset: {n}"),
                None => panic!("session closed"),
                Some(_) => {}
            }
        }
    }

    /// Keep the session up from a thread (a KEEPALIVE for each one
    /// received) and hand every message received to the test.
    pub fn run(mut self) -> Running {
        let (tx, messages) = mpsc::channel();
        let stream = self.stream.try_clone().unwrap();
        let thread = std::thread::spawn(move || {
            while let Ok(Some(m)) = self.try_recv() {
                if m == Message::Keepalive {
                    let _ = self
                        .stream
                        .write_all(&Message::Keepalive.to_bytes(&self.ctx).unwrap());
                }
                if tx.send(m).is_err() {
                    break;
                }
            }
        });
        Running {
            messages,
            stream,
            thread: Some(thread),
        }
    }
}

/// A session kept up in the background; closed when dropped.
pub struct Running {
    messages: mpsc::Receiver<Message>,
    stream: TcpStream,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// The first message (from now on) for which `f` is true; panics after
    /// `within`, or on a NOTIFICATION or the end of the session.
    pub fn wait_for(
        &self,
        within: Duration,
        what: &str,
        mut f: impl FnMut(&Message) -> bool,
    ) -> Message {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(Message::Notification(n)) => panic!("waiting for {what}: NOTIFICATION {n}"),
                Ok(m) if f(&m) => return m,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("no {what} within {within:?}"),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("waiting for {what}: the session closed")
                }
            }
        }
    }

    /// Whatever arrived so far; panics if it includes a NOTIFICATION or the
    /// session has ended.
    pub fn assert_alive(&self) {
        loop {
            match self.messages.try_recv() {
                Ok(Message::Notification(n)) => panic!("session reset: {n}"),
                Ok(_) => {}
                Err(mpsc::TryRecvError::Empty) => return,
                Err(mpsc::TryRecvError::Disconnected) => panic!("the session closed"),
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
