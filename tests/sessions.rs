//! anyvip's sessions against a scripted peer on the loopback: what a peer
//! sends can neither break other sessions nor grow memory, and strangers
//! get nothing. The peer is written with anyvip-proto, so these tests run
//! without routers (but do bind 127.0.0.x addresses: no root needed).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyvip_proto::attribute::{AsPath, Community, Origin};
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
        Daemon::start_with(peers, |_| "9s", 0, "")
    }

    /// The same, with each peer's hold time, and `more_vips` VIPs besides
    /// 192.0.2.100/32 (198.18.x.y/32, always announced, with
    /// `vip_options` added to each).
    fn start_with(
        peers: &[Ipv4Addr],
        hold_time: impl Fn(Ipv4Addr) -> &'static str,
        more_vips: u32,
        vip_options: &str,
    ) -> Daemon {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut config = format!(
            "[speaker]\nasn = 65001\nrouter_id = \"10.0.0.1\"\nlisten = [\"127.0.0.1:{port}\"]\n"
        );
        for p in peers {
            config.push_str(&format!(
                "[[peer]]\naddress = \"{p}\"\nasn = 65010\npassive = true\nhold_time = \"{}\"\n",
                hold_time(*p)
            ));
        }
        for i in 0..more_vips {
            config.push_str(&format!(
                "[[vip]]\nprefix = \"{}/32\"\nalways = true\n{vip_options}\n",
                Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + i)
            ));
        }
        config.push_str("[[vip]]\nprefix = \"192.0.2.100/32\"\nalways = true\n");
        // This daemon runs in the test's own network namespace: it must not
        // put addresses or nftables rules there.
        config.push_str("[dataplane]\nmanage = false\n");
        // A short drain, so a stop is quick.
        config.push_str("[drain]\ndelay = \"1s\"\n");
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

    /// `anyvip ARGS -s <its socket>`; panics unless it succeeds.
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_anyvip"))
            .args(args)
            .arg("-s")
            .arg(&self.socket)
            .env_remove("ANYVIP_SOCKET")
            .stdin(Stdio::null())
            .output()
            .expect("run anyvip");
        assert!(
            out.status.success(),
            "anyvip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The peer at `address` in `anyvip status --json`.
    fn peer_status(&self, address: Ipv4Addr) -> serde_json::Value {
        let status: serde_json::Value =
            serde_json::from_str(&self.cli(&["status", "--json"])).expect("status JSON");
        status["peers"]
            .as_array()
            .and_then(|peers| {
                peers
                    .iter()
                    .find(|p| p["address"] == address.to_string())
                    .cloned()
            })
            .unwrap_or_else(|| panic!("no peer {address} in {status}"))
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

/// Whether `m` is an UPDATE announcing something with GRACEFUL_SHUTDOWN
/// (`drained`) or without it.
fn announces(m: &Message, drained: bool) -> bool {
    matches!(m, Message::Update(u) if !u.nlri.is_empty()
        && u.communities().contains(&Community::GRACEFUL_SHUTDOWN) == drained)
}

#[test]
fn a_peer_that_stops_reading_is_reset_with_6_8_and_the_other_session_carries_on() {
    // Every drain or resume of all VIPs is one UPDATE per VIP per session;
    // 200 large communities make each about 2.5 kB, so the kernel's
    // buffers (megabytes: the send buffer grows) fill in a few rounds.
    const VIPS: u32 = 300;
    let communities: Vec<String> = (0..200).map(|i| format!("\"65001:1:{i}\"")).collect();
    let vip_options = format!("large_communities = [{}]", communities.join(", "));
    let good_addr = Ipv4Addr::new(127, 0, 0, 2);
    let stuck_addr = Ipv4Addr::new(127, 0, 0, 3);
    // A long hold time for the stuck peer: anyvip's stall limit (no write
    // progress for the hold time) must not be what ends it, nor its hold
    // timer (the stuck peer sends nothing either).
    let d = Daemon::start_with(
        &[good_addr, stuck_addr],
        move |a| if a == stuck_addr { "240s" } else { "9s" },
        VIPS - 1,
        &vip_options,
    );
    let mut good = Peer::connect(good_addr, d.addr());
    good.establish();
    let good = good.run();
    good.wait_for(
        Duration::from_secs(30),
        "End-of-RIB",
        |m| matches!(m, Message::Update(u) if u.end_of_rib_family().is_some()),
    );

    // A small receive buffer, so the kernel takes little before anyvip's
    // queue has to hold the rest.
    let mut stuck = Peer::try_connect(stuck_addr, d.addr(), Some(4096)).unwrap();
    stuck.try_establish(240).unwrap();
    // From here on the stuck peer reads nothing.

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut flaps = 0;
    let reset = loop {
        d.cli(&["drain"]);
        good.wait_for(Duration::from_secs(30), "a drained UPDATE", |m| {
            announces(m, true)
        });
        d.cli(&["resume"]);
        good.wait_for(Duration::from_secs(30), "a resumed UPDATE", |m| {
            announces(m, false)
        });
        flaps += 1;
        let s = d.peer_status(stuck_addr);
        if let Some(e) = s["last_error"].as_str() {
            break e.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{flaps} drain/resume rounds and the stuck peer is still {s}"
        );
    };
    eprintln!("stuck peer reset after {flaps} drain/resume rounds of {VIPS} VIPs: {reset}");
    assert!(reset.contains("Out of Resources (6/8)"), "{reset}");
    assert!(
        d.log_text().contains("outbound queue full"),
        "the reset is logged: {}",
        d.log_text()
    );

    // The good session never noticed: KEEPALIVEs and UPDATEs still come.
    good.wait_for(Duration::from_secs(10), "a KEEPALIVE", |m| {
        *m == Message::Keepalive
    });
    d.cli(&["drain", "192.0.2.100"]);
    good.wait_for(Duration::from_secs(10), "the drained VIP", |m| {
        announces(m, true)
    });
    good.assert_alive();
    assert_eq!(d.peer_status(good_addr)["established_transitions"], 1);

    // The stuck connection was reset: what the kernel held, then an RST
    // (or, had it read within anyvip's grace, the Cease itself).
    let end = loop {
        match stuck.try_recv() {
            Ok(Some(Message::Notification(n))) => break format!("{n}"),
            Ok(Some(_)) => continue,
            Ok(None) => break "EOF".to_string(),
            Err(e) => break e.kind().to_string(),
        }
    };
    assert!(
        end == "connection reset" || end.contains("(6/8)"),
        "the stuck connection ended with {end}"
    );

    // And the session comes back (after anyvip's reconnect backoff).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut again = loop {
        let attempt = Peer::try_connect(stuck_addr, d.addr(), None)
            .map_err(|e| e.to_string())
            .and_then(|mut p| p.try_establish(9).map(|()| p));
        match attempt {
            Ok(p) => break p,
            Err(e) => assert!(Instant::now() < deadline, "no new session: {e}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    again.expect_alive();
    let s = d.peer_status(stuck_addr);
    assert_eq!(
        (s["state"].as_str(), s["established_transitions"].as_u64()),
        (Some("Established"), Some(2)),
        "{s}"
    );
}

#[test]
fn a_stop_withdraws_then_closes_with_cease_6_2_and_its_message() {
    let addr = Ipv4Addr::new(127, 0, 0, 2);
    let d = Daemon::start(&[addr]);
    let mut peer = Peer::connect(addr, d.addr());
    peer.establish();
    loop {
        match peer.recv() {
            Some(Message::Update(u)) if u.end_of_rib_family().is_some() => break,
            Some(_) => {}
            None => panic!("closed before End-of-RIB"),
        }
    }
    // SIGTERM: drain, withdraw, then Cease (design invariant 5).
    let pid = libc::pid_t::try_from(d.child.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let mut withdrawn = false;
    let cease = loop {
        match peer.recv() {
            Some(Message::Update(u)) if u.withdrawn.len() == 1 => withdrawn = true,
            Some(Message::Notification(n)) => break n,
            Some(_) => {}
            None => panic!("closed without a NOTIFICATION"),
        }
    };
    assert!(withdrawn, "the NOTIFICATION came before the withdrawal");
    assert_eq!(
        (cease.code, cease.subcode),
        (ErrorCode::Cease, 2),
        "{cease}"
    );
    assert_eq!(
        cease.shutdown_communication().and_then(Result::ok),
        Some("anyvip is stopping")
    );
    assert_eq!(peer.recv(), None, "then the connection is closed");
}
