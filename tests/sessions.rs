//! anyvip's sessions against a scripted peer on the loopback: what a peer
//! sends can neither break other sessions nor grow memory, and strangers
//! get nothing. The peer is written with anyvip-proto, so these tests run
//! without routers (but do bind 127.0.0.x addresses: no root needed).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyvip_proto::attribute::{AsPath, Origin};
use anyvip_proto::{Attribute, AttributeValue, ErrorCode, Family, Message, Nlri, Update};

mod bgp_peer;
use bgp_peer::Peer;

/// The daemon under test; killed (it is ours) when dropped.
struct Daemon {
    child: Child,
    log: std::path::PathBuf,
    socket: std::path::PathBuf,
    port: u16,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Daemon {
    /// anyvip listening on 127.0.0.1:<free port>, with passive peers at
    /// the given loopback addresses (AS 65010 each).
    fn start(peers: &[Ipv4Addr]) -> Daemon {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut config = format!(
            "[speaker]\nasn = 65001\nrouter_id = \"10.0.0.1\"\nlisten = [\"127.0.0.1:{port}\"]\n"
        );
        for p in peers {
            config.push_str(&format!(
                "[[peer]]\naddress = \"{p}\"\nasn = 65010\npassive = true\nhold_time = \"9s\"\n"
            ));
        }
        config.push_str("[[vip]]\nprefix = \"192.0.2.100/32\"\nalways = true\n");
        // This daemon runs in the test's own network namespace: it must not
        // put addresses or nftables rules there.
        config.push_str("[dataplane]\nmanage = false\n");
        let dir = std::env::temp_dir();
        let stem = format!("anyvip-sessions-{}-{port}", std::process::id());
        let conf = dir.join(format!("{stem}.toml"));
        let log = dir.join(format!("{stem}.log"));
        // Its own control socket: the default one is shared by every daemon.
        let socket = dir.join(format!("{stem}.sock"));
        config.push_str(&format!("[api]\nsocket = \"{}\"\n", socket.display()));
        std::fs::write(&conf, config).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_anyvip"))
            .args(["run", "-c"])
            .arg(&conf)
            .env("ANYVIP_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start anyvip");
        let d = Daemon {
            child,
            log,
            socket,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&d.addr(), Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "anyvip did not listen: {}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(&conf);
        d
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Resident set size in kB.
    fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS")
    }
}

#[test]
fn connection_from_an_unconfigured_address_is_closed_without_an_open() {
    let d = Daemon::start(&[Ipv4Addr::new(127, 0, 0, 2)]);
    let mut stranger = Peer::connect(Ipv4Addr::new(127, 0, 0, 9), d.addr());
    let mut got = Vec::new();
    let n = stranger.stream.read_to_end(&mut got).unwrap_or(0);
    assert_eq!(n, 0, "a stranger must get nothing, got {got:02x?}");
    assert!(
        d.log_text().contains("not a configured peer"),
        "{}",
        d.log_text()
    );
}

#[test]
fn a_peer_sending_garbage_is_reset_alone_and_the_other_session_stays_up() {
    let good_addr = Ipv4Addr::new(127, 0, 0, 2);
    let bad_addr = Ipv4Addr::new(127, 0, 0, 3);
    let d = Daemon::start(&[good_addr, bad_addr]);
    let mut good = Peer::connect(good_addr, d.addr());
    good.establish();
    // Our VIP, then End-of-RIB.
    let first = good.recv();
    assert!(
        matches!(first, Some(Message::Update(ref u)) if u.nlri.len() == 1),
        "{first:?}"
    );

    let mut bad = Peer::connect(bad_addr, d.addr());
    bad.establish();
    bad.stream.write_all(&[0xff; 16]).unwrap();
    bad.stream.write_all(&[0x00, 0x05, 0x02]).unwrap(); // length 5: never valid
    let reply = loop {
        match bad.recv() {
            Some(Message::Notification(n)) => break n,
            Some(_) => continue,
            None => panic!("closed without a NOTIFICATION"),
        }
    };
    assert_eq!((reply.code, reply.subcode), (ErrorCode::MessageHeader, 2));
    assert_eq!(&reply.data[..], &[0x00, 0x05], "data is the bad length");
    assert_eq!(bad.recv(), None, "then the connection is closed");

    good.expect_alive();
    good.expect_alive();
}

/// One UPDATE announcing `count` consecutive /24s starting at `first`.
fn table_chunk(first: u32, count: u32) -> Message {
    Message::Update(Update {
        attributes: vec![
            Attribute::new(AttributeValue::Origin(Origin::Igp)),
            Attribute::new(AttributeValue::AsPath(AsPath::sequence([65010, 174, 3356]))),
            Attribute::new(AttributeValue::NextHop(Ipv4Addr::new(127, 0, 0, 2))),
        ],
        nlri: (first..first + count)
            .map(|i| {
                Nlri::new(
                    ipnet::Ipv4Net::new(Ipv4Addr::from(i << 8), 24)
                        .unwrap()
                        .into(),
                )
            })
            .collect(),
        ..Update::default()
    })
}

#[test]
fn a_full_table_from_a_peer_neither_kills_the_session_nor_grows_memory() {
    const PREFIXES: u32 = 1_000_000;
    const PER_UPDATE: u32 = 1000;
    let addr = Ipv4Addr::new(127, 0, 0, 2);
    let d = Daemon::start(&[addr]);
    let mut peer = Peer::connect(addr, d.addr());
    peer.establish();
    peer.expect_alive();
    let before = d.rss_kb();
    let start = Instant::now();
    let mut sent = 0;
    while sent < PREFIXES {
        // 0x100000 << 8 = 16.0.0.0: a million distinct /24s from there.
        peer.send(&table_chunk(0x10_0000 + sent, PER_UPDATE));
        sent += PER_UPDATE;
    }
    peer.send(&Message::Update(Update::end_of_rib(Family::IPV4_UNICAST)));
    let elapsed = start.elapsed();
    // Still alive afterwards: keepalives keep coming, no NOTIFICATION.
    peer.expect_alive();
    peer.expect_alive();
    let after = d.rss_kb();
    eprintln!(
        "full table: {PREFIXES} prefixes in {elapsed:?}; anyvip RSS {before} kB before, {after} kB after"
    );
    assert!(
        after < before + 8 * 1024,
        "memory grew from {before} kB to {after} kB receiving a full table"
    );
}
