//! The reconciler (design invariant 8, issue "a node that heals itself"):
//! the real daemon in a node namespace behind a router namespace, with one
//! VIP announced (address on `lo`) and one withdrawn whose traffic would
//! loop between node and router without the guard.
//!
//! Someone else's `nft flush ruleset`, a rule deleted from our table and
//! `ip addr del` of the announced VIP are each repaired within the
//! reconcile interval plus a generous margin, counted and shown in status;
//! a looping packet is dropped (and counted) again after the repair; a
//! table that is not ours is never touched.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod netns_util;

use netns_util::{in_ns, wait_until, Lab};

const BIN: &str = env!("CARGO_BIN_EXE_anyvip");
const UP: &str = "192.0.2.100";
const DOWN: &str = "192.0.2.101";
/// The reconcile interval of these tests, and what a repair may take.
const INTERVAL_MS: u64 = 500;
const BOUND: Duration = Duration::from_secs(8);

struct Node {
    lab: Lab,
    router: String,
    node: String,
    dir: PathBuf,
    child: Option<Child>,
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

impl Node {
    /// router (r0 198.18.2.1) — node (n0 198.18.2.2). The router sends both
    /// VIPs to the node; the node's route for the withdrawn one points back
    /// at the router: a loop, unless the guard drops it.
    fn start(test: &str) -> Option<Node> {
        let mut lab = Lab::new(test)?;
        let (r, n) = (lab.ns("router"), lab.ns("node"));
        lab.veth(&r, "r0", &n, "n0");
        lab.ip(&r, &["address", "add", "198.18.2.1/30", "dev", "r0"]);
        lab.ip(&n, &["address", "add", "198.18.2.2/30", "dev", "n0"]);
        lab.forwarding(&r);
        lab.forwarding(&n);
        for vip in [UP, DOWN] {
            lab.ip(
                &r,
                &["route", "add", &format!("{vip}/32"), "via", "198.18.2.2"],
            );
        }
        lab.ip(&n, &["route", "add", "default", "via", "198.18.2.1"]);
        let dir = std::env::temp_dir().join(format!("anyvip-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            "[speaker]\nasn = 65001\nrouter_id = \"198.18.2.2\"\nlisten = []\n\
             [[peer]]\naddress = \"198.18.2.1\"\nasn = 65000\npassive = true\n\
             [check.never]\nexec = [\"/bin/false\"]\ninterval = \"200ms\"\ntimeout = \"150ms\"\n\
             [[vip]]\nprefix = \"{UP}/32\"\nalways = true\n\
             [[vip]]\nprefix = \"{DOWN}/32\"\nchecks = [\"never\"]\n\
             [dataplane]\ninterface = \"lo\"\nreconcile_interval = \"{INTERVAL_MS}ms\"\n\
             [api]\nsocket = \"{}\"\n",
            dir.join("anyvip.sock").display()
        );
        std::fs::write(dir.join("anyvip.toml"), config).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &n, BIN, "run", "-c"])
            .arg(dir.join("anyvip.toml"))
            .env("ANYVIP_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("anyvip.log")).unwrap())
            .spawn()
            .expect("start anyvip");
        let node = Node {
            lab,
            router: r,
            node: n,
            dir,
            child: Some(child),
        };
        assert!(
            wait_until(BOUND, || node.has_address(UP)),
            "the always-up VIP never got its address:\n{}",
            node.log()
        );
        Some(node)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("anyvip.log")).unwrap_or_default()
    }

    fn status(&self) -> serde_json::Value {
        let out = Command::new(BIN)
            .args(["status", "--json", "-s"])
            .arg(self.dir.join("anyvip.sock"))
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    }

    fn dataplane(&self, key: &str) -> u64 {
        self.status()["dataplane"][key].as_u64().unwrap_or(0)
    }

    fn guard_packets(&self) -> u64 {
        self.status()["nft_counters"]["guard"]["packets"]
            .as_u64()
            .unwrap_or(0)
    }

    fn nft(&self, args: &str) -> String {
        self.lab.exec(&self.node, &["nft", args])
    }

    fn has_address(&self, vip: &str) -> bool {
        self.lab
            .ip(&self.node, &["-4", "addr", "show", "dev", "lo"])
            .contains(&format!("{vip}/32"))
    }

    /// Send `n` datagrams to the withdrawn VIP from the router.
    fn send_to_withdrawn(&self, n: usize) {
        in_ns(&self.router, || {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            let to: SocketAddr = format!("{DOWN}:9999").parse().unwrap();
            for _ in 0..n {
                s.send_to(b"anyvip repair test", to).unwrap();
            }
        });
    }

    fn time_exceeded_sent(&self) -> u64 {
        [&self.router, &self.node]
            .iter()
            .map(|ns| self.lab.snmp(ns, "Icmp", "OutTimeExcds"))
            .sum()
    }

    /// The guard drops what the router sends to the withdrawn VIP, at the
    /// first node, and counts it: no packet loops until its TTL runs out.
    fn assert_guard_holds(&self) {
        let (before, te) = (self.guard_packets(), self.time_exceeded_sent());
        self.send_to_withdrawn(5);
        assert!(
            wait_until(BOUND, || self.guard_packets() >= before + 5),
            "the guard did not count the looping packets:\n{}",
            self.status()
        );
        assert_eq!(self.time_exceeded_sent(), te, "a packet looped");
    }
}

#[test]
fn flushed_rules_a_changed_table_and_a_removed_address_are_repaired_and_counted() {
    let Some(node) = Node::start("dataplane_repair") else {
        return;
    };
    assert!(wait_until(BOUND, || node.status()["dataplane"]["in_sync"] == true));
    node.assert_guard_holds();

    // Someone else's table in the same namespace: never touched.
    node.nft("add table inet other");
    node.nft("add chain inet other input { type filter hook input priority 10 ; }");
    node.nft("add rule inet other input counter accept");
    let other = || {
        node.nft("list table inet other")
            .replace(char::is_numeric, "")
    };
    let other_before = other();

    // 1. `nft flush ruleset` (what Debian's nftables.service does on every
    //    restart): the guard is gone, and back within the interval.
    node.nft("flush ruleset");
    assert!(
        wait_until(BOUND, || node.dataplane("nft_repairs") >= 1),
        "the flushed table was not repaired:\n{}\n{}",
        node.status(),
        node.log()
    );
    node.assert_guard_holds();
    let status = node.status();
    assert!(
        status["dataplane"]["last_drift"]
            .as_str()
            .is_some_and(|d| d.contains("missing")),
        "{status}"
    );

    // 2. Our table changed by hand (its rules flushed): repaired; the other
    //    table, created again, is left exactly as it was.
    node.nft("add table inet other");
    node.nft("add chain inet other input { type filter hook input priority 10 ; }");
    node.nft("add rule inet other input counter accept");
    node.nft("flush table inet anyvip");
    assert!(
        wait_until(BOUND, || node.dataplane("nft_repairs") >= 2),
        "the changed table was not repaired:\n{}",
        node.status()
    );
    node.assert_guard_holds();
    assert_eq!(other(), other_before, "a foreign table was touched");

    // 3. The announced VIP's address removed by hand: back.
    node.lab.ip(
        &node.node,
        &["addr", "del", &format!("{UP}/32"), "dev", "lo"],
    );
    assert!(
        wait_until(BOUND, || node.has_address(UP)),
        "the VIP address was not added again:\n{}",
        node.log()
    );
    assert!(wait_until(BOUND, || node.dataplane("address_repairs") >= 1));
    assert!(!node.has_address(DOWN), "the withdrawn VIP has no address");

    let table = node.status();
    assert_eq!(table["dataplane"]["in_sync"], true, "{table}");
    let text = Command::new(BIN)
        .args(["status", "-s"])
        .arg(node.dir.join("anyvip.sock"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("data plane: in sync; repaired"), "{text}");
    let log = node.log();
    assert!(log.contains("nftables drift"), "{log}");
    assert!(log.contains("VIP address was missing"), "{log}");
}
