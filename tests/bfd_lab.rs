//! BFD against real routers: FRR 8.4 bfdd (r1) and BIRD 2.0 (r2) in the
//! netns lab of `containerlab/anyvip.clab.yml`, IPv4 and IPv6 sessions.
//! anyvip runs on n1 and n2 with `bfd` on every peer; n3 stays off.
//!
//! | Test | What |
//! |---|---|
//! | `a_frozen_*` | BFD Up at 100 ms × 3 with both routers; n1 frozen (nft drop of all its traffic, no FIN) → its path leaves both kernel tables because BFD went down (FRR's reset reason, BIRD's last error); unfrozen → back; a BFD packet from a non-peer address is dropped and counted; `kill -STOP` of anyvip → path gone, `CONT` → back; a planned stop → both routers receive AdminDown with diagnostic 7 and FRR shows it |
//! | `bfd_only_on_*` | routers without BFD: BGP up, anyvip's BFD stays Down and nothing flaps; routers at 300 ms × 3 → Up at 300 ms; a reload to 100 ms (routers too) changes the timers with a Poll Sequence and does not reset BGP |
//! | `multihop_*` | RFC 5883: n1's IPv4 session to FRR as eBGP multihop on both sides; BFD Up as multihop on both (port 4784); n1 frozen → FRR closes BGP with Cease / BFD Down |
//!
//! Deadlines are generous and nothing is timed; elapsed times are printed.

mod lab;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use lab::{require_root, try_wait_until, wait_until, Lab, Spawned};
use serde_json::Value;

const VIP4: &str = "10.201.255.1/32";
const VIP6: &str = "fd00:201:ffff::1/128";
const ROUTERS: [&str; 2] = ["r1", "r2"];
const CONVERGE: Duration = Duration::from_secs(60);
const FREEZE_TABLE: &str = "bfdlab_freeze";
const PROBE_TABLE: &str = "bfdlab_probe";

/// anyvip on `node`: the lab's config with `bfd = <bfd>` on every peer and
/// a control socket of its own. Returns the process, the config and the socket.
struct Node {
    name: &'static str,
    config: PathBuf,
    socket: PathBuf,
    process: Spawned,
}

fn write_config(lab: &Lab, node: &str, bfd: &str) -> (PathBuf, PathBuf) {
    let base = std::fs::read_to_string(lab.host_path(node, "/etc/anyvip/anyvip.toml"))
        .expect("node config");
    let text = base
        .replace("\nasn = 65000\n", &format!("\nasn = 65000\nbfd = {bfd}\n"))
        .replace("\nasn = 65100\n", &format!("\nasn = 65100\nbfd = {bfd}\n"));
    assert_eq!(text.matches("bfd = ").count(), 4, "{text}");
    let socket = lab.dir().join(format!("{node}-bfd.sock"));
    let config = lab.dir().join(format!("{node}-bfd.toml"));
    std::fs::write(
        &config,
        format!("{text}\n[api]\nsocket = \"{}\"\n", socket.display()),
    )
    .expect("write config");
    let checked = Command::new(env!("CARGO_BIN_EXE_anyvip"))
        .args(["check-config", "-c"])
        .arg(&config)
        .output()
        .expect("anyvip check-config");
    assert!(
        checked.status.success(),
        "{}: {}",
        config.display(),
        String::from_utf8_lossy(&checked.stderr)
    );
    (config, socket)
}

fn start(lab: &mut Lab, name: &'static str, bfd: &str) -> Node {
    let (config, socket) = write_config(lab, name, bfd);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_anyvip"));
    cmd.arg("run")
        .arg("-c")
        .arg(&config)
        .env("ANYVIP_LOG", "info,anyvip=debug");
    let process = lab.spawn(name, cmd);
    Node {
        name,
        config,
        socket,
        process,
    }
}

fn cli(node: &Node, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_anyvip"))
        .args(args)
        .arg("-s")
        .arg(&node.socket)
        .output()
        .expect("anyvip CLI")
}

/// `anyvip status --json`, once the daemon answers.
fn status(node: &Node) -> Option<Value> {
    let out = cli(node, &["status", "--json"]);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn anyvip_peer(node: &Node, address: &str) -> Option<Value> {
    status(node)?["peers"]
        .as_array()?
        .iter()
        .find(|p| p["address"] == address)
        .cloned()
}

fn log(s: &Spawned) -> String {
    std::fs::read_to_string(&s.log).unwrap_or_default()
}

/// The addresses of `node` towards r1 and r2.
fn node_addresses(node: &str) -> [String; 4] {
    let i = &node[1..];
    [
        format!("10.201.{i}.2"),
        format!("fd00:201:{i}::2"),
        format!("10.201.1{i}.2"),
        format!("fd00:201:1{i}::2"),
    ]
}

/// The routers' addresses as `node`'s peers: r1 v4, r1 v6, r2 v4, r2 v6.
fn router_addresses(node: &str) -> [String; 4] {
    let i = &node[1..];
    [
        format!("10.201.{i}.1"),
        format!("fd00:201:{i}::1"),
        format!("10.201.1{i}.1"),
        format!("fd00:201:1{i}::1"),
    ]
}

// ------------------------------------------------------------- routers

/// BFD on the routers towards every node at `ms` × 3: an FRR profile on
/// both peer groups, a BIRD `protocol bfd` and `bfd on` in the template.
fn routers_bfd(lab: &Lab, ms: u32) {
    let tx = format!("  transmit-interval {ms}");
    let rx = format!("  receive-interval {ms}");
    lab.vtysh_lines(&[
        "configure terminal",
        "bfd",
        " profile LAB",
        &tx,
        &rx,
        "  detect-multiplier 3",
        " exit",
        "exit",
        "router bgp 65000",
        " neighbor NODES4 bfd profile LAB",
        " neighbor NODES6 bfd profile LAB",
        "exit",
    ]);
    let conf = lab.bird_conf();
    let text = std::fs::read_to_string(&conf).expect("bird.conf");
    let text = match text.split_once("\n# bfdlab\n") {
        Some((head, _)) => head.to_string(),
        None => text.replace(
            "  error wait time 1, 10;\n",
            "  error wait time 1, 10;\n  bfd on;\n",
        ),
    };
    let text = format!(
        "{text}\n# bfdlab\nprotocol bfd {{\n  interface \"eth*\" {{ min rx interval {ms} ms; min tx interval {ms} ms; idle tx interval 1000 ms; multiplier 3; }};\n}}\n"
    );
    std::fs::write(&conf, text).expect("write bird.conf");
    let out = lab.birdc("configure");
    assert!(out.contains("Reconfigured"), "birdc configure: {out}");
}

/// FRR's BFD session with `peer` (`show bfd peers json`).
fn frr_bfd(lab: &Lab, peer: &str) -> Option<Value> {
    lab.vtysh_json("show bfd peers json")
        .as_array()?
        .iter()
        .find(|p| p["peer"] == peer)
        .cloned()
}

/// BIRD's BFD session state with `peer` (`show bfd sessions`).
fn bird_bfd(lab: &Lab, peer: &str) -> Option<String> {
    let out = lab.birdc("show bfd sessions");
    out.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        (f.next() == Some(peer)).then(|| f.nth(1).unwrap_or_default().to_string())
    })
}

/// Every BFD session of `node` Up on the router's side and on anyvip's.
fn bfd_up(lab: &Lab, node: &Node) -> bool {
    let [v4, v6, b4, b6] = node_addresses(node.name);
    let frr = [v4, v6]
        .iter()
        .all(|p| frr_bfd(lab, p).is_some_and(|s| s["status"] == "up"));
    let bird = [b4, b6]
        .iter()
        .all(|p| bird_bfd(lab, p).as_deref() == Some("Up"));
    let ours = router_addresses(node.name)
        .iter()
        .all(|p| anyvip_peer(node, p).is_some_and(|s| s["bfd"]["state"] == "up"));
    frr && bird && ours
}

fn wait_bfd_up(lab: &Lab, node: &Node) {
    let took = wait_until(CONVERGE, &format!("BFD Up for {}", node.name), || {
        bfd_up(lab, node)
    });
    eprintln!("{}: BFD up after {took:?}", node.name);
}

/// The nodes a router's kernel route to `prefix` leads to (node i is
/// behind the router's eth<i>).
fn via(lab: &Lab, router: &str, prefix: &str) -> Vec<String> {
    let mut nodes: Vec<String> = lab
        .kernel_routes(router, prefix)
        .into_iter()
        .map(|h| match h.dev.strip_prefix("eth") {
            Some(i @ ("1" | "2" | "3")) => format!("n{i}"),
            _ => format!("?{}", h.dev),
        })
        .collect();
    nodes.sort();
    nodes
}

fn wait_via(lab: &Lab, want: &[&str], step: &str) -> Duration {
    let start = Instant::now();
    for r in ROUTERS {
        for prefix in [VIP4, VIP6] {
            let mut last = Vec::new();
            if try_wait_until(CONVERGE, step, || {
                last = via(lab, r, prefix);
                last == want
            })
            .is_err()
            {
                panic!("{step}: {r}'s route to {prefix} leads to {last:?}, expected {want:?}");
            }
        }
    }
    start.elapsed()
}

fn bgp_established_everywhere(lab: &Lab, node: &str) -> bool {
    let [v4, v6, b4, b6] = node_addresses(node);
    let frr = lab.vtysh_json("show bgp neighbors json");
    let protocols = lab.birdc("show protocols");
    let _ = (b4, b6);
    [v4, v6].iter().all(|p| frr[p]["bgpState"] == "Established")
        && ["v4", "v6"].iter().all(|af| {
            protocols
                .lines()
                .any(|l| l.starts_with(&format!("{node}_{af} ")) && l.contains("Established"))
        })
}

// ------------------------------------------------------------- faults

fn freeze(lab: &Lab, node: &str) {
    let rules = format!(
        "table inet {FREEZE_TABLE} {{\n\
         chain in {{ type filter hook prerouting priority -500; policy drop; }}\n\
         chain out {{ type filter hook output priority -500; policy drop; }}\n}}\n"
    );
    let path = lab.dir().join(format!("{node}-freeze.nft"));
    std::fs::write(&path, rules).expect("write nft file");
    lab.exec_ok(node, &["nft", "-f", &path.display().to_string()]);
}

fn thaw(lab: &Lab, node: &str) {
    lab.exec_ok(node, &["nft", "delete", "table", "inet", FREEZE_TABLE]);
}

/// A counter on `router` of BFD Control packets from `node` in state
/// AdminDown (State 0) with diagnostic 7, to port 3784.
fn install_admin_down_probe(lab: &Lab, router: &str) {
    let rules = format!(
        "table inet {PROBE_TABLE} {{\n\
         counter admin_down {{ }}\n\
         chain in {{ type filter hook input priority -400; policy accept;\n\
           udp dport 3784 @th,72,2 0 @th,67,5 7 counter name admin_down\n\
         }}\n}}\n"
    );
    let path = lab.dir().join(format!("{router}-probe.nft"));
    std::fs::write(&path, rules).expect("write nft file");
    lab.exec_ok(router, &["nft", "-f", &path.display().to_string()]);
}

fn admin_down_seen(lab: &Lab, router: &str) -> u64 {
    let out = lab.exec_ok(
        router,
        &[
            "nft",
            "-j",
            "list",
            "counter",
            "inet",
            PROBE_TABLE,
            "admin_down",
        ],
    );
    let doc: Value = serde_json::from_str(&out).unwrap_or_default();
    doc["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|o| o["counter"]["packets"].as_u64())
        .unwrap_or(0)
}

/// Three well-formed BFD Control packets (Down, My Discriminator 1) from
/// r1 to n1's port 3784, from `source` with `ttl`.
fn send_bfd_from_r1(lab: &Lab, source: &str, ttl: u8) {
    let script = format!(
        "import socket\n\
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, {ttl})\n\
        s.bind(('{source}', 0))\n\
        p = bytes.fromhex('20400318' '00000001' '00000000' '000f4240' '000f4240' '00000000')\n\
        for _ in range(3):\n    s.sendto(p, ('10.201.1.2', 3784))\n"
    );
    lab.exec_ok("r1", &["python3", "-c", &script]);
}

// ------------------------------------------------------------- tests

#[test]
fn a_frozen_or_hung_node_leaves_both_routers_by_bfd_and_a_planned_stop_sends_admin_down() {
    if !require_root("a_frozen_or_hung_node_leaves_both_routers_by_bfd") {
        return;
    }
    let mut lab = Lab::start();
    routers_bfd(&lab, 100);
    let bfd = "{ interval = \"100ms\", multiplier = 3 }";
    let n1 = start(&mut lab, "n1", bfd);
    let n2 = start(&mut lab, "n2", bfd);
    wait_via(&lab, &["n1", "n2"], "both nodes announced");
    wait_bfd_up(&lab, &n1);
    wait_bfd_up(&lab, &n2);
    // Negotiated 100 ms both ways on every session, detection 300 ms.
    for p in router_addresses("n1") {
        let s = anyvip_peer(&n1, &p).expect("peer in status");
        assert_eq!(s["bfd"]["tx_interval_seconds"], 0.1, "{p}: {s:#}");
        assert_eq!(s["bfd"]["rx_interval_seconds"], 0.1, "{p}: {s:#}");
        assert_eq!(s["bfd"]["detection_time_seconds"], 0.3, "{p}: {s:#}");
    }
    let frr = frr_bfd(&lab, "10.201.1.2").unwrap();
    assert_eq!(frr["remote-receive-interval"], 100, "{frr:#}");
    assert_eq!(frr["remote-detect-multiplier"], 3, "{frr:#}");

    // Frozen: the routers hear nothing, not even a FIN.
    let frozen = Instant::now();
    freeze(&lab, "n1");
    let gone = wait_via(&lab, &["n2"], "n1's path gone after the freeze");
    eprintln!("n1 frozen -> path gone from both routers after {gone:?} (hold time 9 s)");
    let _ = frozen;
    // Gone because BFD went down, not the hold timer.
    let frr_bgp = lab.vtysh_json("show bgp neighbors 10.201.1.2 json");
    // FRR closed the session itself with Cease / BFD Down (6/10).
    assert_eq!(
        frr_bgp["10.201.1.2"]["lastNotificationReason"], "Cease/BFD Down",
        "FRR: {frr_bgp:#}"
    );
    let bird = lab.birdc("show protocols all n1_v4");
    assert!(bird.contains("BFD session down"), "BIRD: {bird}");
    assert_eq!(
        frr_bfd(&lab, "10.201.1.2").unwrap()["diagnostic"],
        "control detection time expired"
    );

    thaw(&lab, "n1");
    let back = wait_via(&lab, &["n1", "n2"], "n1's path back after the thaw");
    eprintln!("n1 thawed -> path back after {back:?}");
    wait_bfd_up(&lab, &n1);

    // A stranger's packets (an address of r1's that is no peer) are
    // dropped and counted; so are the peer's own with TTL 254 (RFC 5881
    // §5: one hop means 255). The sessions stay Up.
    let _ = lab.exec(
        "r1",
        &["ip", "addr", "add", "10.201.200.1/32", "dev", "eth1"],
    );
    send_bfd_from_r1(&lab, "10.201.200.1", 255);
    send_bfd_from_r1(&lab, "10.201.1.1", 254);
    wait_until(Duration::from_secs(10), "the stray packets counted", || {
        status(&n1).is_some_and(|s| {
            s["bfd_dropped"]["not_a_peer"].as_u64() >= Some(3)
                && s["bfd_dropped"]["ttl"].as_u64() >= Some(3)
        })
    });
    assert!(bfd_up(&lab, &n1));
    let metrics_ok = status(&n1).unwrap();
    eprintln!("n1 drops: {}", metrics_ok["bfd_dropped"]);

    // A hung daemon: its loop, and so BFD, stops.
    lab.signal(n1.process.pid, "STOP");
    let gone = wait_via(&lab, &["n2"], "n1's path gone after kill -STOP");
    eprintln!("anyvip on n1 stopped (SIGSTOP) -> path gone after {gone:?}");
    lab.signal(n1.process.pid, "CONT");
    wait_via(&lab, &["n1", "n2"], "n1's path back after kill -CONT");
    wait_bfd_up(&lab, &n1);
    wait_until(CONVERGE, "n1's BGP sessions Established", || {
        bgp_established_everywhere(&lab, "n1")
    });

    // Planned stop: withdraw, close BGP, then AdminDown (diagnostic 7).
    for r in ROUTERS {
        install_admin_down_probe(&lab, r);
    }
    let status = lab.stop(n1.process.pid, Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        log(&n1.process)
    );
    wait_via(&lab, &["n2"], "n1's path gone after the planned stop");
    for r in ROUTERS {
        let seen = admin_down_seen(&lab, r);
        assert!(
            seen >= 1,
            "{r} received no AdminDown/7 from n1:\n{}",
            log(&n1.process)
        );
    }
    let frr = frr_bfd(&lab, "10.201.1.2").unwrap();
    eprintln!("FRR after the planned stop: {frr:#}");
    assert_eq!(frr["status"], "down", "{frr:#}");
    assert_eq!(frr["remote-diagnostic"], "administratively down", "{frr:#}");
    assert_ne!(
        frr["diagnostic"], "control detection time expired",
        "{frr:#}"
    );
    let _ = n2;
}

#[test]
fn bfd_only_on_anyvip_leaves_bgp_alone_and_a_timer_reload_does_not_reset_bgp() {
    if !require_root("bfd_only_on_anyvip_leaves_bgp_alone") {
        return;
    }
    let mut lab = Lab::start();
    let n1 = start(&mut lab, "n1", "true");
    wait_via(&lab, &["n1"], "n1 announced without BFD on the routers");
    wait_until(CONVERGE, "BGP Established", || {
        bgp_established_everywhere(&lab, "n1")
    });
    // Several seconds of BFD Down on our side: no session is touched.
    let before = status(&n1).expect("status");
    let hold = Instant::now() + Duration::from_secs(5);
    while Instant::now() < hold {
        let s = status(&n1).expect("status");
        for p in s["peers"].as_array().unwrap() {
            assert_eq!(p["state"], "Established", "{p:#}");
            assert_eq!(p["established_transitions"], 1, "{p:#}");
            assert_eq!(p["bfd"]["state"], "down", "{p:#}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = before;

    // The routers at 300 ms × 3 like anyvip's default: Up at 300 ms.
    routers_bfd(&lab, 300);
    wait_bfd_up(&lab, &n1);
    for p in router_addresses("n1") {
        let s = anyvip_peer(&n1, &p).unwrap();
        assert_eq!(s["bfd"]["tx_interval_seconds"], 0.3, "{p}: {s:#}");
        assert_eq!(s["bfd"]["detection_time_seconds"], 0.9, "{p}: {s:#}");
    }
    let transitions = |n: &Node| -> Vec<u64> {
        status(n).unwrap()["peers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["established_transitions"].as_u64().unwrap())
            .collect()
    };
    let before = transitions(&n1);

    // Routers to 100 ms, then anyvip reloaded to 100 ms: a Poll Sequence,
    // no BGP reset.
    routers_bfd(&lab, 100);
    write_config(&lab, "n1", "{ interval = \"100ms\" }");
    let _ = &n1.config;
    let out = cli(&n1, &["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(CONVERGE, "100 ms negotiated everywhere", || {
        router_addresses("n1").iter().all(|p| {
            anyvip_peer(&n1, p).is_some_and(|s| {
                s["bfd"]["state"] == "up"
                    && s["bfd"]["tx_interval_seconds"] == 0.1
                    && s["bfd"]["rx_interval_seconds"] == 0.1
            })
        })
    });
    let frr = frr_bfd(&lab, "10.201.1.2").unwrap();
    assert_eq!(frr["remote-transmit-interval"], 100, "{frr:#}");
    assert_eq!(transitions(&n1), before, "{}", log(&n1.process));
    assert!(bfd_up(&lab, &n1));
}

/// RFC 5883 multihop BFD with FRR: n1's IPv4 session to r1 configured as
/// multihop on both sides (`multihop = 2` in anyvip, `ebgp-multihop 2` in
/// FRR, which then runs its BFD session as multihop on port 4784): Up on
/// both sides as multihop, and a frozen n1 leaves r1 by BFD.
#[test]
fn multihop_bfd_with_frr_comes_up_on_port_4784_and_takes_a_frozen_node_off() {
    if !require_root("multihop_bfd_with_frr") {
        return;
    }
    let mut lab = Lab::start_with(lab::Options {
        bird: false,
        ..lab::Options::default()
    });
    lab.vtysh_lines(&[
        "configure terminal",
        "bfd",
        " profile MH",
        "  transmit-interval 100",
        "  receive-interval 100",
        "  detect-multiplier 3",
        " exit",
        "exit",
        "router bgp 65000",
        "no neighbor 10.201.1.2 peer-group NODES4",
        "neighbor 10.201.1.2 remote-as 65001",
        "neighbor 10.201.1.2 ebgp-multihop 2",
        "neighbor 10.201.1.2 update-source 10.201.1.1",
        "neighbor 10.201.1.2 bfd profile MH",
        "address-family ipv4 unicast",
        "neighbor 10.201.1.2 activate",
        "neighbor 10.201.1.2 prefix-list VIP4 in",
        "neighbor 10.201.1.2 route-map NOTHING out",
    ]);
    let (config, socket) = write_config(&lab, "n1", "false");
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replacen(
        "address = \"10.201.1.1\"\nasn = 65000\nbfd = false\n",
        "address = \"10.201.1.1\"\nasn = 65000\nmultihop = 2\nbfd = { interval = \"100ms\", multiplier = 3 }\n",
        1,
    );
    assert!(text.contains("multihop = 2"), "{text}");
    std::fs::write(&config, text).expect("write config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_anyvip"));
    cmd.arg("run")
        .arg("-c")
        .arg(&config)
        .env("ANYVIP_LOG", "info,anyvip=debug");
    let n1 = Node {
        name: "n1",
        config,
        socket,
        process: lab.spawn("n1", cmd),
    };
    wait_until(CONVERGE, "multihop BFD Up on both sides", || {
        let frr = frr_bfd(&lab, "10.201.1.2")
            .is_some_and(|s| s["status"] == "up" && s["multihop"] == true);
        let ours = anyvip_peer(&n1, "10.201.1.1")
            .is_some_and(|s| s["bfd"]["state"] == "up" && s["bfd"]["multihop"] == true);
        frr && ours
    });
    wait_until(CONVERGE, "n1's path on r1", || {
        via(&lab, "r1", VIP4) == ["n1"]
    });
    freeze(&lab, "n1");
    wait_until(CONVERGE, "n1's path gone from r1", || {
        via(&lab, "r1", VIP4).is_empty()
    });
    // Gone because BFD went down (FRR closed the session with Cease / BFD
    // Down), not the 9 s hold timer.
    let frr_bgp = lab.vtysh_json("show bgp neighbors 10.201.1.2 json");
    thaw(&lab, "n1");
    assert_eq!(
        frr_bgp["10.201.1.2"]["lastNotificationReason"],
        "Cease/BFD Down",
        "FRR: {frr_bgp:#}\n{}",
        log(&n1.process)
    );
}

/// utime + stime of `pid`, in seconds (`/proc/<pid>/stat`, clock ticks of 100 Hz).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Not a test: anyvip's CPU time per minute with its 4 sessions under BFD
/// at 100 ms × 3, then after a reload without BFD:
/// `cargo test --release --test bfd_lab -- --ignored --nocapture measure`.
#[test]
#[ignore]
fn measure_cpu_per_minute_with_and_without_bfd_at_100ms() {
    if !require_root("measure_cpu_per_minute_with_and_without_bfd") {
        return;
    }
    let mut lab = Lab::start();
    routers_bfd(&lab, 100);
    let n1 = start(&mut lab, "n1", "{ interval = \"100ms\", multiplier = 3 }");
    wait_bfd_up(&lab, &n1);
    let minute = Duration::from_secs(60);
    let measure = |what: &str| {
        let before = cpu_seconds(n1.process.pid);
        std::thread::sleep(minute);
        let used = cpu_seconds(n1.process.pid) - before;
        eprintln!("anyvip on n1, {what}: {used:.2} CPU seconds per minute");
    };
    measure("4 BFD sessions at 100 ms x 3");
    write_config(&lab, "n1", "false");
    let out = cli(&n1, &["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    measure("no BFD");
}

/// How many times the node's BFD sessions went Down, by anyvip's count (all
/// of its sessions), and how many times its BGP sessions were established.
fn downs_and_establishments(node: &Node) -> (u64, u64) {
    let s = status(node).expect("status");
    let peers = s["peers"].as_array().cloned().unwrap_or_default();
    let downs = peers
        .iter()
        .flat_map(|p| {
            p["bfd"]["transitions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|t| t["to"] == "down")
        .map(|t| t["count"].as_u64().unwrap_or(0))
        .sum();
    let established = peers
        .iter()
        .map(|p| p["established_transitions"].as_u64().unwrap_or(0))
        .sum();
    (downs, established)
}

/// Not a test: false BFD downs at 100 ms × 3 on all three nodes (12
/// sessions against FRR and BIRD) while `stress-ng --cpu 1` keeps one core
/// busy, for `ANYVIP_SOAK_MINUTES` (default 10), and anyvip's CPU time:
/// `cargo test --release --test bfd_lab -- --ignored --nocapture false_bfd_downs`.
#[test]
#[ignore]
fn measure_false_bfd_downs_at_100ms_with_a_busy_core() {
    if !require_root("measure_false_bfd_downs") {
        return;
    }
    let minutes: u64 = std::env::var("ANYVIP_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(10);
    let mut lab = Lab::start();
    routers_bfd(&lab, 100);
    let nodes: Vec<Node> = ["n1", "n2", "n3"]
        .into_iter()
        .map(|n| start(&mut lab, n, "{ interval = \"100ms\", multiplier = 3 }"))
        .collect();
    for n in &nodes {
        wait_bfd_up(&lab, n);
    }
    let before: Vec<(u64, u64)> = nodes.iter().map(downs_and_establishments).collect();
    let cpu_before: Vec<f64> = nodes.iter().map(|n| cpu_seconds(n.process.pid)).collect();
    // Our own load generator, ended by pid whatever happens.
    struct Load(std::process::Child);
    impl Drop for Load {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let load = Load(
        Command::new("stress-ng")
            .args([
                "--cpu",
                "1",
                "--timeout",
                &format!("{}s", minutes * 60 + 30),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("stress-ng (apt install stress-ng)"),
    );
    let start_at = Instant::now();
    std::thread::sleep(Duration::from_secs(minutes * 60));
    let took = start_at.elapsed();
    drop(load);
    let mut false_downs = 0;
    for (i, n) in nodes.iter().enumerate() {
        let (downs, est) = downs_and_establishments(n);
        let cpu = (cpu_seconds(n.process.pid) - cpu_before[i]) / took.as_secs_f64() * 60.0;
        eprintln!(
            "{}: BFD downs {} (before {}), BGP establishments {} (before {}), {cpu:.2} CPU s/min",
            n.name, downs, before[i].0, est, before[i].1
        );
        false_downs += downs - before[i].0;
    }
    let frr_downs: Vec<String> = ["10.201.1.2", "10.201.2.2", "10.201.3.2"]
        .iter()
        .filter_map(|p| frr_bfd(&lab, p))
        .map(|s| format!("{}: {} down {}", s["peer"], s["status"], s["downtime"]))
        .collect();
    eprintln!("FRR's view: {frr_downs:?}");
    eprintln!("false BFD downs in {took:?} at 100 ms x 3 with a busy core: {false_downs}");
}
