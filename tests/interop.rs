//! anyvip against real routers: FRR (r1) and BIRD (r2) in the netns lab built
//! from `containerlab/anyvip.clab.yml`. Each test builds its own lab (unique
//! namespaces) and tears it down, also on failure. Needs root (CI is root).

mod lab;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use lab::{require_root, try_wait_until, wait_until, Lab, Spawned};

const VIP4: &str = "10.201.255.1/32";
const VIP6: &str = "fd00:201:ffff::1/128";
const NODES: [&str; 3] = ["n1", "n2", "n3"];
/// Generous: sessions normally come up in well under a second here, but a
/// router restart waits for anyvip's connect backoff.
const CONVERGE: Duration = Duration::from_secs(60);

fn anyvip(lab: &mut Lab, node: &str, config: PathBuf) -> Spawned {
    let config = with_own_socket(lab, node, config);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_anyvip"));
    cmd.arg("run")
        .arg("-c")
        .arg(config)
        .env("ANYVIP_LOG", "debug");
    lab.spawn(node, cmd)
}

/// Every anyvip of a netns lab shares one file system, so each gets its own
/// control socket (`[api] socket`) in the lab's directory: a copy of
/// `config` beside it (relative paths in it still resolve the same).
fn with_own_socket(lab: &Lab, node: &str, config: PathBuf) -> PathBuf {
    static SPAWNED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let text = std::fs::read_to_string(&config).expect("node config");
    if text.contains("\n[api]") {
        return config;
    }
    let n = SPAWNED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let socket = lab.dir().join(format!("{node}-{n}.sock"));
    let copy = config.with_file_name(format!("anyvip-{node}-{n}.toml"));
    let api = format!("\n[api]\nsocket = \"{}\"\n", socket.display());
    std::fs::write(&copy, text + &api).expect("write the config with its socket");
    copy
}

/// Start anyvip on `nodes` with the lab's own config files.
fn start_nodes(lab: &mut Lab, nodes: &[&str]) -> Vec<Spawned> {
    nodes
        .iter()
        .map(|n| {
            let config = lab.host_path(n, "/etc/anyvip/anyvip.toml");
            anyvip(lab, n, config)
        })
        .collect()
}

/// Write a variant of `node`'s config (`edit` maps the file's text) into the
/// lab's directory and return its path.
fn variant(lab: &Lab, node: &str, name: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
    let original = lab.host_path(node, "/etc/anyvip/anyvip.toml");
    let text = std::fs::read_to_string(&original).expect("node config");
    let path = lab.dir().join(format!("{node}-{name}.toml"));
    std::fs::write(&path, edit(text)).expect("write variant config");
    path
}

fn wait_paths(lab: &Lab, router: &str, prefix: &str, n: usize) {
    wait_until(
        CONVERGE,
        &format!("{n} kernel path(s) to {prefix} on {router}"),
        || lab.kernel_routes(router, prefix).len() == n,
    );
}

fn logs(spawned: &[Spawned]) -> String {
    spawned
        .iter()
        .map(|s| std::fs::read_to_string(&s.log).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A lab with only the FRR router (r1) running.
fn frr_only_lab() -> Lab {
    Lab::start_with(lab::Options {
        bird: false,
        ..lab::Options::default()
    })
}

/// FRR's session state with `peer` ("Established", "Active", ...).
fn frr_state(lab: &Lab, peer: &str) -> String {
    lab.vtysh_json(&format!("show bgp neighbors {peer} json"))[peer]["bgpState"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Take n1's IPv4 session on FRR out of the NODES4 peer group and configure
/// it on its own: `remote-as`, then `extra` lines under `router bgp`, then
/// `af_extra` lines in the IPv4 unicast address family.
fn frr_n1_alone(lab: &Lab, remote_as: &str, extra: &[&str], af_extra: &[&str]) {
    let remote = format!("neighbor 10.201.1.2 remote-as {remote_as}");
    let mut lines = vec![
        "configure terminal",
        "router bgp 65000",
        "no neighbor 10.201.1.2 peer-group NODES4",
        remote.as_str(),
    ];
    lines.extend_from_slice(extra);
    lines.extend([
        "address-family ipv4 unicast",
        "neighbor 10.201.1.2 activate",
    ]);
    lines.extend_from_slice(af_extra);
    lab.vtysh_lines(&lines);
}

/// FRR's view of one prefix: the JSON of `show bgp <afi> unicast <prefix> json`.
fn frr_route(lab: &Lab, prefix: &str) -> serde_json::Value {
    let afi = if prefix.contains(':') { "ipv6" } else { "ipv4" };
    lab.vtysh_json(&format!("show bgp {afi} unicast {prefix} json"))
}

fn frr_paths(lab: &Lab, prefix: &str) -> Vec<serde_json::Value> {
    frr_route(lab, prefix)["paths"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn three_nodes_give_both_routers_three_equal_paths_with_the_configured_attributes() {
    if !require_root("three_nodes_give_both_routers_three_equal_paths") {
        return;
    }
    let mut lab = Lab::start();
    let nodes = start_nodes(&mut lab, &NODES);
    for router in ["r1", "r2"] {
        for prefix in [VIP4, VIP6] {
            wait_paths(&lab, router, prefix, 3);
        }
    }
    // FRR: every path shows exactly what the nodes were configured with.
    for prefix in [VIP4, VIP6] {
        let paths = frr_paths(&lab, prefix);
        assert_eq!(paths.len(), 3, "{prefix}: {paths:#?}");
        for p in &paths {
            assert_eq!(p["aspath"]["string"], "65001", "{p:#}");
            assert_eq!(p["metric"], 10, "{p:#}");
            assert_eq!(p["community"]["string"], "65001:100", "{p:#}");
            assert_eq!(p["largeCommunity"]["string"], "65001:1:1", "{p:#}");
            assert_eq!(p["origin"], "IGP", "{p:#}");
        }
        let multipath = paths
            .iter()
            .filter(|p| p["multipath"] == true || p["bestpath"]["overall"] == true)
            .count();
        assert_eq!(multipath, 3, "all three paths are used: {paths:#?}");
    }
    // BIRD: the same attributes, and the route came from every node.
    for prefix in [VIP4, VIP6] {
        let out = lab.birdc(&format!("show route {prefix} all"));
        assert_eq!(out.matches("BGP.as_path: 65001").count(), 3, "{out}");
        assert_eq!(out.matches("BGP.med: 10").count(), 3, "{out}");
        assert_eq!(
            out.matches("BGP.community: (65001,100)").count(),
            3,
            "{out}"
        );
        assert_eq!(
            out.matches("BGP.large_community: (65001, 1, 1)").count(),
            3,
            "{out}"
        );
    }
    // Sessions to the active BIRD collided with ours and were resolved: one
    // Established session per node per family, no error left behind.
    let protocols = lab.birdc("show protocols");
    assert_eq!(protocols.matches("Established").count(), 6, "{protocols}");
    drop(nodes);
}

#[test]
fn ibgp_to_frr_carries_local_pref_and_an_empty_as_path() {
    if !require_root("ibgp_to_frr_carries_local_pref") {
        return;
    }
    let mut lab = frr_only_lab();
    frr_n1_alone(&lab, "internal", &[], &[]);
    let config = variant(&lab, "n1", "ibgp", |t| {
        t.replace("asn = 65001", "asn = 65000")
            .replace("med = 10", "med = 10\nlocal_pref = 250")
    });
    let _n1 = anyvip(&mut lab, "n1", config);
    wait_paths(&lab, "r1", VIP4, 1);
    let paths = frr_paths(&lab, VIP4);
    assert_eq!(paths.len(), 1, "{paths:#?}");
    assert_eq!(paths[0]["locPrf"], 250, "{:#}", paths[0]);
    assert_eq!(paths[0]["aspath"]["string"], "Local", "{:#}", paths[0]);
}

#[test]
fn four_octet_asn_reaches_frr_whole() {
    if !require_root("four_octet_asn_reaches_frr_whole") {
        return;
    }
    let mut lab = frr_only_lab();
    frr_n1_alone(
        &lab,
        "4200000001",
        &[],
        &["neighbor 10.201.1.2 prefix-list VIP4 in"],
    );
    let config = variant(&lab, "n1", "as4", |t| {
        t.replace("asn = 65001", "asn = 4200000001")
    });
    let _n1 = anyvip(&mut lab, "n1", config);
    wait_paths(&lab, "r1", VIP4, 1);
    let path = &frr_paths(&lab, VIP4)[0];
    assert_eq!(path["aspath"]["string"], "4200000001", "{path:#}");
}

#[test]
fn two_octet_bird_session_gets_two_octet_as_paths() {
    if !require_root("two_octet_bird_session") {
        return;
    }
    let mut lab = Lab::start_with(lab::Options {
        frr: false,
        ..lab::Options::default()
    });
    // BIRD as an RFC 4271 two-octet speaker (no four-octet AS capability):
    // the session is two-octet, so AS_PATH goes out two octets wide.
    let conf = lab.bird_conf();
    let text = std::fs::read_to_string(&conf).unwrap().replace(
        "neighbor 10.201.11.2 as 65001; }",
        "neighbor 10.201.11.2 as 65001; enable as4 off; }",
    );
    std::fs::write(&conf, text).unwrap();
    let reconf = lab.birdc("configure");
    assert!(reconf.contains("Reconfigur"), "BIRD reconfigure: {reconf}");
    let config = lab.host_path("n1", "/etc/anyvip/anyvip.toml");
    let n1 = anyvip(&mut lab, "n1", config);
    wait_paths(&lab, "r2", VIP4, 1);
    let out = lab.birdc(&format!("show route {VIP4} all"));
    assert!(out.contains("BGP.as_path: 65001"), "{out}");
    let log = logs(std::slice::from_ref(&n1));
    assert!(
        log.contains("four_octet_as=false"),
        "the BIRD session is two-octet:\n{log}"
    );
}

#[test]
fn tcp_md5_with_frr_establishes_with_the_right_key_and_never_with_a_wrong_one() {
    if !require_root("tcp_md5_with_frr") {
        return;
    }
    let mut lab = frr_only_lab();
    lab.vtysh_lines(&[
        "configure terminal",
        "router bgp 65000",
        "neighbor NODES4 password s3cret-md5",
    ]);
    let right = lab.dir().join("right.key");
    let wrong = lab.dir().join("wrong.key");
    std::fs::write(&right, "s3cret-md5\n").unwrap();
    std::fs::write(&wrong, "not-the-key\n").unwrap();
    let with_key = |key: &PathBuf| {
        let key = key.display().to_string();
        move |t: String| {
            t.replace(
                "address = \"10.201.1.1\"",
                &format!("address = \"10.201.1.1\"\npassword_file = \"{key}\""),
            )
            .replace(
                "address = \"10.201.2.1\"",
                &format!("address = \"10.201.2.1\"\npassword_file = \"{key}\""),
            )
        }
    };
    let c1 = variant(&lab, "n1", "md5", with_key(&right));
    let c2 = variant(&lab, "n2", "md5", with_key(&wrong));
    let _n1 = anyvip(&mut lab, "n1", c1);
    let _n2 = anyvip(&mut lab, "n2", c2);
    wait_paths(&lab, "r1", VIP4, 1);
    let state = |peer: &str| frr_state(&lab, peer);
    assert_eq!(state("10.201.1.2"), "Established");
    // The wrong key: segments are dropped by the kernel, so the session
    // never comes up, however long we wait.
    let never = try_wait_until(Duration::from_secs(12), "n2 established", || {
        state("10.201.2.2") == "Established"
    });
    assert!(never.is_err(), "a wrong TCP MD5 key must never establish");
    let hops = lab.kernel_routes("r1", VIP4);
    assert_eq!(hops.len(), 1, "{hops:?}");
}

#[test]
fn a_reloaded_md5_key_reaches_the_listening_socket_and_frr_establishes_inbound() {
    if !require_root("a_reloaded_md5_key_reaches_the_listening_socket") {
        return;
    }
    let mut lab = frr_only_lab();
    // FRR dials n1 (outside the passive peer group); n1 only listens.
    frr_n1_alone(
        &lab,
        "65001",
        &[
            "neighbor 10.201.1.2 password first-key",
            "neighbor 10.201.1.2 timers connect 1",
        ],
        &["neighbor 10.201.1.2 prefix-list VIP4 in"],
    );
    let key = lab.dir().join("n1-md5.key");
    std::fs::write(&key, "first-key\n").unwrap();
    let socket = lab.dir().join("n1-md5.sock");
    let key_text = key.display().to_string();
    let socket_text = socket.display().to_string();
    let config = variant(&lab, "n1", "md5-reload", |t| {
        format!(
            "{}\n[api]\nsocket = \"{socket_text}\"\n",
            t.replace(
                "address = \"10.201.1.1\"",
                &format!(
                    "address = \"10.201.1.1\"\npassive = true\npassword_file = \"{key_text}\""
                ),
            )
        )
    });
    let n1 = anyvip(&mut lab, "n1", config);
    wait_paths(&lab, "r1", VIP4, 1);
    assert_eq!(frr_state(&lab, "10.201.1.2"), "Established");

    // Both ends change the key; anyvip learns it by a reload.
    std::fs::write(&key, "second-key\n").unwrap();
    lab.vtysh_lines(&[
        "configure terminal",
        "router bgp 65000",
        "neighbor 10.201.1.2 password second-key",
    ]);
    let out = Command::new(env!("CARGO_BIN_EXE_anyvip"))
        .args(["reload", "-s"])
        .arg(&socket)
        .output()
        .expect("run the CLI");
    assert!(out.status.success(), "reload: {out:?}");
    // The session is passive on our side: it can only come back through
    // the listening socket, with the new key on it.
    wait_until(CONVERGE, "FRR established with the new key", || {
        frr_state(&lab, "10.201.1.2") == "Established"
    });
    wait_paths(&lab, "r1", VIP4, 1);
    let log = logs(std::slice::from_ref(&n1));
    assert!(
        log.contains("TCP MD5 key of the listening socket changed"),
        "{log}"
    );
}

#[test]
fn frr_restart_and_soft_clear_keep_the_routes_without_touching_anyvip() {
    if !require_root("frr_restart_and_soft_clear") {
        return;
    }
    let mut lab = frr_only_lab();
    let nodes = start_nodes(&mut lab, &NODES);
    wait_paths(&lab, "r1", VIP4, 3);
    wait_paths(&lab, "r1", VIP6, 3);

    // `soft in` without soft-reconfiguration: FRR sends ROUTE-REFRESH and
    // we answer by re-sending what we announce (RFC 2918 §4).
    lab.vtysh("clear bgp ipv4 unicast * soft in");
    wait_until(CONVERGE, "route refresh answered by every node", || {
        logs(&nodes).matches("route refresh requested").count() >= 3
    });
    assert_eq!(lab.kernel_routes("r1", VIP4).len(), 3);

    lab.frr_stop();
    wait_paths(&lab, "r1", VIP4, 0);
    lab.frr_start();
    wait_paths(&lab, "r1", VIP4, 3);
    wait_paths(&lab, "r1", VIP6, 3);
    for n in &nodes {
        assert!(lab.try_wait(n.pid).is_none(), "anyvip kept running");
    }
}

#[test]
fn gtsm_with_frr_establishes_only_when_both_ends_use_it() {
    if !require_root("gtsm_with_frr") {
        return;
    }
    let mut lab = frr_only_lab();
    let gtsm = |t: String| {
        t.replace(
            "address = \"10.201.1.1\"",
            "address = \"10.201.1.1\"\nttl_security = true",
        )
        .replace(
            "address = \"10.201.2.1\"",
            "address = \"10.201.2.1\"\nttl_security = true",
        )
    };
    let c1 = variant(&lab, "n1", "gtsm", gtsm);
    let c2 = variant(&lab, "n2", "gtsm", gtsm);
    // FRR runs GTSM (RFC 5082) towards n1 only; towards n2 it sends its
    // usual eBGP TTL of 1, which n2 must refuse.
    frr_n1_alone(
        &lab,
        "65001",
        &[
            "neighbor 10.201.1.2 passive",
            "neighbor 10.201.1.2 ttl-security hops 1",
        ],
        &[],
    );
    let _n1 = anyvip(&mut lab, "n1", c1);
    let _n2 = anyvip(&mut lab, "n2", c2);
    wait_paths(&lab, "r1", VIP4, 1);
    let state = |peer: &str| frr_state(&lab, peer);
    assert_eq!(state("10.201.1.2"), "Established");
    let never = try_wait_until(Duration::from_secs(12), "n2 established", || {
        state("10.201.2.2") == "Established"
    });
    assert!(
        never.is_err(),
        "GTSM must refuse a peer whose packets arrive with TTL < 254"
    );
}

/// Not a test: prints the time from starting anyvip on n1 to the VIP in
/// FRR's kernel table, and anyvip's RSS with its peers up. Run with
/// `cargo test --release --test interop -- --ignored --nocapture measure`.
#[test]
#[ignore]
fn measure_start_to_route_and_rss() {
    if !require_root("measure_start_to_route_and_rss") {
        return;
    }
    let mut times = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..5 {
        let mut lab = Lab::start();
        let config = lab.host_path("n1", "/etc/anyvip/anyvip.toml");
        let start = std::time::Instant::now();
        let n1 = anyvip(&mut lab, "n1", config);
        wait_paths(&lab, "r1", VIP4, 1);
        times.push(start.elapsed());
        wait_paths(&lab, "r2", VIP4, 1);
        wait_paths(&lab, "r2", VIP6, 1);
        let status = std::fs::read_to_string(format!("/proc/{}/status", n1.pid)).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        rss.push(kb);
    }
    times.sort();
    rss.sort();
    println!(
        "start -> VIP in r1's kernel table: median {:?} (min {:?}, max {:?}); RSS with 4 sessions up: median {} kB",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        rss[rss.len() / 2]
    );
}

#[test]
fn a_withdrawal_through_the_announce_interface_leaves_both_routers() {
    if !require_root("a_withdrawal_through_the_announce_interface") {
        return;
    }
    let mut lab = Lab::start();
    // The simplest check there is: a maintenance flag file. While it
    // exists the VIP is withdrawn; the daemon drives the same Announcer
    // every check kind drives.
    let flag = lab.dir().join("n1-maintenance");
    let flag_text = flag.display().to_string();
    let config = variant(&lab, "n1", "flag", |t| {
        let t = t.replace(
            "prefix = \"10.201.255.1/32\"\nalways = true",
            "prefix = \"10.201.255.1/32\"\nchecks = [\"maintenance\"]",
        );
        format!(
            "{t}\n[check.maintenance]\nfile = \"{flag_text}\"\ninterval = \"100ms\"\nrise = 2\nfall = 1\n"
        )
    });
    let _n1 = anyvip(&mut lab, "n1", config);
    wait_paths(&lab, "r1", VIP4, 1);
    wait_paths(&lab, "r2", VIP4, 1);
    std::fs::write(&flag, "").unwrap();
    wait_paths(&lab, "r1", VIP4, 0);
    wait_paths(&lab, "r2", VIP4, 0);
    // The /128 has no check and stays.
    assert_eq!(lab.kernel_routes("r1", VIP6).len(), 1);
    std::fs::remove_file(&flag).unwrap();
    wait_paths(&lab, "r1", VIP4, 1);
    wait_paths(&lab, "r2", VIP4, 1);
}

#[test]
fn drain_shows_frr_a_graceful_shutdown_path_before_the_withdrawal_and_resume_restores_it() {
    if !require_root("drain_shows_frr_a_graceful_shutdown_path") {
        return;
    }
    let mut lab = frr_only_lab();
    let socket = lab.dir().join("n1-drain.sock");
    let socket_text = socket.display().to_string();
    let config = variant(&lab, "n1", "drain", |t| {
        format!(
            "{t}\n[drain]\ndelay = \"4s\"\nprepend = 2\nmed = 500\n[api]\nsocket = \"{socket_text}\"\n"
        )
    });
    let _n1 = anyvip(&mut lab, "n1", config);
    wait_paths(&lab, "r1", VIP4, 1);
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_anyvip"))
            .args(args)
            .arg("-s")
            .arg(&socket)
            .output()
            .expect("run the CLI");
        assert!(out.status.success(), "anyvip {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    cli(&["drain"]);
    // RFC 8326: first the worse path (GRACEFUL_SHUTDOWN, prepends, MED),
    // while the route still forwards...
    wait_until(CONVERGE, "the graceful-shutdown path on FRR", || {
        frr_paths(&lab, VIP4).first().is_some_and(|p| {
            let c = p["community"]["string"].as_str().unwrap_or_default();
            (c.contains("graceful-shutdown") || c.contains("65535:0"))
                && p["aspath"]["string"] == "65001 65001 65001"
                && p["metric"] == 500
        })
    });
    // FRR 8.4 honours RFC 8326 on receipt by itself (docs/routers.md says
    // so): the tagged path gets LOCAL_PREF 0.
    let drained = &frr_paths(&lab, VIP4)[0];
    assert_eq!(drained["locPrf"], 0, "{drained:#}");
    assert_eq!(
        lab.kernel_routes("r1", VIP4).len(),
        1,
        "still forwarding while draining"
    );
    assert!(cli(&["status"]).contains("draining"));
    // ...then, after the drain delay, the withdrawal.
    wait_paths(&lab, "r1", VIP4, 0);
    cli(&["resume"]);
    wait_paths(&lab, "r1", VIP4, 1);
    let path = &frr_paths(&lab, VIP4)[0];
    assert_eq!(path["aspath"]["string"], "65001", "{path:#}");
    assert_eq!(path["community"]["string"], "65001:100", "{path:#}");
}
