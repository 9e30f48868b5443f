//! The lab harness itself, tested with the real routers (FRR, BIRD) in network
//! namespaces. Tests that build a lab need root and skip loudly without it (CI is root).
//!
//! Until anyvip can announce, BIRD instances stand in for it on the nodes, to check that
//! the routers' configs accept the VIPs from three nodes as ECMP and reject the rest.

mod lab;

use lab::topology::Role;
use lab::{netns, wait_until, Lab, Topology};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const VIP4: &str = "10.201.255.1/32";
const VIP6: &str = "fd00:201:ffff::1/128";
/// Not in the VIP block: the routers must drop it.
const OTHER4: &str = "10.201.250.0/24";
const OTHER6: &str = "fd00:201:fa::/64";
const NODE_ASN: u32 = 65001;
/// Generous: a new session comes up in 3-8 s (lab-notes).
const BGP_UP: Duration = Duration::from_secs(60);

fn router_asn(router: &str) -> u32 {
    match router {
        "r1" => 65000,
        "r2" => 65100,
        r => panic!("no ASN planned for {r}"),
    }
}

fn topology() -> Topology {
    Topology::load(&Topology::default_path()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn topology_file_parses_and_every_link_endpoint_names_a_defined_node() {
    let t = topology();
    assert_eq!(t.name, "anyvip");
    let roles: Vec<(&str, Role)> = t
        .nodes
        .values()
        .map(|n| (n.name.as_str(), n.role))
        .collect();
    assert_eq!(
        roles,
        [
            ("c1", Role::Client),
            ("n1", Role::Node),
            ("n2", Role::Node),
            ("n3", Role::Node),
            ("r1", Role::Frr),
            ("r2", Role::Bird),
        ]
    );
    for l in &t.links {
        for e in [&l.a, &l.b] {
            assert!(
                t.nodes.contains_key(&e.node),
                "{}:{} names no node",
                e.node,
                e.iface
            );
        }
    }
    // every node and the client: eth1 to r1, eth2 to r2
    for n in ["n1", "n2", "n3", "c1"] {
        assert_eq!(
            t.peer(n, "eth1").map(|e| e.node.as_str()),
            Some("r1"),
            "{n} eth1"
        );
        assert_eq!(
            t.peer(n, "eth2").map(|e| e.node.as_str()),
            Some("r2"),
            "{n} eth2"
        );
    }
    assert_eq!(t.links.len(), 8);
    for n in t.nodes.values() {
        assert_eq!(n.kind, "linux", "{}", n.name);
        assert!(
            !n.exec.is_empty(),
            "{} configures its addresses with exec",
            n.name
        );
        for b in &n.binds {
            assert!(
                b.host.is_file(),
                "{}: bound file {} is missing",
                n.name,
                b.host.display()
            );
        }
    }
}

#[test]
fn topology_checks_reject_what_the_harness_cannot_build() {
    let dir = PathBuf::from("/nonexistent");
    let node = "kind: linux\n      labels: {anyvip.role: node}";
    let ok = format!(
        "name: t\ntopology:\n  nodes:\n    a:\n      {node}\n    b:\n      {node}\n  links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n"
    );
    Topology::parse(&ok, &dir).expect("minimal topology parses");
    let cases = [
        (
            ok.replace("\"b:eth1\"", "\"c:eth1\""),
            "names no defined node",
        ),
        (ok.replace("\"b:eth1\"", "\"b:eth0\""), "eth0"),
        (
            ok.replace("\"b:eth1\"", "\"b:averyveryverylongname\""),
            "at most 15",
        ),
        (ok.replace("\"b:eth1\"", "\"a:eth1\""), "used twice"),
        (ok.replace("  links:", "  groups: {}\n  links:"), "groups"),
        (
            ok.replacen("anyvip.role: node", "anyvip.role: switch", 1),
            "unknown role",
        ),
        (
            ok.replacen("kind: linux", "kind: nokia_srlinux", 1),
            "only kind linux",
        ),
        (
            ok.replacen("labels: {anyvip.role: node}", "labels: {}", 1),
            "no label",
        ),
    ];
    for (yaml, want) in cases {
        let err = Topology::parse(&yaml, &dir).expect_err(&yaml);
        assert!(err.contains(want), "want {want:?} in {err:?}");
    }
}

#[test]
fn topology_file_is_valid_against_the_containerlab_schema() {
    let schema_path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/containerlab/clab.schema.json");
    let Ok(schema) = std::fs::read_to_string(&schema_path) else {
        eprintln!(
            "\n!!!!!!!! SKIPPED: containerlab schema not found at {} !!!!!!!!\n",
            schema_path.display()
        );
        return;
    };
    let schema: serde_json::Value = serde_json::from_str(&schema).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let yaml = std::fs::read_to_string(Topology::default_path()).expect("topology file");
    let topo: serde_json::Value = serde_yaml_ng::from_str(&yaml).expect("topology is YAML");
    let errors: Vec<String> = validator
        .iter_errors(&topo)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "not valid containerlab: {errors:#?}");
    // and the validator does reject an unknown node key
    let mut bad = topo.clone();
    bad["topology"]["nodes"]["r1"]["no-such-key"] = serde_json::json!(1);
    assert!(!validator.is_valid(&bad));
}

/// Ping `addr` from `node` until it answers (only addresses inside the lab).
fn ping(lab: &Lab, node: &str, addr: IpAddr) {
    let a = addr.to_string();
    wait_until(
        Duration::from_secs(10),
        &format!("{node} to ping {a}"),
        || lab.exec(node, &["ping", "-c1", "-W1", &a]).status.success(),
    );
}

#[test]
fn lab_comes_up_with_working_links_frr_and_bird() {
    if !lab::require_root("lab_comes_up_with_working_links_frr_and_bird") {
        return;
    }
    let t0 = Instant::now();
    let lab = Lab::start();
    eprintln!("lab {} up in {:?}", lab.id(), t0.elapsed());
    let t = lab.topology().clone();
    for node in t.nodes.keys() {
        let ns = lab.ns(node);
        assert!(ns.starts_with(lab.id()) && netns::exists(ns), "{ns}");
    }
    // every link, both ends, IPv4 and IPv6: neighbours only
    for l in &t.links {
        for (from, to) in [(&l.a, &l.b), (&l.b, &l.a)] {
            let addrs = lab.addrs(&to.node, &to.iface);
            assert!(
                addrs.iter().any(IpAddr::is_ipv4),
                "{}:{} has no IPv4",
                to.node,
                to.iface
            );
            assert!(
                addrs.iter().any(IpAddr::is_ipv6),
                "{}:{} has no IPv6",
                to.node,
                to.iface
            );
            for a in addrs {
                ping(&lab, &from.node, a);
            }
        }
    }
    // FRR has a neighbor for every node address on the links to r1, per family
    let summary = lab.vtysh_json("show bgp summary json");
    let r2 = lab.birdc("show protocols all");
    for node in t.with_role(Role::Node) {
        for iface in t.ifaces(node) {
            let router = &t.peer(node, iface).expect("linked").node;
            for a in lab.addrs(node, iface) {
                let key = if a.is_ipv4() {
                    "ipv4Unicast"
                } else {
                    "ipv6Unicast"
                };
                match t.nodes[router.as_str()].role {
                    Role::Frr => {
                        let peer = &summary[key]["peers"][a.to_string()];
                        assert_eq!(peer["remoteAs"], NODE_ASN, "FRR neighbor {a}: {peer}");
                    }
                    Role::Bird => assert!(
                        r2.contains(&format!("Neighbor address: {a}")),
                        "BIRD has no neighbor {a}:\n{r2}"
                    ),
                    r => panic!("{node}:{iface} linked to {r:?}"),
                }
            }
        }
    }
    assert!(r2.contains("n1_v4") && r2.contains("n3_v6"), "{r2}");
    let t1 = Instant::now();
    drop(lab);
    eprintln!("lab down in {:?}", t1.elapsed());
}

/// BIRD config that makes `node` announce the VIPs plus one prefix of each family
/// outside the VIP block to every router it is linked to.
fn stand_in_speaker(lab: &Lab, node: &str, router_id: &str) -> String {
    let t = lab.topology();
    let mut conf = format!(
        "router id {router_id};\nprotocol device {{}}\n\
         protocol static s4 {{ ipv4; route {VIP4} blackhole; route {OTHER4} blackhole; }}\n\
         protocol static s6 {{ ipv6; route {VIP6} blackhole; route {OTHER6} blackhole; }}\n"
    );
    for iface in t.ifaces(node) {
        let peer = t.peer(node, iface).expect("linked");
        for a in lab.addrs(&peer.node, &peer.iface) {
            let fam = if a.is_ipv4() { "ipv4" } else { "ipv6" };
            conf += &format!(
                "protocol bgp {}_{fam} {{ local as {NODE_ASN}; neighbor {a} as {}; \
                 hold time 9; keepalive time 3; connect delay time 1; connect retry time 2; error wait time 1, 5; \
                 {fam} {{ import none; export all; }}; }}\n",
                peer.node,
                router_asn(&peer.node)
            );
        }
    }
    conf
}

#[test]
fn routers_install_vips_from_three_nodes_as_ecmp_and_the_client_reaches_them() {
    if !lab::require_root(
        "routers_install_vips_from_three_nodes_as_ecmp_and_the_client_reaches_them",
    ) {
        return;
    }
    let mut lab = Lab::start();
    let nodes: Vec<String> = lab
        .topology()
        .with_role(Role::Node)
        .into_iter()
        .map(String::from)
        .collect();
    for (i, node) in nodes.iter().enumerate() {
        let conf = lab.dir().join(format!("{node}-standin.conf"));
        std::fs::write(
            &conf,
            stand_in_speaker(&lab, node, &format!("10.201.254.{}", 11 + i)),
        )
        .expect("write stand-in config");
        let sock = lab.dir().join(format!("{node}-standin.ctl"));
        let mut bird = Command::new("bird");
        bird.arg("-f").arg("-c").arg(&conf).arg("-s").arg(&sock);
        lab.spawn(node, bird);
        // the node delivers VIP traffic locally (anyvip will do this itself)
        lab.exec_ok(node, &["ip", "addr", "add", VIP4, "dev", "lo"]);
        lab.exec_ok(node, &["ip", "addr", "add", VIP6, "dev", "lo"]);
    }
    let t0 = Instant::now();
    for router in ["r1", "r2"] {
        // one next hop per node link of this router
        let want: BTreeSet<String> = nodes
            .iter()
            .map(|n| {
                lab.topology()
                    .peer(n, if router == "r1" { "eth1" } else { "eth2" })
            })
            .map(|e| e.expect("linked").iface.clone())
            .collect();
        for vip in [VIP4, VIP6] {
            let took = wait_until(
                BGP_UP,
                &format!("{vip} on {router} with 3 next hops"),
                || {
                    let devs: BTreeSet<String> = lab
                        .kernel_routes(router, vip)
                        .into_iter()
                        .map(|h| h.dev)
                        .collect();
                    devs == want
                },
            );
            eprintln!(
                "{vip} ECMP x3 on {router} after {took:?} (since speakers started: {:?})",
                t0.elapsed()
            );
        }
        let hops = lab.kernel_routes(router, VIP4);
        let gateways: BTreeSet<Option<IpAddr>> = hops.iter().map(|h| h.gateway).collect();
        let node_addrs: BTreeSet<Option<IpAddr>> = nodes
            .iter()
            .flat_map(|n| lab.addrs(n, if router == "r1" { "eth1" } else { "eth2" }))
            .filter(IpAddr::is_ipv4)
            .map(Some)
            .collect();
        assert_eq!(gateways, node_addrs, "{router} {VIP4} next hops");
        for other in [OTHER4, OTHER6] {
            assert!(
                lab.kernel_routes(router, other).is_empty(),
                "{router} installed {other}"
            );
        }
    }
    // the routers accepted exactly one prefix (the VIP) per session
    let summary = lab.vtysh_json("show bgp summary json");
    for fam in ["ipv4Unicast", "ipv6Unicast"] {
        let peers = summary[fam]["peers"].as_object().expect("peers");
        assert_eq!(peers.len(), 3, "{fam}: {summary}");
        for (addr, p) in peers {
            assert_eq!(p["state"], "Established", "{addr}");
            assert_eq!(p["pfxRcd"], 1, "FRR {addr} accepted only the VIP: {p}");
        }
    }
    let protocols = lab.birdc("show protocols all");
    assert_eq!(
        protocols.matches("Routes:         1 imported").count(),
        6,
        "BIRD imported only the VIP on each of its 6 sessions:\n{protocols}"
    );
    // client -> r1 -> one of the nodes -> back: v4 and v6
    for vip in [VIP4, VIP6] {
        let addr: IpAddr = vip.split('/').next().expect("addr").parse().expect("ip");
        ping(&lab, "c1", addr);
    }
}

/// (pid, start time) of every lab process, to tell "gone" from "pid reused".
fn processes(lab: &mut Lab) -> Vec<(u32, u64)> {
    lab.pids()
        .into_iter()
        .filter_map(|p| netns::start_time(p).map(|t| (p, t)))
        .collect()
}

struct Footprint {
    namespaces: Vec<String>,
    processes: Vec<(u32, u64)>,
    dirs: Vec<PathBuf>,
}

fn footprint(lab: &mut Lab) -> Footprint {
    let f = Footprint {
        namespaces: lab.namespaces(),
        processes: processes(lab),
        dirs: lab.dirs(),
    };
    assert_eq!(f.namespaces.len(), 6);
    // FRR (watchfrr, zebra, bgpd, staticd, bfdd), BIRD, the spawned sleep
    assert!(f.processes.len() >= 7, "{:?}", f.processes);
    assert!(f.dirs.iter().all(|d| d.is_dir()), "{:?}", f.dirs);
    f
}

fn assert_gone(f: &Footprint) {
    let live = netns::list();
    for ns in &f.namespaces {
        assert!(!live.contains(ns), "namespace {ns} left behind");
    }
    for &(pid, start) in &f.processes {
        assert!(
            !(netns::alive(pid) && netns::start_time(pid) == Some(start)),
            "process {pid} left behind"
        );
    }
    for d in &f.dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

fn spawn_sleeper(lab: &mut Lab) -> u32 {
    let mut sleep = Command::new("sleep");
    sleep.arg("600");
    lab.spawn("n1", sleep).pid
}

#[test]
fn dropping_a_lab_leaves_no_namespace_process_or_dir() {
    if !lab::require_root("dropping_a_lab_leaves_no_namespace_process_or_dir") {
        return;
    }
    let mut lab = Lab::start();
    let sleeper = spawn_sleeper(&mut lab);
    // `ip netns exec` enters the namespace a moment after the spawn returns.
    wait_until(
        Duration::from_secs(10),
        "the sleeper in n1's namespace",
        || netns::pids(lab.ns("n1")).contains(&sleeper),
    );
    let f = footprint(&mut lab);
    drop(lab);
    assert_gone(&f);
}

#[test]
fn a_lab_dropped_while_its_test_panics_is_cleaned_up() {
    if !lab::require_root("a_lab_dropped_while_its_test_panics_is_cleaned_up") {
        return;
    }
    let mut seen = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut lab = Lab::start();
        spawn_sleeper(&mut lab);
        seen = Some(footprint(&mut lab));
        panic!("deliberate panic: the lab must still be torn down");
    }));
    assert!(result.is_err());
    assert_gone(&seen.expect("lab was up before the panic"));
}

#[test]
fn two_labs_run_at_once_without_colliding() {
    if !lab::require_root("two_labs_run_at_once_without_colliding") {
        return;
    }
    let a = Lab::start_with(lab::Options {
        bird: false,
        ..Default::default()
    });
    let b = Lab::start_with(lab::Options {
        bird: false,
        ..Default::default()
    });
    assert_ne!(a.id(), b.id());
    let (na, nb): (BTreeSet<String>, BTreeSet<String>) = (
        a.namespaces().into_iter().collect(),
        b.namespaces().into_iter().collect(),
    );
    assert!(na.is_disjoint(&nb));
    // same addresses in both, yet separate: each FRR answers with its own state
    for lab in [&a, &b] {
        assert_eq!(
            lab.vtysh_json("show bgp summary json")["ipv4Unicast"]["as"],
            65000
        );
        ping(lab, "n1", "10.201.1.1".parse().expect("ip"));
    }
    assert_ne!(a.frr_conf_dir(), b.frr_conf_dir());
    // changing one lab leaves the other alone
    a.vtysh_lines(&[
        "configure terminal",
        "router bgp 65000",
        "neighbor 10.201.1.2 shutdown",
    ]);
    let shut = |lab: &Lab| {
        lab.vtysh_json("show bgp neighbors 10.201.1.2 json")["10.201.1.2"]["adminShutDown"] == true
    };
    assert!(shut(&a) && !shut(&b));
}

#[test]
fn routers_can_be_stopped_and_started_again() {
    if !lab::require_root("routers_can_be_stopped_and_started_again") {
        return;
    }
    let mut lab = Lab::start();
    let live_router_processes =
        |lab: &mut Lab| lab.pids().into_iter().filter(|&p| netns::alive(p)).count();
    let before = live_router_processes(&mut lab);
    lab.frr_stop();
    lab.bird_stop();
    let ns_pids = |lab: &Lab, node: &str| netns::pids(lab.ns(node));
    assert!(
        ns_pids(&lab, "r1").is_empty(),
        "FRR stopped: {:?}",
        ns_pids(&lab, "r1")
    );
    assert!(
        ns_pids(&lab, "r2").is_empty(),
        "BIRD stopped: {:?}",
        ns_pids(&lab, "r2")
    );
    lab.frr_start();
    lab.bird_start();
    assert_eq!(
        lab.vtysh_json("show bgp summary json")["ipv4Unicast"]["as"],
        65000
    );
    assert!(lab.birdc("show protocols").contains("n2_v6"));
    assert_eq!(
        live_router_processes(&mut lab),
        before,
        "same number of live router processes again"
    );
}
