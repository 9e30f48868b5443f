//! Health checks driving the VIP, end to end, in the netns lab built from
//! `containerlab/anyvip.clab.yml`: real FRR (r1) and BIRD (r2) routers,
//! three nodes each running anyvip next to the stand-in apiserver
//! (`anyvip-lab-apiserver`), and a client c1 whose default route is r1.
//!
//! Each test builds its own lab (unique namespaces, torn down also on
//! failure) and skips loudly unless root (CI is root). What each node runs:
//!
//! - the stand-in apiserver, HTTPS on `[::]:6443` (so on 127.0.0.1 and ::1
//!   too), with a certificate signed by a per-lab "cluster CA" that the test
//!   makes with `anyvip_lab::Pki` (as kubeadm's `/etc/kubernetes/pki/ca.crt`
//!   signs every apiserver's certificate). One CA for the whole lab lets c1
//!   verify every node behind the VIP with one `--cacert`, and lets a test
//!   kill an apiserver and start it again with the same certificate (a
//!   `--ca-out` CA is new at every start, and anyvip reads `ca_file` once);
//! - anyvip, with the node's lab config (peers) and the checks and VIPs of
//!   the test: `[check.apiserver] https = "https://127.0.0.1:6443/readyz"`
//!   with the CA, and the VIPs steered from port 443 to the apiserver.
//!
//! The apiserver binary lives in the workspace crate `lab/`, so Cargo does
//! not build it for this (root package) test: [`apiserver_bin`] runs
//! `cargo build -p anyvip-lab --bin anyvip-lab-apiserver` for the test's
//! profile once per test process (a no-op when it is up to date) and takes
//! it from next to `CARGO_BIN_EXE_anyvip`.
//!
//! Timing: checks run every 200 ms (timeout 150 ms, rise 3, fall 2), so a
//! failover is ~0.5 s and a recovery ~0.7 s; every wait is a poll with a
//! generous timeout, and the only timing assertion is a lower bound (a VIP
//! never comes up before `rise` checks could have passed).
//!
//! What the tests prove (design section 2's invariants, issue 4's lab list):
//!
//! | test | proves |
//! | --- | --- |
//! | `no_route_on_either_router_until_rise_checks_passed_*` | fail closed: sessions up, checks failing, no route; a route only `rise` checks after the apiserver is ready; then three equal paths on FRR and BIRD |
//! | `a_failed_hung_or_killed_apiserver_*` | 500, hang (timeout), listener down, SIGKILL: the node's path leaves both routers, c1 is answered by the other two; back each time, and over 20 more cycles |
//! | `every_check_kind_drives_a_vip_*` | https with the CA (and a wrong CA never passes), http status, tcp refused, exec exit 1 and timeout (process group killed), maintenance file |
//! | `loop_guard_drops_vip_packets_*` | a VIP packet sent to a withdrawn node, and to a node whose anyvip stopped cleanly, is dropped there (guard counter), never forwarded, no time exceeded anywhere; without the guard the same traffic loops (control) |
//! | `no_node_answers_arp_or_nd_for_a_vip_*` | no ARP or ND answer for a VIP on any router-node link, while the links resolve; controls show the probe sees an answer when there is one |
//! | `kill_9_then_start_again_*` | after a crash: leftover addresses removed or re-added, never twice; one table with the same rules; state follows health |
//! | `dual_stack_vips_with_separate_checks_*` | the /32 and the /128 each follow their own check |
//!
//! Tools used in the namespaces: `curl` (the client; `scripts/test` installs
//! it), `ping`, `nft`, `sysctl`, `ip`.
//!
//! Not a test: `measure_failover_*` (ignored) prints the time from the
//! `fall`-th failed check to the route leaving FRR's and BIRD's kernel
//! tables: `cargo test --release --test health_lab -- --ignored --nocapture measure`.

mod lab;
mod lab_nodes;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lab::{netns, require_root, try_wait_until, wait_until, Lab, Spawned};
use lab_nodes::*;
use serde_json::Value;

// ------------------------------------------------------------- the client

/// `GET /` through the VIP from c1; the body (`served-by nX`) or the error.
fn client_get(lab: &Lab, pki: &Pki, vip_addr: &str) -> Result<String, String> {
    let url = if vip_addr.contains(':') {
        format!("https://[{vip_addr}]/")
    } else {
        format!("https://{vip_addr}/")
    };
    let ca = pki.ca.display().to_string();
    let out = lab.exec(
        "c1",
        &[
            "curl",
            "-sS",
            "--noproxy",
            "*",
            "--max-time",
            "3",
            "--cacert",
            &ca,
            &url,
        ],
    );
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// `n` requests from c1 through the VIP, each a new connection (so ECMP
/// hashes each anew); every one must be answered. Returns who answered, and
/// how often.
fn clients(lab: &Lab, pki: &Pki, vip_addr: &str, n: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for i in 0..n {
        let body = client_get(lab, pki, vip_addr)
            .unwrap_or_else(|e| panic!("request {i} to {vip_addr} from c1 failed: {e}"));
        let node = body
            .strip_prefix("served-by ")
            .unwrap_or_else(|| panic!("unexpected answer {body:?}"))
            .to_string();
        *seen.entry(node).or_insert(0) += 1;
    }
    seen
}

// ------------------------------------------------------------- the node

/// The value of one named counter of `table inet anyvip` in `node`.
fn anyvip_counter(lab: &Lab, node: &str, name: &str) -> u64 {
    let out = lab.exec_ok(
        node,
        &["nft", "-j", "list", "counter", "inet", "anyvip", name],
    );
    let doc: Value = serde_json::from_str(&out).unwrap();
    doc["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|o| o["counter"]["packets"].as_u64())
        .unwrap_or_else(|| panic!("no counter {name} in {out}"))
}

/// How many `inet anyvip` tables `node` has.
fn anyvip_tables(lab: &Lab, node: &str) -> usize {
    let out = lab.exec_ok(node, &["nft", "-j", "list", "tables"]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    doc["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["table"]["family"] == "inet" && o["table"]["name"] == "anyvip")
        .count()
}

/// Every rule of `table inet anyvip` as "chain: expr" (handles left out),
/// sorted, and the chain names.
fn anyvip_rules(lab: &Lab, node: &str) -> (Vec<String>, Vec<String>) {
    let out = lab.exec_ok(node, &["nft", "-j", "list", "table", "inet", "anyvip"]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    let items = doc["nftables"].as_array().cloned().unwrap_or_default();
    let mut rules: Vec<String> = items
        .iter()
        .filter_map(|o| o.get("rule"))
        .map(|r| format!("{}: {}", r["chain"].as_str().unwrap_or("?"), r["expr"]))
        .collect();
    rules.sort();
    let mut chains: Vec<String> = items
        .iter()
        .filter_map(|o| o["chain"]["name"].as_str().map(str::to_string))
        .collect();
    chains.sort();
    (rules, chains)
}

/// How often `addr` is on `node`'s `lo`.
fn on_lo(lab: &Lab, node: &str, addr: &str) -> usize {
    let out = lab.exec_ok(node, &["ip", "-j", "addr", "show", "dev", "lo"]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    doc.as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["local"] == addr)
        .count()
}

fn log(s: &Spawned) -> String {
    std::fs::read_to_string(&s.log).unwrap_or_default()
}

/// ICMP and ICMPv6 "time exceeded" messages sent, per lab node.
// ================================================================== tests

#[test]
fn no_route_on_either_router_until_rise_checks_passed_then_three_equal_paths() {
    if !require_root("no_route_on_either_router_until_rise_checks_passed") {
        return;
    }
    let mut lab = Lab::start();
    let pki = pki(&lab);
    let t = FAST;
    // The apiservers start `down` (nothing listens): anyvip starts, its
    // sessions come up, and its checks fail.
    let mut apis = Vec::new();
    let mut daemons = Vec::new();
    for n in NODES {
        apis.push(start_api_in(
            &mut lab,
            n,
            "apiserver",
            "[::]:6443",
            Some(&pki),
            "down",
        ));
        let cfg = config(&lab, n, "standard", &standard_body(&pki, t));
        daemons.push(anyvip(&mut lab, n, &cfg));
    }
    wait_sessions(&lab, &NODES);
    // t0: every session is up, no check has passed: no route anywhere, and
    // none appears while the checks keep failing (several rise periods).
    assert_no_route_for(&lab, &[VIP4, VIP6], t.interval * t.rise * 3);
    for n in NODES {
        assert_eq!(on_lo(&lab, n, VIP4_ADDR), 0, "{n}: VIP on lo while down");
    }

    // The apiserver on n1 becomes ready: the first passing probe is at most
    // one interval later, the rise-th (rise-1) intervals after that. So the
    // route cannot appear before (rise-1) x interval from here; more is
    // normal. Only this lower bound is asserted (design 8: no tight timing),
    // timed from before the switch so that it is never overstated.
    let ready = Instant::now();
    apis[0].set("ok");
    wait_via_one(&lab, "r1", VIP4, &["n1"]);
    let r1_after = ready.elapsed();
    wait_via_one(&lab, "r2", VIP4, &["n1"]);
    let r2_after = ready.elapsed();
    let earliest = t.interval * (t.rise - 1);
    assert!(
        r1_after >= earliest && r2_after >= earliest,
        "route appeared {r1_after:?} (r1) / {r2_after:?} (r2) after the apiserver became ready: \
         before {} checks at {:?} could pass",
        t.rise,
        t.interval
    );
    let n1_log = log(&daemons[0]);
    let passing = n1_log.matches("check passing (").count();
    assert!(
        n1_log.contains(&format!("check UP after {} consecutive passes", t.rise)),
        "{n1_log}"
    );
    assert!(passing >= 1, "passes towards rise are logged: {n1_log}");
    // n2 and n3 are still down.
    assert_eq!(via(&lab, "r1", VIP4), ["n1"]);
    eprintln!(
        "n1 ready -> route on r1 {r1_after:?}, on r2 {r2_after:?} (rise {} x {:?})",
        t.rise, t.interval
    );

    for api in &apis[1..] {
        api.set("ok");
    }
    for prefix in [VIP4, VIP6] {
        wait_via(&lab, prefix, &NODES);
    }
    // Three equal paths: FRR uses all three (multipath), BIRD merged them
    // into one kernel route with three next hops of equal weight.
    for prefix in [VIP4, VIP6] {
        let afi = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let frr = lab.vtysh_json(&format!("show bgp {afi} unicast {prefix} json"));
        let paths = frr["paths"].as_array().cloned().unwrap_or_default();
        assert_eq!(paths.len(), 3, "{frr:#}");
        let used = paths
            .iter()
            .filter(|p| p["multipath"] == true || p["bestpath"]["overall"] == true)
            .count();
        assert_eq!(used, 3, "FRR uses all three paths: {frr:#}");
        for r in ROUTERS {
            let family = if prefix.contains(':') { "-6" } else { "-4" };
            let out = lab.exec_ok(r, &["ip", family, "-j", "route", "show", "exact", prefix]);
            let doc: Value = serde_json::from_str(&out).unwrap();
            let hops = doc[0]["nexthops"].as_array().cloned().unwrap_or_default();
            assert_eq!(hops.len(), 3, "{r}: one route, three next hops: {out}");
            let weights: Vec<u64> = hops
                .iter()
                .map(|h| h["weight"].as_u64().unwrap_or(1))
                .collect();
            assert!(
                weights.iter().all(|w| *w == weights[0]),
                "{r}: equal weights: {out}"
            );
        }
    }
    for n in NODES {
        assert_eq!(on_lo(&lab, n, VIP4_ADDR), 1, "{n}");
        assert_eq!(on_lo(&lab, n, VIP6_ADDR), 1, "{n}");
    }
}

#[test]
fn a_failed_hung_or_killed_apiserver_takes_its_path_off_both_routers_and_back_every_time() {
    if !require_root("a_failed_hung_or_killed_apiserver_takes_its_path_off") {
        return;
    }
    let mut lab = Lab::start();
    let pki = pki(&lab);
    let mut nodes = standard_nodes(&mut lab, &pki, &NODES, FAST);
    for prefix in [VIP4, VIP6] {
        wait_via(&lab, prefix, &NODES);
    }
    // ECMP spreads new connections from c1 over the nodes.
    let seen = clients(&lab, &pki, VIP4_ADDR, 12);
    assert!(
        seen.len() >= 2,
        "12 connections all went to one node: {seen:?}"
    );

    let others = ["n2", "n3"];
    for how in ["fail", "hang", "down", "kill"] {
        let reason = match how {
            "fail" => "500 (expected 200)",
            "hang" => "timed out",
            _ => "Connection refused",
        };
        let before = log(&nodes[0].1).matches("check DOWN").count();
        if how == "kill" {
            nodes[0].0.kill(&mut lab);
        } else {
            nodes[0].0.set(how);
        }
        for prefix in [VIP4, VIP6] {
            wait_via(&lab, prefix, &others);
        }
        let n1_log = log(&nodes[0].1);
        let down_lines: Vec<&str> = n1_log
            .lines()
            .filter(|l| l.contains("check DOWN"))
            .skip(before)
            .collect();
        assert!(
            down_lines.len() == 1 && down_lines[0].contains(reason),
            "{how}: one `check DOWN` with reason {reason:?}: {down_lines:#?}"
        );
        assert_eq!(
            on_lo(&lab, "n1", VIP4_ADDR),
            0,
            "{how}: VIP left on n1's lo"
        );
        // The client keeps being answered, by the two others only.
        for (addr, n) in [(VIP4_ADDR, 8), (VIP6_ADDR, 4)] {
            let seen = clients(&lab, &pki, addr, n);
            assert!(
                seen.keys().all(|k| others.contains(&k.as_str())),
                "{how}: {addr} answered by {seen:?}"
            );
        }
        if how == "kill" {
            let api = &mut nodes[0].0;
            api.spawn(&mut lab);
        } else {
            nodes[0].0.set("ok");
        }
        for prefix in [VIP4, VIP6] {
            wait_via(&lab, prefix, &NODES);
        }
    }
    // The apiserver on n1 answers through the VIP again (8 connections miss
    // one node of three with probability (2/3)^8 = 4%, so ask until it does).
    wait_until(CONVERGE, "c1 to reach n1 through the VIP again", || {
        client_get(&lab, &pki, VIP4_ADDR).is_ok_and(|b| b == "served-by n1")
    });
    assert!(anyvip_counter(&lab, "n1", "steered") > 0);

    // Re-added every time: 20 more cycles on the same node.
    let started = Instant::now();
    for i in 0..20 {
        let how = ["fail", "hang", "down"][i % 3];
        nodes[0].0.set(how);
        for prefix in [VIP4, VIP6] {
            wait_via(&lab, prefix, &others);
        }
        nodes[0].0.set("ok");
        for prefix in [VIP4, VIP6] {
            wait_via(&lab, prefix, &NODES);
        }
    }
    eprintln!("20 down/up cycles in {:?}", started.elapsed());
    let n1_log = log(&nodes[0].1);
    assert_eq!(n1_log.matches("check DOWN").count(), 24, "{n1_log}");
    assert_eq!(n1_log.matches("check UP").count(), 25, "{n1_log}");
    // n2 and n3 never moved.
    for (_, av) in &nodes[1..] {
        assert_eq!(log(av).matches("check DOWN").count(), 0);
    }
}

/// Which of `prefixes` the router has a kernel route to.
fn routed<'a>(lab: &Lab, router: &str, prefixes: &[&'a str]) -> Vec<&'a str> {
    prefixes
        .iter()
        .copied()
        .filter(|p| !lab.kernel_routes(router, p).is_empty())
        .collect()
}

fn wait_routed(lab: &Lab, prefixes: &[&str], want: &[&str], step: &str) {
    for r in ROUTERS {
        let mut last = Vec::new();
        let ok = try_wait_until(CONVERGE, step, || {
            last = routed(lab, r, prefixes);
            last == want
        });
        if ok.is_err() {
            panic!("{step}: {r} routes {last:?}, expected {want:?}");
        }
    }
}

/// Processes named `comm` in `node`'s namespace.
fn processes_named(lab: &Lab, node: &str, comm: &str) -> Vec<u32> {
    netns::pids(lab.ns(node))
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .collect()
}

#[test]
fn every_check_kind_drives_a_vip_through_both_routers() {
    if !require_root("every_check_kind_drives_a_vip") {
        return;
    }
    let mut lab = Lab::start();
    let pki = pki(&lab);
    // A second CA that signed nothing the apiserver serves (same subject
    // name, other key: rustls says BadSignature).
    let other_ca = lab.dir().join("other-ca.crt");
    let other = anyvip_lab::Pki::generate(&["127.0.0.1".to_string()]).unwrap();
    std::fs::write(&other_ca, other.ca_pem).unwrap();

    let tls = start_api(&mut lab, "n1", "apiserver", "[::]:6443", Some(&pki));
    let plain = start_api(&mut lab, "n1", "plain", "127.0.0.1:8080", None);
    let state = lab.dir().join("probe.state");
    let script = lab.dir().join("probe.sh");
    std::fs::write(&state, "pass").unwrap();
    std::fs::write(
        &script,
        "case \"$(cat \"$1\")\" in\n  pass) exit 0 ;;\n  hang) exec sleep 30 ;;\n  *) echo \"probe says no\" >&2; exit 1 ;;\nesac\n",
    )
    .unwrap();
    let flag = lab.dir().join("maintenance");

    // One VIP per check kind, so each is seen driving a route on its own.
    let (https, http, tcp, exec, file, wrong_ca) = (
        "10.201.255.11/32",
        "10.201.255.12/32",
        "10.201.255.13/32",
        "10.201.255.14/32",
        "10.201.255.15/32",
        "10.201.255.16/32",
    );
    let all = [https, http, tcp, exec, file, wrong_ca];
    // exec forks a shell per probe: a little more room on a busy machine.
    let slow = Timing {
        interval: Duration::from_millis(400),
        timeout: Duration::from_millis(300),
        ..FAST
    };
    let body = format!(
        "{}[check.plain]\nhttp = \"http://127.0.0.1:8080/readyz\"\n{}\n\
         [check.port]\ntcp = \"127.0.0.1:6443\"\n{}\n\
         [check.script]\nexec = [\"/bin/sh\", \"{}\", \"{}\"]\n{}\n\
         [check.maintenance]\nfile = \"{}\"\n{}\n{}{}{}{}{}{}{}",
        https_check("apiserver", "https://127.0.0.1:6443/readyz", &pki.ca, FAST),
        FAST.toml(),
        FAST.toml(),
        script.display(),
        state.display(),
        slow.toml(),
        flag.display(),
        FAST.toml(),
        https_check(
            "untrusted",
            "https://127.0.0.1:6443/readyz",
            &other_ca,
            FAST
        ),
        vip(https, &["apiserver"], None),
        vip(http, &["plain"], None),
        vip(tcp, &["port"], None),
        vip(exec, &["script"], None),
        vip(file, &["maintenance"], None),
        vip(wrong_ca, &["untrusted"], None),
    );
    let cfg = config(&lab, "n1", "kinds", &body);
    let n1 = anyvip(&mut lab, "n1", &cfg);
    let healthy = [https, http, tcp, exec, file];
    wait_routed(&lab, &all, &healthy, "all checks but the untrusted one up");

    // https, status 500: only its VIP goes (tcp still connects).
    tls.set("fail");
    wait_routed(&lab, &all, &[http, tcp, exec, file], "https failing");
    tls.set("ok");
    wait_routed(&lab, &all, &healthy, "https back");
    // http, status 500.
    plain.set("fail");
    wait_routed(&lab, &all, &[https, tcp, exec, file], "http failing");
    plain.set("ok");
    wait_routed(&lab, &all, &healthy, "http back");
    // tcp refused (nothing listens): the https check fails with it.
    tls.set("down");
    wait_routed(&lab, &all, &[http, exec, file], "port refused");
    tls.set("ok");
    wait_routed(&lab, &all, &healthy, "port back");
    // exec exit 1, then exec timeout (killed with its process group).
    std::fs::write(&state, "fail").unwrap();
    wait_routed(&lab, &all, &[https, http, tcp, file], "exec exit 1");
    std::fs::write(&state, "pass").unwrap();
    wait_routed(&lab, &all, &healthy, "exec passing again");
    std::fs::write(&state, "hang").unwrap();
    wait_routed(&lab, &all, &[https, http, tcp, file], "exec timing out");
    std::fs::write(&state, "pass").unwrap();
    wait_routed(&lab, &all, &healthy, "exec passing after the timeouts");
    wait_until(
        Duration::from_secs(5),
        "the timed-out probes' sleeps to be gone",
        || processes_named(&lab, "n1", "sleep").is_empty(),
    );
    // The maintenance flag.
    std::fs::write(&flag, "").unwrap();
    wait_routed(&lab, &all, &[https, http, tcp, exec], "maintenance flag");
    std::fs::remove_file(&flag).unwrap();
    wait_routed(&lab, &all, &healthy, "maintenance over");

    // Each change was logged with its reason, once.
    let text = log(&n1);
    let down = |check: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains("check DOWN") && l.contains(&format!("check=\"{check}\"")))
            .map(str::to_string)
            .collect()
    };
    let expect = [
        (
            "apiserver",
            vec!["HTTP/1.1 500 (expected 200)", "connect: Connection refused"],
        ),
        ("plain", vec!["HTTP/1.1 500 (expected 200)"]),
        ("port", vec!["connect: Connection refused"]),
        ("script", vec!["exit 1", "timed out after 300ms"]),
        ("maintenance", vec!["exists (maintenance)"]),
    ];
    for (check, reasons) in expect {
        let lines = down(check);
        assert_eq!(lines.len(), reasons.len(), "{check}: {lines:#?}");
        for (line, reason) in lines.iter().zip(reasons) {
            assert!(line.contains(reason), "{check}: {reason:?} not in {line}");
        }
    }
    assert!(
        text.contains("probe says no"),
        "exec output is captured for the log:\n{text}"
    );
    // The certificate is really verified: a check trusting another CA never
    // came up, and says why.
    assert!(down("untrusted").is_empty());
    assert!(
        text.lines().any(|l| l.contains("check=\"untrusted\"")
            && l.contains("check failing")
            && l.contains("invalid peer certificate")),
        "{text}"
    );
    assert!(!text.contains("check UP after 3 consecutive passes check=\"untrusted\""));
}

/// Run `argv`s in `node`'s namespace at the same time; wait for all.
fn run_together(lab: &Lab, node: &str, argvs: &[Vec<String>]) {
    let children: Vec<_> = argvs
        .iter()
        .map(|argv| {
            netns::in_ns(lab.ns(node), argv)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
        })
        .collect();
    for mut c in children {
        let _ = c.wait();
    }
}

fn ping_argv(addr: &str, count: u32) -> Vec<String> {
    let mut argv = vec!["ping".to_string()];
    if addr.contains(':') {
        argv.push("-6".into());
    }
    argv.extend(
        [
            "-q",
            "-n",
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            "1",
            addr,
        ]
        .map(String::from),
    );
    argv
}

/// A counter in a router, outside anything anyvip owns: packets for either
/// VIP arriving at `router` (on `iif` only, if given).
fn install_probe(lab: &Lab, router: &str, iif: Option<&str>) {
    let on = iif.map(|i| format!("iifname \"{i}\" ")).unwrap_or_default();
    for cmd in [
        "add table inet labprobe".to_string(),
        "add counter inet labprobe vip".to_string(),
        "add chain inet labprobe pre { type filter hook prerouting priority -400 ; policy accept ; }"
            .to_string(),
        format!("add rule inet labprobe pre {on}ip daddr {VIP4_ADDR} counter name \"vip\""),
        format!("add rule inet labprobe pre {on}ip6 daddr {VIP6_ADDR} counter name \"vip\""),
    ] {
        lab.exec_ok(router, &["nft", &cmd]);
    }
}

fn probe_count(lab: &Lab, router: &str) -> u64 {
    let out = lab.exec_ok(
        router,
        &["nft", "-j", "list", "counter", "inet", "labprobe", "vip"],
    );
    let doc: Value = serde_json::from_str(&out).unwrap();
    doc["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|o| o["counter"]["packets"].as_u64())
        .unwrap_or_else(|| panic!("{out}"))
}

/// What the loop guard test looks at: VIP packets that got out of n1 (to
/// r1 back over n1's link, or to r2 over its other one), time-exceeded
/// messages sent anywhere, and n1's guard counter (if the table is there).
#[derive(Debug, Clone, PartialEq)]
struct LoopView {
    back_to_r1: u64,
    to_r2: u64,
    time_exceeded: BTreeMap<String, u64>,
    guard: Option<u64>,
}

fn loop_view(lab: &Lab) -> LoopView {
    LoopView {
        back_to_r1: probe_count(lab, "r1"),
        to_r2: probe_count(lab, "r2"),
        time_exceeded: time_exceeded_sent(lab),
        guard: (anyvip_tables(lab, "n1") == 1).then(|| anyvip_counter(lab, "n1", "guard")),
    }
}

/// 5 pings to each VIP from c1, then a moment for any loop to play out.
fn send_vip_pings(lab: &Lab) {
    run_together(
        lab,
        "c1",
        &[ping_argv(VIP4_ADDR, 5), ping_argv(VIP6_ADDR, 5)],
    );
    std::thread::sleep(Duration::from_millis(300));
}

/// Pings for the VIPs from c1 reach n1 and go no further: nothing comes out
/// of n1, no time exceeded anywhere, n1's guard counts all 10.
fn guard_holds(lab: &Lab, phase: &str) {
    let before = loop_view(lab);
    send_vip_pings(lab);
    let after = loop_view(lab);
    assert_eq!(
        after.back_to_r1, before.back_to_r1,
        "{phase}: n1 sent VIP packets back to r1"
    );
    assert_eq!(
        after.to_r2, before.to_r2,
        "{phase}: n1 forwarded VIP packets to r2"
    );
    assert_eq!(
        after.time_exceeded, before.time_exceeded,
        "{phase}: ICMP time exceeded was sent"
    );
    let (Some(b), Some(a)) = (before.guard, after.guard) else {
        panic!("{phase}: no inet anyvip table in n1");
    };
    assert_eq!(a - b, 10, "{phase}: the guard counts the 10 packets");
}

#[test]
fn loop_guard_drops_vip_packets_sent_to_a_withdrawn_or_stopped_node_without_forwarding() {
    if !require_root("loop_guard_drops_vip_packets") {
        return;
    }
    let mut lab = Lab::start();
    let pki = pki(&lab);
    let mut nodes = standard_nodes(&mut lab, &pki, &["n1"], FAST);
    for prefix in [VIP4, VIP6] {
        wait_via(&lab, prefix, &["n1"]);
    }
    nodes[0].0.set("fail");
    for prefix in [VIP4, VIP6] {
        wait_via(&lab, prefix, &[]);
    }
    assert_eq!(on_lo(&lab, "n1", VIP4_ADDR), 0);
    assert_eq!(on_lo(&lab, "n1", VIP6_ADDR), 0);

    // The keepalived-style loop, armed: r1 sends VIP traffic to n1 (a static
    // route, as a stale or misconfigured route would), n1 forwards and
    // has a default route to r2, and r2 sends the VIP back to n1. Without
    // the guard a packet circles n1 <-> r2 until its TTL runs out.
    for cmd in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
        lab.exec_ok("n1", &["sysctl", "-qw", cmd]);
    }
    lab.exec_ok(
        "n1",
        &["ip", "route", "add", "default", "via", "10.201.11.1"],
    );
    lab.exec_ok(
        "n1",
        &[
            "ip",
            "-6",
            "route",
            "add",
            "default",
            "via",
            "fd00:201:11::1",
        ],
    );
    for (router, gw4, gw6) in [
        ("r1", "10.201.1.2", "fd00:201:1::2"),
        ("r2", "10.201.11.2", "fd00:201:11::2"),
    ] {
        lab.exec_ok(router, &["ip", "route", "add", VIP4, "via", gw4]);
        lab.exec_ok(router, &["ip", "-6", "route", "add", VIP6, "via", gw6]);
    }
    install_probe(&lab, "r1", Some("eth1"));
    install_probe(&lab, "r2", None);

    guard_holds(&lab, "VIP withdrawn");

    // A clean stop keeps the guard (and only the guard: no steering).
    let av = nodes.remove(0).1;
    let status = lab
        .stop(av.pid, Duration::from_secs(15))
        .expect("anyvip exited");
    assert!(
        status.success(),
        "anyvip exited with {status}: {}",
        log(&av)
    );
    assert_eq!(
        anyvip_tables(&lab, "n1"),
        1,
        "the guard table stays after a clean stop"
    );
    let (_, chains) = anyvip_rules(&lab, "n1");
    assert!(chains.iter().any(|c| c == "guard_prerouting"), "{chains:?}");
    assert!(!chains.iter().any(|c| c.starts_with("steer")), "{chains:?}");
    guard_holds(&lab, "anyvip stopped");

    // Control: the same traffic without the guard does loop, so the checks
    // above would have seen it.
    lab.exec_ok("n1", &["nft", "delete", "table", "inet", "anyvip"]);
    let before = loop_view(&lab);
    send_vip_pings(&lab);
    let after = loop_view(&lab);
    assert!(
        after.to_r2 > before.to_r2,
        "control: no loop without the guard? {after:?}"
    );
    assert!(
        after.time_exceeded.values().sum::<u64>() > before.time_exceeded.values().sum::<u64>(),
        "control: no time exceeded without the guard? {before:?} -> {after:?}"
    );
}

/// `router`'s neighbour entries, both families: (ip, dev) -> (state, has a
/// link-layer address).
fn neighbours(lab: &Lab, router: &str) -> BTreeMap<(String, String), (String, bool)> {
    let out = lab.exec_ok(router, &["ip", "-j", "neigh", "show"]);
    let doc: Value = serde_json::from_str(if out.trim().is_empty() { "[]" } else { &out }).unwrap();
    doc.as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                (
                    e["dst"].as_str().unwrap_or("").to_string(),
                    e["dev"].as_str().unwrap_or("").to_string(),
                ),
                (
                    e["state"][0].as_str().unwrap_or("").to_string(),
                    e.get("lladdr").is_some(),
                ),
            )
        })
        .collect()
}

/// Make each `(router, dev, ip)` resolve `ip` on `dev` (one ping bound to
/// `dev`, all at once) and tell, for each, whether it got an answer. The
/// entries are watched while the pings run: an answer shows as a link-layer
/// address; no answer as FAILED, or as an entry that was INCOMPLETE and is
/// gone (the kernel garbage-collects FAILED entries). An entry never seen
/// at all means the probe never asked, which fails the test.
fn resolve_all(lab: &Lab, probes: &[(&str, String, String)]) -> Vec<bool> {
    let mut pings = Vec::new();
    for (router, dev, ip) in probes {
        let mut argv = ping_argv(ip, 1);
        argv.extend(["-I".to_string(), dev.clone()]);
        pings.push(
            netns::in_ns(lab.ns(router), &argv)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{argv:?}: {e}")),
        );
    }
    let mut seen = vec![false; probes.len()];
    let mut answer: Vec<Option<bool>> = vec![None; probes.len()];
    let done = try_wait_until(Duration::from_secs(15), "neighbour resolution", || {
        let tables: BTreeMap<&str, _> = ROUTERS.iter().map(|r| (*r, neighbours(lab, r))).collect();
        for (i, (router, dev, ip)) in probes.iter().enumerate() {
            if answer[i].is_some() {
                continue;
            }
            match tables[router].get(&(ip.clone(), dev.clone())) {
                Some((_, true)) => answer[i] = Some(true),
                Some((state, false)) if state == "FAILED" => answer[i] = Some(false),
                Some(_) => seen[i] = true,
                None if seen[i] => answer[i] = Some(false),
                None => {}
            }
        }
        answer.iter().all(Option::is_some)
    });
    for mut p in pings {
        let _ = p.wait();
    }
    if let Err(e) = done {
        let pending: Vec<_> = probes
            .iter()
            .zip(&answer)
            .filter(|(_, a)| a.is_none())
            .map(|(p, _)| p)
            .collect();
        panic!("{e}: no neighbour entry ever seen for {pending:?}");
    }
    answer
        .into_iter()
        .map(|a| a.expect("all decided"))
        .collect()
}

#[test]
fn no_node_answers_arp_or_nd_for_a_vip_on_any_link() {
    if !require_root("no_node_answers_arp_or_nd_for_a_vip") {
        return;
    }
    let mut lab = Lab::start();
    let pki = pki(&lab);
    let _nodes = standard_nodes(&mut lab, &pki, &NODES, FAST);
    for prefix in [VIP4, VIP6] {
        wait_via(&lab, prefix, &NODES);
    }
    for n in NODES {
        assert_eq!(on_lo(&lab, n, VIP4_ADDR), 1, "{n}");
        assert_eq!(on_lo(&lab, n, VIP6_ADDR), 1, "{n}");
    }
    // Each router asks each node link for the VIPs, as if they were on-link
    // there: a policy rule sends what is bound to `eth<i>` (ping -I) to a
    // table where the VIP is a connected route on that link. And for the
    // node's own link addresses, which must resolve (control).
    let mut probes = Vec::new();
    for r in ROUTERS {
        let base = if r == "r1" { 0 } else { 10 };
        for i in 1..=3u32 {
            let dev = format!("eth{i}");
            let table = (1000 + i).to_string();
            for family in ["-4", "-6"] {
                let (vip, link) = if family == "-4" {
                    (VIP4_ADDR.to_string(), format!("10.201.{}.2", base + i))
                } else {
                    (VIP6_ADDR.to_string(), format!("fd00:201:{}::2", base + i))
                };
                lab.exec_ok(
                    r,
                    &[
                        "ip", family, "rule", "add", "to", &vip, "oif", &dev, "lookup", &table,
                        "pref", &table,
                    ],
                );
                lab.exec_ok(
                    r,
                    &[
                        "ip", family, "route", "add", &vip, "dev", &dev, "table", &table,
                    ],
                );
                let proto = if family == "-4" { "ipv4" } else { "ipv6" };
                lab.exec_ok(
                    r,
                    &[
                        "sysctl",
                        "-qw",
                        &format!("net.{proto}.neigh.{dev}.retrans_time_ms=200"),
                    ],
                );
                lab.exec_ok(r, &["ip", family, "neigh", "flush", "dev", &dev]);
                probes.push((r, dev.clone(), vip, false));
                probes.push((r, dev.clone(), link, true));
            }
        }
    }
    let asks: Vec<(&str, String, String)> = probes
        .iter()
        .map(|(r, dev, ip, _)| (*r, dev.clone(), ip.clone()))
        .collect();
    let answered = resolve_all(&lab, &asks);
    for ((r, dev, ip, node_address), answered) in probes.iter().zip(answered) {
        if *node_address {
            assert!(answered, "{r} {dev}: the node's {ip} does not resolve");
        } else {
            assert!(!answered, "{r} {dev}: a node answered for the VIP {ip}");
        }
    }

    // Controls: the probe sees an answer when there is one. With the
    // kernel's default arp_ignore (0) n1 answers ARP for lo's VIP (what
    // anyvip's sysctl prevents); with the /128 on eth1 itself it answers ND.
    for key in ["all", "eth1"] {
        lab.exec_ok(
            "n1",
            &[
                "sysctl",
                "-qw",
                &format!("net.ipv4.conf.{key}.arp_ignore=0"),
            ],
        );
    }
    lab.exec_ok(
        "n1",
        &[
            "ip",
            "-6",
            "addr",
            "add",
            &format!("{VIP6_ADDR}/128"),
            "dev",
            "eth1",
            "nodad",
        ],
    );
    lab.exec_ok("r1", &["ip", "neigh", "flush", "dev", "eth1"]);
    lab.exec_ok("r1", &["ip", "-6", "neigh", "flush", "dev", "eth1"]);
    let asks = [VIP4_ADDR, VIP6_ADDR].map(|ip| ("r1", "eth1".to_string(), ip.to_string()));
    assert_eq!(
        resolve_all(&lab, &asks),
        [true, true],
        "control: the VIPs should resolve once n1 answers for them"
    );
}

#[test]
fn kill_9_then_start_again_leaves_no_duplicates_and_follows_health() {
    if !require_root("kill_9_then_start_again") {
        return;
    }
    let mut lab = Lab::start();
    let pki = pki(&lab);
    let t = FAST;
    let api = start_api(&mut lab, "n1", "apiserver", "[::]:6443", Some(&pki));
    let cfg = config(&lab, "n1", "standard", &standard_body(&pki, t));
    let first = anyvip(&mut lab, "n1", &cfg);
    for prefix in [VIP4, VIP6] {
        wait_via(&lab, prefix, &["n1"]);
    }
    let (rules, chains) = anyvip_rules(&lab, "n1");
    assert!(chains.iter().any(|c| c == "steer_prerouting"), "{chains:?}");
    let unique = |r: &[String]| r.iter().collect::<std::collections::BTreeSet<_>>().len();
    assert_eq!(unique(&rules), rules.len(), "duplicated rules: {rules:#?}");
    let consistent = |lab: &Lab, when: &str| {
        assert_eq!(anyvip_tables(lab, "n1"), 1, "{when}: inet anyvip tables");
        let now = anyvip_rules(lab, "n1");
        assert_eq!(
            now,
            (rules.clone(), chains.clone()),
            "{when}: the table changed"
        );
        for a in [VIP4_ADDR, VIP6_ADDR] {
            assert!(on_lo(lab, "n1", a) <= 1, "{when}: {a} more than once on lo");
        }
    };

    // kill -9: no clean-up at all; the sessions die with the process.
    assert!(lab.signal(first.pid, "KILL"));
    wait_until(Duration::from_secs(10), "anyvip to die", || {
        lab.try_wait(first.pid).is_some()
    });
    for prefix in [VIP4, VIP6] {
        wait_via(&lab, prefix, &[]);
    }
    assert_eq!(
        on_lo(&lab, "n1", VIP4_ADDR),
        1,
        "the crash left the address behind"
    );
    consistent(&lab, "after kill -9");

    // Start again while the apiserver fails: what the crashed run left is
    // removed (fail closed), nothing is announced.
    api.set("fail");
    let second = anyvip(&mut lab, "n1", &cfg);
    wait_until(
        Duration::from_secs(20),
        "the leftover addresses to go",
        || on_lo(&lab, "n1", VIP4_ADDR) == 0 && on_lo(&lab, "n1", VIP6_ADDR) == 0,
    );
    consistent(&lab, "second start, unhealthy");
    wait_sessions(&lab, &["n1"]);
    assert_no_route_for(&lab, &[VIP4, VIP6], t.interval * t.rise * 2);
    let text = log(&second);
    assert!(
        text.contains("removed a VIP address left by an earlier run"),
        "{text}"
    );
    // Healthy: back after rise checks.
    api.set("ok");
    for prefix in [VIP4, VIP6] {
        wait_via(&lab, prefix, &["n1"]);
    }
    assert_eq!(on_lo(&lab, "n1", VIP4_ADDR), 1);
    assert_eq!(on_lo(&lab, "n1", VIP6_ADDR), 1);
    consistent(&lab, "second start, healthy");

    // kill -9 again and start at once, healthy: the leftover address is
    // removed and added again, never twice; the state follows health one
    // rise period after the start (plus the sessions' set-up).
    assert!(lab.signal(second.pid, "KILL"));
    wait_until(Duration::from_secs(10), "anyvip to die", || {
        lab.try_wait(second.pid).is_some()
    });
    let started = Instant::now();
    let _third = anyvip(&mut lab, "n1", &cfg);
    let mut max_on_lo = 0;
    wait_until(CONVERGE, "the VIPs back on both routers", || {
        max_on_lo = max_on_lo
            .max(on_lo(&lab, "n1", VIP4_ADDR))
            .max(on_lo(&lab, "n1", VIP6_ADDR));
        ROUTERS
            .iter()
            .all(|r| via(&lab, r, VIP4) == ["n1"] && via(&lab, r, VIP6) == ["n1"])
    });
    eprintln!(
        "restart -> VIPs on both routers in {:?} (rise {} x {:?})",
        started.elapsed(),
        t.rise,
        t.interval
    );
    assert!(max_on_lo <= 1);
    assert_eq!(on_lo(&lab, "n1", VIP4_ADDR), 1);
    assert_eq!(on_lo(&lab, "n1", VIP6_ADDR), 1);
    consistent(&lab, "third start");
}

#[test]
fn dual_stack_vips_with_separate_checks_each_follow_their_own_health() {
    if !require_root("dual_stack_vips_with_separate_checks") {
        return;
    }
    let mut lab = Lab::start();
    let pki = pki(&lab);
    let t = FAST;
    // Two apiservers per node: one behind the /32 (127.0.0.1:6443), one
    // behind the /128 ([::]:6444, checked on ::1).
    let body = format!(
        "{}{}{}{}",
        https_check("api4", "https://127.0.0.1:6443/readyz", &pki.ca, t),
        https_check("api6", "https://[::1]:6444/readyz", &pki.ca, t),
        vip(VIP4, &["api4"], Some((443, "127.0.0.1:6443"))),
        vip(VIP6, &["api6"], Some((443, "[::]:6444"))),
    );
    let mut apis = Vec::new();
    for n in NODES {
        let a4 = start_api(&mut lab, n, "api4", "127.0.0.1:6443", Some(&pki));
        let a6 = start_api(&mut lab, n, "api6", "[::]:6444", Some(&pki));
        let cfg = config(&lab, n, "dual", &body);
        anyvip(&mut lab, n, &cfg);
        apis.push((a4, a6));
    }
    for prefix in [VIP4, VIP6] {
        wait_via(&lab, prefix, &NODES);
    }
    let others = ["n2", "n3"];

    // Only the v6 check fails on n1: only its /128 path goes.
    apis[0].1.set("fail");
    wait_via(&lab, VIP6, &others);
    let v4_stays = Instant::now() + t.interval * t.rise * 2;
    while Instant::now() < v4_stays {
        for r in ROUTERS {
            assert_eq!(
                via(&lab, r, VIP4),
                NODES,
                "{r}: the /32 moved with the /128's check"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(on_lo(&lab, "n1", VIP4_ADDR), 1);
    assert_eq!(on_lo(&lab, "n1", VIP6_ADDR), 0);
    let seen = clients(&lab, &pki, VIP6_ADDR, 6);
    assert!(
        seen.keys().all(|k| others.contains(&k.as_str())),
        "{seen:?}"
    );
    apis[0].1.set("ok");
    wait_via(&lab, VIP6, &NODES);

    // And the other way round.
    apis[0].0.set("fail");
    wait_via(&lab, VIP4, &others);
    for r in ROUTERS {
        assert_eq!(
            via(&lab, r, VIP6),
            NODES,
            "{r}: the /128 moved with the /32's check"
        );
    }
    assert_eq!(on_lo(&lab, "n1", VIP4_ADDR), 0);
    assert_eq!(on_lo(&lab, "n1", VIP6_ADDR), 1);
    let seen = clients(&lab, &pki, VIP4_ADDR, 6);
    assert!(
        seen.keys().all(|k| others.contains(&k.as_str())),
        "{seen:?}"
    );
    apis[0].0.set("ok");
    wait_via(&lab, VIP4, &NODES);
    assert_eq!(via(&lab, "r1", VIP6), NODES);
}

// ============================================================ measurement

/// `2026-11-25T12:58:13.987621Z` (anyvip's log) or `2026-11-25T12:58:13.987621`
/// (`ip -ts` with TZ=UTC) as a wall-clock time.
fn parse_utc(s: &str) -> Option<SystemTime> {
    let s = s.trim().trim_end_matches('Z');
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let nanos: u32 = format!("{frac:0<9}").get(..9)?.parse().ok()?;
    // days from civil (H. Hinnant)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + Duration::new(u64::try_from(secs).ok()?, nanos))
}

/// One route message from `ip -ts monitor route` (nexthop objects skipped).
#[derive(Debug)]
struct RouteEvent {
    at: SystemTime,
    deleted: bool,
    dst: String,
    devs: Vec<String>,
}

fn route_events(text: &str) -> Vec<RouteEvent> {
    let mut events: Vec<(SystemTime, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('[') {
            let Some((ts, body)) = rest.split_once("] ") else {
                continue;
            };
            if let Some(at) = parse_utc(ts) {
                events.push((at, body.to_string()));
            }
        } else if line.starts_with(char::is_whitespace) {
            if let Some(last) = events.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        }
    }
    events
        .into_iter()
        .filter(|(_, body)| !body.starts_with("id "))
        .map(|(at, body)| {
            let (deleted, body) = match body.strip_prefix("Deleted ") {
                Some(b) => (true, b.to_string()),
                None => (false, body),
            };
            let words: Vec<&str> = body.split_whitespace().collect();
            let devs = words
                .windows(2)
                .filter(|w| w[0] == "dev")
                .map(|w| w[1].to_string())
                .collect();
            RouteEvent {
                at,
                deleted,
                dst: words.first().unwrap_or(&"").to_string(),
                devs,
            }
        })
        .collect()
}

/// Replaying a router's route events for `dst`: the first one at or after
/// `since` after which the route leads over `dev` (`present`) or no longer
/// does (`!present`).
fn path_change(
    text: &str,
    dst: &str,
    dev: &str,
    since: SystemTime,
    present: bool,
) -> Option<SystemTime> {
    let mut current: Vec<String> = Vec::new();
    for ev in route_events(text).into_iter().filter(|e| e.dst == dst) {
        if ev.deleted {
            if ev.devs == current {
                current.clear();
            }
        } else {
            current = ev.devs;
        }
        if ev.at >= since && current.iter().any(|d| d == dev) == present {
            return Some(ev.at);
        }
    }
    None
}

/// Timestamp of the `n`-th (0-based) line of `text` containing `needle`.
fn nth_logged(text: &str, needle: &str, n: usize) -> Option<SystemTime> {
    let line = text.lines().filter(|l| l.contains(needle)).nth(n)?;
    parse_utc(line.split_whitespace().next()?)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn since(a: SystemTime, b: SystemTime) -> f64 {
    match b.duration_since(a) {
        Ok(d) => ms(d),
        Err(e) => -ms(e.duration()),
    }
}

/// Not a test: the failover time of the health path, printed as a table.
/// Run with `cargo test --release --test health_lab -- --ignored --nocapture measure`.
///
/// How it is measured (all timestamps are the same host's wall clock, µs):
///
/// - "fall-th failed check": the timestamp of anyvip's log line `check DOWN
///   after <fall> consecutive failures`, written as soon as that probe's
///   result is in (before the withdrawal is even queued). It is what the
///   design's target "interval × fall + < 50 ms" means by the failure.
/// - "route gone": `ip -ts monitor route` runs in each router's namespace
///   for the whole run (started before anything else), and stamps every
///   route message the kernel sends as it receives it; the route to the VIP
///   "leaves" n1 at the first message after which it has no next hop over
///   the link to n1 (FRR replaces the multipath route or deletes and adds
///   it; BIRD replaces it). No polling, so no polling granularity.
/// - "mode switch": taken just before the test tells the stand-in
///   apiserver to fail (`/readyz` answers 500 from then on); from there to
///   the fall-th failure is between (fall-1) and fall intervals, depending
///   on where the switch falls between two probes.
///
/// The same for recovery (rise-th passed check -> route back, and mode ok
/// -> route back), and the daemon's share (-> its UPDATE to the router).
#[test]
#[ignore]
fn measure_failover_from_the_fall_th_failed_check_to_the_routers_kernel_tables() {
    if !require_root("measure_failover") {
        return;
    }
    const TRIALS: usize = 20;
    let t = FAST;
    let mut lab = Lab::start();
    let pki = pki(&lab);
    let mut monitors = BTreeMap::new();
    for r in ROUTERS {
        let mut cmd = Command::new("ip");
        cmd.args(["-ts", "monitor", "route"]).env("TZ", "UTC");
        monitors.insert(r, lab.spawn(r, cmd));
    }
    let nodes = standard_nodes(&mut lab, &pki, &NODES, t);
    wait_via(&lab, VIP4, &NODES);
    wait_via(&lab, VIP6, &NODES);
    let n1 = &nodes[0];
    let monitor = |r: &str| log(&monitors[r]);
    // The daemon's UPDATE to each router (its IPv4 session).
    let update_to = |r: &str, withdrawn: bool| {
        let peer = if r == "r1" {
            "10.201.1.1"
        } else {
            "10.201.11.1"
        };
        let what = if withdrawn {
            "announced=0 withdrawn=1"
        } else {
            "announced=1 withdrawn=0"
        };
        format!("peer{{name={peer}}}: sending UPDATE {what}")
    };

    let mut rows: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for trial in 0..TRIALS {
        let text = log(&n1.1);
        let downs = text.matches("check DOWN").count();
        let ups = text.matches("check UP").count();
        let updates: BTreeMap<&str, (usize, usize)> = ROUTERS
            .iter()
            .map(|r| {
                (
                    *r,
                    (
                        text.matches(&update_to(r, true)).count(),
                        text.matches(&update_to(r, false)).count(),
                    ),
                )
            })
            .collect();

        // Failure.
        let switch = SystemTime::now();
        n1.0.set("fail");
        let mut gone = BTreeMap::new();
        for r in ROUTERS {
            let at = wait_for_event(
                &|| path_change(&monitor(r), VIP4_ADDR, "eth1", switch, false),
                r,
            );
            gone.insert(r, at);
        }
        let text = log(&n1.1);
        let fall = nth_logged(&text, "check DOWN", downs).expect("check DOWN logged");
        // Recovery (after a short pause, so the two are apart).
        std::thread::sleep(Duration::from_millis(100 + 37 * trial as u64 % 200));
        let ok = SystemTime::now();
        n1.0.set("ok");
        let mut back = BTreeMap::new();
        for r in ROUTERS {
            let at = wait_for_event(&|| path_change(&monitor(r), VIP4_ADDR, "eth1", ok, true), r);
            back.insert(r, at);
        }
        let text = log(&n1.1);
        let rise = nth_logged(&text, "check UP", ups).expect("check UP logged");
        for r in ROUTERS {
            let (w, a) = updates[r];
            let sent_w = nth_logged(&text, &update_to(r, true), w);
            let sent_a = nth_logged(&text, &update_to(r, false), a);
            let name = if r == "r1" { "FRR" } else { "BIRD" };
            let key = |k: &str| format!("{k} {name}");
            rows.entry(key("a. fall-th failed check -> route gone,"))
                .or_default()
                .push(since(fall, gone[r]));
            rows.entry(key("b. mode fail -> route gone,"))
                .or_default()
                .push(since(switch, gone[r]));
            if let Some(s) = sent_w {
                rows.entry(key("c. fall-th failed check -> UPDATE sent to"))
                    .or_default()
                    .push(since(fall, s));
                rows.entry(key("d. UPDATE sent -> route gone,"))
                    .or_default()
                    .push(since(s, gone[r]));
            }
            rows.entry(key("e. rise-th passed check -> route back,"))
                .or_default()
                .push(since(rise, back[r]));
            rows.entry(key("f. mode ok -> route back,"))
                .or_default()
                .push(since(ok, back[r]));
            if let Some(s) = sent_a {
                rows.entry(key("g. UPDATE sent -> route back,"))
                    .or_default()
                    .push(since(s, back[r]));
            }
        }
        rows.entry("h. mode fail -> fall-th failed check".to_string())
            .or_default()
            .push(since(switch, fall));
        // Back to three paths before the next trial.
        wait_via(&lab, VIP4, &NODES);
    }

    println!(
        "\nfailover of n1's path to {VIP4} ({TRIALS} trials; checks: https every {:?}, timeout {:?}, \
         fall {}, rise {}; 3 nodes in ECMP; r1 FRR, r2 BIRD)",
        t.interval, t.timeout, t.fall, t.rise
    );
    println!("{:<58} {:>9} {:>9} {:>9}", "", "median", "max", "min");
    for (name, mut v) in rows {
        v.sort_by(f64::total_cmp);
        let median = if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        };
        println!(
            "{name:<58} {median:>7.1}ms {:>7.1}ms {:>7.1}ms",
            v[v.len() - 1],
            v[0]
        );
    }
}

/// Wait (generously) until `f` finds the route event; the event's time.
fn wait_for_event(f: &dyn Fn() -> Option<SystemTime>, router: &str) -> SystemTime {
    let mut found = None;
    wait_until(CONVERGE, &format!("the route change on {router}"), || {
        found = f();
        found.is_some()
    });
    found.expect("set by wait_until")
}
