//! End-to-end scenarios (issue 6, item 3) in the netns lab built from
//! `containerlab/anyvip.clab.yml`: FRR (r1) and BIRD (r2) in ECMP over the
//! three nodes, each node running the stand-in apiserver (HTTPS on
//! `[::]:6443`, one lab CA) and anyvip with an https check on it, the VIPs'
//! port 443 steered to 6443. The client c1 reaches the IPv4 VIP through r1
//! (FRR, its default route) and the IPv6 VIP through r2 (BIRD: the test adds
//! a host route for it over c1's eth2), so every scenario runs against both
//! routers at once.
//!
//! Each test builds its own lab and skips loudly unless root. Helpers are
//! copied from `tests/health_lab.rs` (same start-up of apiservers and
//! anyvip).
//!
//! | test | proves |
//! | --- | --- |
//! | `rolling_restart_with_drain_*` | each node in turn drained (`anyvip drain -s SOCKET`, delay 3 s), its apiserver restarted, resumed, while c1 sends short requests back to back through both routers, no retry of any kind: no refused connect, no timeout, no failure at all except connections reset while a router changes its ECMP group (hash-threshold moves in-flight flows of the *other* nodes too; counted and printed) |
//! | `spread_*` | 300 new connections through each router are spread over the three nodes, each ≥ 15% |
//! | `abrupt_failures_*` | anyvip `kill -9` (sessions reset: path gone at once) and a frozen node (all its traffic dropped, no FIN: path gone after the 3 s hold time): requests fail only inside the detection window, then all succeed; the node rejoins |
//!
//! Every test also checks that no ICMP/ICMPv6 time-exceeded counter moved in
//! any namespace of the lab (no forwarding loop).
//!
//! Only short connections are exercised: the stand-in apiserver has no
//! streaming/slow endpoint for long-lived requests.

mod lab;
mod lab_nodes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lab::{netns, require_root, wait_until, Lab, Spawned};
use lab_nodes::*;

// ------------------------------------------------------------ the binaries

// ------------------------------------------------------------- configs

// ------------------------------------------------------------- routers

// ------------------------------------------------------------- e2e helpers

/// A lab with the apiserver and anyvip on every node, the VIPs on three
/// paths on both routers, c1's IPv6 VIP route over r2.
struct Setup {
    lab: Lab,
    pki: Pki,
    apis: Vec<Api>,
    daemons: Vec<Spawned>,
    configs: Vec<PathBuf>,
    sockets: Vec<PathBuf>,
    time_exceeded: BTreeMap<String, u64>,
}

fn setup(tag: &str, extra: &str, hold_time: Option<&str>) -> Setup {
    let mut lab = Lab::start();
    let pki = pki(&lab);
    let time_exceeded = time_exceeded_sent(&lab);
    // c1 reaches the IPv6 VIP through r2 (BIRD), the IPv4 one through r1.
    lab.exec_ok(
        "c1",
        &[
            "ip",
            "-6",
            "route",
            "replace",
            VIP6,
            "via",
            "fd00:201:101::1",
            "dev",
            "eth2",
        ],
    );
    let (mut apis, mut daemons, mut configs, mut sockets) = (vec![], vec![], vec![], vec![]);
    for n in NODES {
        apis.push(start_api(&mut lab, n, "apiserver", "[::]:6443", Some(&pki)));
        let body = format!("{}{extra}", standard_body(&pki, FAST));
        let cfg = config(&lab, n, tag, &body);
        if let Some(hold) = hold_time {
            let text = std::fs::read_to_string(&cfg).unwrap();
            let text = text.replace(
                "\nfamilies = [",
                &format!("\nhold_time = \"{hold}\"\nfamilies = ["),
            );
            std::fs::write(&cfg, text).unwrap();
        }
        daemons.push(anyvip(&mut lab, n, &cfg));
        configs.push(cfg);
        sockets.push(lab.dir().join(format!("{n}-{tag}.sock")));
    }
    wait_sessions(&lab, &NODES);
    wait_via(&lab, VIP4, &NODES);
    wait_via(&lab, VIP6, &NODES);
    Setup {
        lab,
        pki,
        apis,
        daemons,
        configs,
        sockets,
        time_exceeded,
    }
}

impl Setup {
    /// No time exceeded sent anywhere since the lab started.
    fn assert_no_loops(&self) {
        let now = time_exceeded_sent(&self.lab);
        assert_eq!(
            now, self.time_exceeded,
            "ICMP/ICMPv6 time exceeded sent (a forwarding loop)"
        );
        eprintln!("time exceeded counters unchanged in every namespace: {now:?}");
    }

    fn both(&self, want: &[&str]) {
        wait_via(&self.lab, VIP4, want);
        wait_via(&self.lab, VIP6, want);
    }
}

/// `anyvip <args> -s SOCKET`.
fn cli(socket: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_anyvip"))
        .args(args)
        .arg("-s")
        .arg(socket)
        .output()
        .expect("run the CLI");
    assert!(out.status.success(), "anyvip {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn url(vip_addr: &str) -> String {
    if vip_addr.contains(':') {
        format!("https://[{vip_addr}]/")
    } else {
        format!("https://{vip_addr}/")
    }
}

/// One request from c1: a new connection, no retry of any kind.
#[derive(Debug, Clone)]
struct Req {
    start: Instant,
    end: Instant,
    answer: Result<String, String>,
}

fn request(ns: &str, ca: &Path, vip_addr: &str) -> Req {
    let start = Instant::now();
    let out = netns::in_ns(
        ns,
        &[
            "curl",
            "-sS",
            "--noproxy",
            "*",
            "--connect-timeout",
            "2",
            "--max-time",
            "4",
            "--cacert",
        ],
    )
    .arg(ca)
    .arg(url(vip_addr))
    .stdin(Stdio::null())
    .output();
    let answer = match out {
        Err(e) => Err(format!("curl: {e}")),
        Ok(o) if o.status.success() => {
            let body = String::from_utf8_lossy(&o.stdout).trim().to_string();
            match body.strip_prefix("served-by ") {
                Some(n) => Ok(n.to_string()),
                None => Err(format!("unexpected answer {body:?}")),
            }
        }
        Ok(o) => Err(format!(
            "curl exit {:?}: {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
    };
    Req {
        start,
        end: Instant::now(),
        answer,
    }
}

/// c1 sending requests one after the other, without pause, in a thread.
struct Client {
    what: String,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Req>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Client {
    fn start(lab: &Lab, ca: &Path, vip_addr: &str) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ns, ca, addr) = (
            lab.ns("c1").to_string(),
            ca.to_path_buf(),
            vip_addr.to_string(),
        );
        let thread = {
            let (stop, log) = (stop.clone(), log.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let r = request(&ns, &ca, &addr);
                    log.lock().unwrap().push(r);
                }
            })
        };
        Client {
            what: format!("c1 -> {vip_addr}"),
            stop,
            log,
            thread: Some(thread),
        }
    }

    fn count(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    fn finish(mut self) -> Vec<Req> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("client thread");
        }
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn per_node(reqs: &[Req]) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for r in reqs {
        let k = match &r.answer {
            Ok(n) => n.clone(),
            Err(_) => "failed".to_string(),
        };
        *seen.entry(k).or_insert(0) += 1;
    }
    seen
}

/// Until `n` more requests have completed on every client.
fn let_requests_flow(clients: &[&Client], n: usize) {
    let base: Vec<usize> = clients.iter().map(|c| c.count()).collect();
    wait_until(CONVERGE, "client requests", || {
        clients.iter().zip(&base).all(|(c, b)| c.count() >= b + n)
    });
}

// ================================================================== tests

#[test]
fn rolling_restart_with_drain_refuses_or_times_out_no_request_through_either_router() {
    if !require_root("rolling_restart_with_drain") {
        return;
    }
    // Drain delay well above the routers' convergence (well under 1 s here).
    let drain_delay = Duration::from_secs(3);
    let extra = format!(
        "[drain]\ndelay = \"{}s\"\nprepend = 2\nmed = 500\n",
        drain_delay.as_secs()
    );
    let mut s = setup("rolling", &extra, None);
    let c4 = Client::start(&s.lab, &s.pki.ca, VIP4_ADDR);
    let c6 = Client::start(&s.lab, &s.pki.ca, VIP6_ADDR);
    let t0 = Instant::now();
    // While the routers change an ECMP group (a path leaves at drain, joins
    // at resume): see the assertion below.
    let mut changes: Vec<(Instant, Instant)> = Vec::new();
    let_requests_flow(&[&c4, &c6], 10);
    for (i, &node) in NODES.iter().enumerate() {
        let others: Vec<&str> = NODES.iter().copied().filter(|n| *n != node).collect();
        let drained = Instant::now();
        cli(&s.sockets[i], &["drain"]);
        // The worse path first: new connections go to the other two...
        s.both(&others);
        changes.push((drained, Instant::now()));
        eprintln!(
            "{node}: drained at {:?}, off both routers' FIBs after {:?}",
            drained - t0,
            drained.elapsed()
        );
        assert!(cli(&s.sockets[i], &["status"]).contains("drain"));
        // ...then, after the delay, the withdrawal; requests in flight done.
        std::thread::sleep(drain_delay + Duration::from_secs(1));
        s.apis[i].kill(&mut s.lab);
        s.apis[i].spawn(&mut s.lab);
        eprintln!("{node}: apiserver restarted, resume at {:?}", t0.elapsed());
        let resumed = Instant::now();
        cli(&s.sockets[i], &["resume"]);
        s.both(&NODES);
        changes.push((resumed, Instant::now()));
        eprintln!("{node}: restarted and back after {:?}", drained.elapsed());
        let_requests_flow(&[&c4, &c6], 20);
    }
    // No new connection may reach a node that does not answer: no refused
    // connect, no timeout, ever. What plain hash-threshold ECMP does on the
    // routers (FRR and BIRD alike) is outside anyvip's reach: when a path
    // leaves or joins the group, the hash ranges of the *other* next hops
    // move too, so a connection in flight at that instant can land on a
    // node without its socket and be reset. Those resets (only while a
    // group changes) are reported, not failed; anything else fails.
    let mut failed = Vec::new();
    let mut resets = Vec::new();
    for c in [c4, c6] {
        let what = c.what.clone();
        let reqs = c.finish();
        let seen = per_node(&reqs);
        eprintln!("{what}: {} requests: {seen:?}", reqs.len());
        for n in NODES {
            assert!(
                seen.get(n).copied().unwrap_or(0) > 0,
                "{what}: {n} never answered: {seen:?}"
            );
        }
        for r in reqs {
            let Err(e) = &r.answer else { continue };
            let at = r.start.saturating_duration_since(t0);
            let line = format!("{what}: started at {at:?}: {e}");
            let in_change = changes
                .iter()
                .any(|(from, to)| r.start <= *to && r.end >= *from);
            if in_change && e.contains("reset by peer") {
                resets.push(line);
            } else {
                failed.push(line);
            }
        }
    }
    eprintln!(
        "connections reset while an ECMP group changed (router hashing, not the drain): {}: {resets:#?}",
        resets.len()
    );
    assert!(failed.is_empty(), "failed requests: {failed:#?}");
    s.assert_no_loops();
}

/// `n` new connections from c1 to `vip_addr` in one curl (HTTP/1.1,
/// `Connection: close`, so each URL is a new connection from a new port):
/// who answered, how often.
fn spread(lab: &Lab, pki: &Pki, vip_addr: &str, n: usize) -> BTreeMap<String, usize> {
    let ca = pki.ca.display().to_string();
    let u = url(vip_addr);
    let mut argv: Vec<&str> = vec![
        "curl",
        "-sS",
        "--noproxy",
        "*",
        "--http1.1",
        "-H",
        "Connection: close",
        "--max-time",
        "120",
        "--cacert",
        &ca,
        "-w",
        "port %{local_port}\n",
    ];
    argv.extend(std::iter::repeat_n(u.as_str(), n));
    let out = lab.exec_ok("c1", &argv);
    let mut seen = BTreeMap::new();
    let mut ports = std::collections::BTreeSet::new();
    for line in out.lines() {
        if let Some(node) = line.strip_prefix("served-by ") {
            *seen.entry(node.to_string()).or_insert(0) += 1;
        } else if let Some(p) = line.strip_prefix("port ") {
            ports.insert(p.to_string());
        }
    }
    assert_eq!(seen.values().sum::<usize>(), n, "{out}");
    assert_eq!(ports.len(), n, "not {n} distinct connections: {out}");
    seen
}

#[test]
fn spread_300_new_connections_over_the_three_nodes_through_either_router() {
    if !require_root("spread_300_new_connections") {
        return;
    }
    let s = setup("spread", "", None);
    for (vip_addr, router) in [(VIP4_ADDR, "r1 (FRR)"), (VIP6_ADDR, "r2 (BIRD)")] {
        let seen = spread(&s.lab, &s.pki, vip_addr, 300);
        eprintln!("300 connections to {vip_addr} through {router}: {seen:?}");
        for n in NODES {
            let got = seen.get(n).copied().unwrap_or(0);
            assert!(
                got >= 45,
                "{n} got {got} of 300 (< 15%) through {router}: {seen:?}"
            );
        }
    }
    s.assert_no_loops();
}

/// The requests that failed, and the first moment from which every request
/// started succeeded.
fn failures_after(reqs: &[Req], from: Instant) -> (Vec<&Req>, Option<Instant>) {
    let failed: Vec<&Req> = reqs
        .iter()
        .filter(|r| r.start >= from && r.answer.is_err())
        .collect();
    (
        failed,
        reqs.iter()
            .filter(|r| r.start >= from)
            .map(|r| r.start)
            .next(),
    )
}

/// Run `break_it` on `node` while c1's clients run; the path must leave both
/// routers; requests fail only until then (plus one request's time), and
/// then succeed. `heal` brings the node back; its path must rejoin.
fn abrupt(
    s: &mut Setup,
    i: usize,
    what: &str,
    break_it: &dyn Fn(&mut Setup),
    heal: &dyn Fn(&mut Setup),
) {
    let node = NODES[i];
    let others: Vec<&str> = NODES.iter().copied().filter(|n| *n != node).collect();
    let c4 = Client::start(&s.lab, &s.pki.ca, VIP4_ADDR);
    let c6 = Client::start(&s.lab, &s.pki.ca, VIP6_ADDR);
    let_requests_flow(&[&c4, &c6], 10);
    let broken = Instant::now();
    break_it(s);
    s.both(&others);
    let gone = Instant::now();
    eprintln!(
        "{what} on {node}: path gone from both routers after {:?}",
        gone - broken
    );
    // Then requests succeed.
    let_requests_flow(&[&c4, &c6], 30);
    for c in [c4, c6] {
        let name = c.what.clone();
        let reqs = c.finish();
        let (failed, _) = failures_after(&reqs, broken);
        let late: Vec<&&Req> = failed.iter().filter(|r| r.start > gone).collect();
        let after = reqs.iter().filter(|r| r.start > gone).count();
        eprintln!(
            "{name}: {} requests, {} failed in the detection window ({:?}), {after} after it: {:?}",
            reqs.len(),
            failed.len(),
            gone - broken,
            per_node(&reqs)
        );
        assert!(
            late.is_empty(),
            "{name}: failed after the path was gone: {late:#?}"
        );
        assert!(after >= 30, "{name}: {after} requests after");
    }
    heal(s);
    s.both(&NODES);
    eprintln!("{node}: back on both routers after {:?}", broken.elapsed());
}

/// Drop every packet in and out of `node` (no FIN, no RST: a frozen node).
fn freeze(lab: &Lab, node: &str) {
    let rules = "table inet e2e_freeze {\n\
        chain in { type filter hook prerouting priority -500; policy drop; }\n\
        chain out { type filter hook output priority -500; policy drop; }\n}\n";
    let path = lab.dir().join(format!("{node}-freeze.nft"));
    std::fs::write(&path, rules).unwrap();
    lab.exec_ok(node, &["nft", "-f", &path.display().to_string()]);
}

fn thaw(lab: &Lab, node: &str) {
    lab.exec_ok(node, &["nft", "delete", "table", "inet", "e2e_freeze"]);
}

#[test]
fn abrupt_failures_kill_9_and_frozen_node_fail_requests_only_within_detection() {
    if !require_root("abrupt_failures") {
        return;
    }
    // A short hold time on every session (FRR and BIRD accept 3 s).
    let mut s = setup("abrupt", "", Some("3s"));

    // anyvip kill -9 on n1: the kernel resets its sessions at once.
    abrupt(
        &mut s,
        0,
        "anyvip kill -9",
        &|s| {
            let pid = s.daemons[0].pid;
            assert!(s.lab.signal(pid, "KILL"));
            wait_until(Duration::from_secs(10), "anyvip to die", || {
                s.lab.try_wait(pid).is_some()
            });
        },
        &|s| {
            let cfg = s.configs[0].clone();
            s.daemons[0] = anyvip(&mut s.lab, "n1", &cfg);
        },
    );

    // n2 frozen: its path goes after the hold time.
    let frozen = Instant::now();
    abrupt(&mut s, 1, "node frozen", &|s| freeze(&s.lab, "n2"), &|s| {
        thaw(&s.lab, "n2")
    });
    assert!(
        frozen.elapsed() >= Duration::from_secs(2),
        "a frozen node's path went before the hold time could expire"
    );
    s.assert_no_loops();
}
