//! The announced state never lies (design invariants 1, 2 and 8): the real
//! daemon in a network namespace of its own, managing `lo` and nftables
//! there, with scripted BGP peers on 127.0.0.x that record every UPDATE.
//!
//! - a reload to a check that fails withdraws the VIP and takes its address
//!   off `lo`; a reload to a new check announces nothing before `rise`;
//! - a reload that only touches a peer keeps the checks and their counters;
//! - a hung `nft` (a fake one, earlier on `PATH`, that sleeps on `list`)
//!   while status is polled does not delay a withdrawal;
//! - a reload that removes two peers that stopped answering, at the moment
//!   the check fails, does not delay the withdrawal to the peer that stays.
//!
//! Bounds are generous (seconds where the daemon needs milliseconds), so a
//! loaded machine does not fail them; the faults they catch cost 5-10 s.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyvip_proto::Message;

mod bgp_peer;
mod netns_util;

use bgp_peer::{Peer, Running};
use netns_util::{in_ns, wait_until, Lab};

const BIN: &str = env!("CARGO_BIN_EXE_anyvip");
const VIP: &str = "192.0.2.100/32";
const PORT: u16 = 179;
/// What the daemon may take beyond the check's own fall × interval; the
/// faults these tests catch took 5 s or more.
const MARGIN: Duration = Duration::from_secs(3);
const PATIENCE: Duration = Duration::from_secs(20);

/// anyvip in its own namespace; killed (it is ours) and cleaned up when
/// dropped, the namespace with the [`Lab`].
struct Node {
    ns: String,
    dir: PathBuf,
    child: Option<Child>,
    // Dropped last: the namespace outlives the daemon.
    _lab: Lab,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn exec_check(dir: &Path, name: &str, interval_ms: u64, rise: u32) -> String {
    format!(
        "[check.{name}]\nexec = [\"/bin/sh\", \"-c\", \"test ! -e {}\"]\n\
         interval = \"{interval_ms}ms\"\ntimeout = \"{}ms\"\nrise = {rise}\nfall = 1\n",
        dir.join(format!("{name}.fail")).display(),
        interval_ms * 3 / 4
    )
}

fn peer_block(address: Ipv4Addr) -> String {
    format!("[[peer]]\naddress = \"{address}\"\nasn = 65010\npassive = true\nhold_time = \"9s\"\n")
}

impl Node {
    /// A namespace with `lo` up; nothing runs yet.
    fn new(test: &str) -> Option<Node> {
        let mut lab = Lab::new(test)?;
        let ns = lab.ns("node");
        let dir = std::env::temp_dir().join(format!("anyvip-{ns}"));
        std::fs::create_dir_all(&dir).unwrap();
        Some(Node {
            ns,
            dir,
            child: None,
            _lab: lab,
        })
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("anyvip.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("anyvip.log")).unwrap_or_default()
    }

    /// Write the configuration: the speaker, `peers`, the VIP following
    /// `checks`, and whatever else `extra` holds (check tables).
    fn configure(&self, peers: &[Ipv4Addr], checks: &[&str], extra: &str) {
        let mut c = format!(
            "[speaker]\nasn = 65001\nrouter_id = \"10.0.0.1\"\nlisten = [\"127.0.0.1:{PORT}\"]\n"
        );
        for p in peers {
            c.push_str(&peer_block(*p));
        }
        let list: Vec<String> = checks.iter().map(|c| format!("\"{c}\"")).collect();
        c.push_str(&format!(
            "[[vip]]\nprefix = \"{VIP}\"\nchecks = [{}]\n",
            list.join(", ")
        ));
        c.push_str(extra);
        c.push_str("[dataplane]\ninterface = \"lo\"\n");
        c.push_str(&format!(
            "[api]\nsocket = \"{}\"\n",
            self.socket().display()
        ));
        std::fs::write(self.dir.join("anyvip.toml"), c).unwrap();
    }

    /// Start anyvip in the namespace; `path_first` goes before `PATH`.
    fn start(&mut self, path_first: Option<&Path>) {
        let mut path = std::env::var("PATH").unwrap_or_default();
        if let Some(first) = path_first {
            path = format!("{}:{path}", first.display());
        }
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, BIN, "run", "-c"])
            .arg(self.dir.join("anyvip.toml"))
            .env("PATH", path)
            .env("ANYVIP_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("anyvip.log")).unwrap())
            .spawn()
            .expect("start anyvip");
        self.child = Some(child);
        let ns = self.ns.clone();
        let listening = wait_until(PATIENCE, || {
            in_ns(&ns, || {
                std::net::TcpStream::connect_timeout(
                    &SocketAddr::from(([127, 0, 0, 1], PORT)),
                    Duration::from_millis(200),
                )
                .is_ok()
            })
        });
        assert!(listening, "anyvip did not listen:\n{}", self.log());
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("-s")
            .arg(self.socket())
            .stdin(Stdio::null())
            .output()
            .expect("run anyvip")
    }

    fn reload(&self) {
        let out = self.cli(&["reload"]);
        assert!(
            out.status.success(),
            "reload: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// `anyvip reload` from another thread, so that the test can watch the
    /// peers while the daemon handles it (a reload that blocked the loop
    /// would otherwise hide how late the withdrawal came).
    fn reload_in_background(&self) -> std::thread::JoinHandle<Output> {
        let socket = self.socket();
        std::thread::spawn(move || {
            Command::new(BIN)
                .args(["reload", "-s"])
                .arg(socket)
                .stdin(Stdio::null())
                .output()
                .expect("run anyvip reload")
        })
    }

    fn status(&self) -> serde_json::Value {
        let out = self.cli(&["status", "--json"]);
        assert!(out.status.success(), "status: {out:?}\n{}", self.log());
        serde_json::from_slice(&out.stdout).expect("status --json is JSON")
    }

    fn check(&self, name: &str) -> serde_json::Value {
        self.status()["checks"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no check {name} in status"))
    }

    fn vip_mode(&self) -> String {
        self.status()["vips"][0]["mode"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn has_address(&self) -> bool {
        let out = Command::new("ip")
            .args(["-n", &self.ns, "-4", "addr", "show", "dev", "lo"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains(VIP)
    }

    /// A scripted peer from `from`, established and kept up in the
    /// background.
    fn peer(&self, from: Ipv4Addr) -> Running {
        let mut p = in_ns(&self.ns, || {
            Peer::connect(from, SocketAddr::from(([127, 0, 0, 1], PORT)))
        });
        p.establish();
        p.run()
    }

    fn fail(&self, check: &str) {
        std::fs::write(self.dir.join(format!("{check}.fail")), "").unwrap();
    }
}

fn announces_vip(m: &Message) -> bool {
    matches!(m, Message::Update(u) if u.announced().any(|n| n.prefix.to_string() == VIP))
}

fn withdraws_vip(m: &Message) -> bool {
    matches!(m, Message::Update(u) if u.withdrawn_routes().any(|n| n.prefix.to_string() == VIP))
}

#[test]
fn a_reload_to_a_failing_check_withdraws_and_a_new_check_announces_only_after_rise() {
    let Some(mut node) = Node::new("reload_to_failing_check") else {
        return;
    };
    let peer_addr = Ipv4Addr::new(127, 0, 0, 2);
    let c1 = exec_check(&node.dir, "c1", 200, 1);
    node.configure(&[peer_addr], &["c1"], &c1);
    node.start(None);
    let peer = node.peer(peer_addr);
    peer.wait_for(PATIENCE, "the VIP announced", announces_vip);
    assert!(wait_until(PATIENCE, || node.has_address()), "no VIP on lo");

    // The check's command changes to one that always fails: the new check
    // starts down, so the VIP is withdrawn at the reload itself.
    let c1_failing = c1.replace("test ! -e", "test -e");
    node.configure(&[peer_addr], &["c1"], &c1_failing);
    let reloaded = Instant::now();
    let reload = node.reload_in_background();
    peer.wait_for(
        Duration::from_millis(200) + MARGIN,
        "the withdrawal after the reload",
        withdraws_vip,
    );
    assert!(reload.join().unwrap().status.success(), "{}", node.log());
    assert!(
        wait_until(MARGIN, || !node.has_address()),
        "the VIP address stayed on lo"
    );
    let s = node.status();
    assert_eq!(s["vips"][0]["mode"], "withdrawn", "{s}");
    assert_eq!(s["vips"][0]["healthy"], false, "{s}");
    eprintln!("withdrawn {:?} after the reload", reloaded.elapsed());

    // A new check with rise 5: nothing is announced before it has passed
    // five times.
    let c2 = exec_check(&node.dir, "c2", 200, 5);
    node.configure(&[peer_addr], &["c2"], &c2);
    node.reload();
    peer.wait_for(PATIENCE, "the VIP announced again", announces_vip);
    let c2_state = node.check("c2");
    assert!(
        c2_state["probes"].as_u64().unwrap_or(0) >= 5 && c2_state["health"] == "up",
        "announced before rise: {c2_state}"
    );
    assert!(node.has_address());
    peer.assert_alive();
}

#[test]
fn a_reload_that_only_adds_a_peer_keeps_the_checks_and_their_counters() {
    let Some(mut node) = Node::new("reload_peer_only") else {
        return;
    };
    let (a, b) = (Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3));
    let c1 = exec_check(&node.dir, "c1", 200, 2);
    node.configure(&[a], &["c1"], &c1);
    node.start(None);
    let peer_a = node.peer(a);
    peer_a.wait_for(PATIENCE, "the VIP announced", announces_vip);
    let before = node.check("c1");

    node.configure(&[a, b], &["c1"], &c1);
    node.reload();
    let peer_b = node.peer(b);
    peer_b.wait_for(PATIENCE, "the VIP on the new session", announces_vip);
    let after = node.check("c1");
    assert_eq!(after["health"], "up");
    assert_eq!(
        after["transitions"], before["transitions"],
        "the check was restarted: {before} -> {after}"
    );
    assert!(
        after["probes"].as_u64() >= before["probes"].as_u64(),
        "the probe counter went back: {before} -> {after}"
    );
    assert_eq!(node.vip_mode(), "announced");
    // No withdrawal reached the first peer.
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        peer_a.assert_alive();
        std::thread::sleep(Duration::from_millis(50));
    }
    let got_withdrawal = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        peer_a.wait_for(Duration::from_millis(300), "a withdrawal", withdraws_vip)
    }));
    assert!(
        got_withdrawal.is_err(),
        "the reload flapped the VIP on an unchanged peer"
    );
}

/// A fake `nft` that sleeps 5 s on every `list` once `slow` exists, and is
/// the real one otherwise.
fn slow_nft(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let real = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("nft installed");
    let script = format!(
        "#!/bin/sh\nif [ -e {slow} ]; then\n  for a in \"$@\"; do\n    if [ \"$a\" = list ]; then sleep 5; fi\n  done\nfi\nexec {real} \"$@\"\n",
        slow = dir.join("slow").display()
    );
    let nft = bin.join("nft");
    std::fs::write(&nft, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&nft, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn a_hung_nft_while_status_is_polled_does_not_delay_a_withdrawal() {
    let Some(mut node) = Node::new("hung_nft") else {
        return;
    };
    let a = Ipv4Addr::new(127, 0, 0, 2);
    let c1 = exec_check(&node.dir, "c1", 200, 1);
    node.configure(&[a], &["c1"], &c1);
    let bin = slow_nft(&node.dir);
    node.start(Some(&bin));
    let peer = node.peer(a);
    peer.wait_for(PATIENCE, "the VIP announced", announces_vip);

    // From now on every `nft list` takes 5 s, and status is asked for
    // without a break.
    std::fs::write(node.dir.join("slow"), "").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(AtomicU32::new(0));
    let poller = {
        let (stop, answers, socket) = (stop.clone(), answers.clone(), node.socket());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let out = Command::new(BIN)
                    .args(["status", "--json", "-s"])
                    .arg(&socket)
                    .stdin(Stdio::null())
                    .output();
                if out.is_ok_and(|o| o.status.success()) {
                    answers.fetch_add(1, Ordering::Relaxed);
                }
            }
            answers.load(Ordering::Relaxed)
        })
    };
    // The first answer set a (now 5 s long) nft reading going; the check
    // fails while it hangs.
    assert!(
        wait_until(PATIENCE, || answers.load(Ordering::Relaxed) >= 2),
        "status never answered while nft hung"
    );
    node.fail("c1");
    let failed = Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        peer.wait_for(
            Duration::from_millis(200) + MARGIN,
            "the withdrawal while nft hangs",
            withdraws_vip,
        )
    }));
    let took = failed.elapsed();
    stop.store(true, Ordering::Relaxed);
    let answered = poller.join().unwrap();
    assert!(
        result.is_ok(),
        "withdrawal late ({took:?}):\n{}",
        node.log()
    );
    assert!(answered > 0, "status never answered while nft hung");
    eprintln!("withdrawn {took:?} after the check failed; {answered} status answers meanwhile");
}

#[test]
fn removing_two_stuck_peers_at_a_health_failure_does_not_delay_the_withdrawal() {
    let Some(mut node) = Node::new("reload_stuck_peers") else {
        return;
    };
    let (a, b, c) = (
        Ipv4Addr::new(127, 0, 0, 2),
        Ipv4Addr::new(127, 0, 0, 3),
        Ipv4Addr::new(127, 0, 0, 4),
    );
    // Small socket buffers in this namespace, so that a peer that stops
    // reading soon leaves anyvip's writes to it stuck.
    for key in ["net.ipv4.tcp_wmem", "net.ipv4.tcp_rmem"] {
        let out = Command::new("ip")
            .args(["netns", "exec", &node.ns, "sysctl", "-qw"])
            .arg(format!("{key}=4096 4096 4096"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{key}: {out:?}");
    }
    let c1 = exec_check(&node.dir, "c1", 200, 1);
    node.configure(&[a, b, c], &["c1"], &c1);
    node.start(None);
    let stays = node.peer(a);
    stays.wait_for(PATIENCE, "the VIP announced", announces_vip);
    // b and c: established, then they never read again (their KEEPALIVEs
    // still go out, so only their receive side is stuck).
    let mut stuck = Vec::new();
    for p in [b, c] {
        let mut peer = in_ns(&node.ns, || {
            Peer::connect(p, SocketAddr::from(([127, 0, 0, 1], PORT)))
        });
        peer.establish();
        let mut w = peer.stream.try_clone().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let t = std::thread::spawn(move || {
            use std::io::Write;
            let ka = Message::Keepalive
                .to_bytes(&anyvip_proto::Context::FOUR_OCTET_AS)
                .unwrap();
            while !s2.load(Ordering::Relaxed) {
                if w.write_all(&ka).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        stuck.push((peer, stop, t));
    }
    // Fill their queues: every drain/resume is one UPDATE to each peer.
    for _ in 0..150 {
        node.cli(&["drain"]);
        node.cli(&["resume"]);
    }
    let ss = Command::new("ip")
        .args([
            "netns", "exec", &node.ns, "ss", "-Htn", "sport", "=", ":179",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    eprintln!("anyvip's sockets before the reload:\n{ss}");
    stays.wait_for(PATIENCE, "the VIP announced after the flaps", announces_vip);
    // Whatever was in flight before the failure is no longer of interest.
    while std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        stays.wait_for(Duration::from_millis(300), "anything", |_| true)
    }))
    .is_ok()
    {}

    // One reload removes b and c and, at the same moment, the check fails.
    node.configure(&[a], &["c1"], &c1);
    node.fail("c1");
    let at = Instant::now();
    let reload = node.reload_in_background();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        stays.wait_for(
            Duration::from_millis(200) + MARGIN,
            "the withdrawal to the peer that stays",
            withdraws_vip,
        )
    }));
    let took = at.elapsed();
    for (_, stop, t) in stuck {
        stop.store(true, Ordering::Relaxed);
        let _ = t.join();
    }
    assert!(
        result.is_ok(),
        "withdrawal late ({took:?}):\n{}",
        node.log()
    );
    assert!(reload.join().unwrap().status.success(), "{}", node.log());
    eprintln!("withdrawn {took:?} after the reload");
    assert!(
        wait_until(PATIENCE, || !node.has_address()),
        "the VIP address stayed on lo"
    );
}
