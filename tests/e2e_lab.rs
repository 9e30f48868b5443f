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
//! | `rolling_restart_with_drain_*` | each node in turn drained (n1, n2: `anyvip drain -s SOCKET` and later `resume`; n3: anyvip itself stopped with SIGTERM, which drains, withdraws, sends Cease and exits 0, and later started again), delay 3 s, withdrawn only after the delay, its apiserver restarted, while c1 sends short requests back to back and keeps watches (long-lived `GET /watch`, two or more on every node) open through both routers, no retry of any kind. Short: no refused connect, no timeout, no failure at all except a connection reset while it was in flight at the instant its router changed the ECMP group (each change timed by polling that router's kernel route). Long-lived: a watch ends only when its router moves it (within 1 s of such a change), and one on the drained node not before its router drops the drained path. Counts printed |
//! | `spread_*` | 300 new connections through each router are spread over the three nodes, each ≥ 15% |
//! | `abrupt_failures_*` | anyvip `kill -9` (sessions reset: path gone at once) and a frozen node (all its traffic dropped, no FIN: path gone after the 3 s hold time): requests fail only inside the detection window, then all succeed; the node rejoins |
//!
//! Every test also checks that no ICMP/ICMPv6 time-exceeded counter moved in
//! any namespace of the lab (no forwarding loop).
//!
//! Why a router's group change resets connections at all: FRR and BIRD put
//! the paths into the Linux FIB as one plain multipath route, which picks a
//! next hop by hash-threshold (RFC 2992). When a path leaves or joins, the
//! hash ranges of the other next hops move too, so established flows of
//! nodes that stay are sent to a node that has no socket for them and get
//! a reset. The routers keep no per-flow state, so the drained node's own
//! connections move the moment its path is dropped, whatever the drain
//! delay. What anyvip controls, and what these tests hold it to: no new
//! connection ever reaches a node that cannot answer, and no connection
//! ends except at a router's change. See docs/routers.md, "Established
//! connections".

mod lab;
mod lab_nodes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lab::{netns, require_root, wait_for, wait_until, Lab, Spawned};
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

/// One long-lived request from c1 (`GET /watch`, a line every 100 ms),
/// from its first byte to its end.
#[derive(Debug, Clone)]
struct Watched {
    /// The node that answered (from the first line), if any line came.
    node: Option<String>,
    start: Instant,
    /// When the stream ended; `None` while open or when the test stopped it.
    end: Option<Instant>,
    lines: u64,
    /// curl's complaint when it ended.
    error: String,
}

/// c1 keeping one watch open through a VIP, like a client-go reflector: when
/// it ends, a new one is opened at once. Every watch is logged.
struct Watcher {
    stop: Arc<AtomicBool>,
    pid: Arc<Mutex<Option<u32>>>,
    log: Arc<Mutex<Vec<Watched>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    fn start(lab: &Lab, ca: &Path, vip_addr: &str) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let pid = Arc::new(Mutex::new(None));
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut cmd = netns::in_ns(
            lab.ns("c1"),
            &[
                "curl",
                "-sS",
                "-N",
                "--noproxy",
                "*",
                "--connect-timeout",
                "2",
            ],
        );
        cmd.arg("--cacert")
            .arg(ca)
            .arg(format!("{}watch", url(vip_addr)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let thread = {
            let (stop, pid, log) = (stop.clone(), pid.clone(), log.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    watch_once(&mut cmd, &stop, &pid, &log);
                }
            })
        };
        Watcher {
            stop,
            pid,
            log,
            thread: Some(thread),
        }
    }

    /// The node serving the open watch, once its first line is in.
    fn node(&self) -> Option<String> {
        let log = self.log.lock().unwrap();
        log.last().filter(|w| w.end.is_none())?.node.clone()
    }

    fn finish(mut self) -> Vec<Watched> {
        // A watch thread that died (curl could not start) must not pass
        // for a quiet one.
        assert!(self.halt(), "a watch thread panicked");
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    /// Stop watching; false if the thread had panicked.
    fn halt(&mut self) -> bool {
        self.stop.store(true, Ordering::Relaxed);
        // Our own curl, not reaped yet while the pid is set (see watch_once).
        if let Some(pid) = *self.pid.lock().unwrap() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        self.thread.take().is_none_or(|t| t.join().is_ok())
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Already unwinding or finished: only the clean-up matters here.
        let _ = self.halt();
    }
}

fn watch_once(
    cmd: &mut Command,
    stop: &AtomicBool,
    pid: &Mutex<Option<u32>>,
    log: &Mutex<Vec<Watched>>,
) {
    use std::io::{BufRead, Read};
    let start = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => panic!("curl: {e}"),
    };
    *pid.lock().unwrap() = Some(child.id());
    let index = {
        let mut log = log.lock().unwrap();
        log.push(Watched {
            node: None,
            start,
            end: None,
            lines: 0,
            error: String::new(),
        });
        log.len() - 1
    };
    let stdout = child.stdout.take().expect("piped");
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let mut log = log.lock().unwrap();
        let w = &mut log[index];
        w.lines += 1;
        if w.node.is_none() {
            w.node = line
                .strip_prefix("served-by ")
                .and_then(|l| l.split(' ').next())
                .map(str::to_string);
        }
    }
    let end = Instant::now();
    // Cleared before the child is reaped, so a kill never hits a reused pid.
    *pid.lock().unwrap() = None;
    let mut error = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut error);
    }
    let _ = child.wait();
    let mut log = log.lock().unwrap();
    let w = &mut log[index];
    if !stop.load(Ordering::Relaxed) {
        w.end = Some(end);
        w.error = error.trim().to_string();
    }
}

/// curl's ways of saying the server side reset the connection: during
/// the exchange (ECONNRESET), or right after the handshake completed, before
/// curl asked for the peer's address (ENOTCONN: the client's last handshake
/// ACK went to a node that did not know the connection).
fn reset(curl_error: &str) -> bool {
    curl_error.contains("reset by peer")
        || curl_error.contains("getpeername() failed with errno 107")
}

/// When a router's kernel route changed: after `from`, by `to`.
#[derive(Debug, Clone, Copy)]
struct Change {
    router: &'static str,
    from: Instant,
    to: Instant,
}

impl Change {
    fn covers(&self, start: Instant, end: Instant) -> bool {
        start <= self.to && end >= self.from
    }
}

/// The router c1's traffic to `vip_addr` goes through.
fn router_for(vip_addr: &str) -> &'static str {
    if vip_addr == VIP4_ADDR {
        "r1"
    } else {
        "r2"
    }
}

/// Poll (without pause) the routes c1 uses, r1's to the IPv4 VIP and r2's
/// to the IPv6 VIP, until both lead to exactly `want`; return when each
/// changed, as a bracket polling can prove whatever its pace: from the
/// start of the last poll that still saw `old`, the set before the change
/// began at `since` (or `since` itself, if no poll saw it), to the end of
/// the first poll that saw `want`. A route that passes through other sets
/// on the way (a loaded machine polls slowly and sees more of them)
/// changed inside that bracket too. Then the other two routes must follow.
fn path_change(lab: &Lab, old: &[&str], want: &[&str], since: Instant) -> [Change; 2] {
    let watched = [("r1", VIP4), ("r2", VIP6)];
    let mut last_old = [since; 2];
    let mut left_old = [false; 2];
    let mut seen: [Option<Change>; 2] = [None; 2];
    let deadline = Instant::now() + CONVERGE;
    while seen.iter().any(Option::is_none) {
        for (k, (router, prefix)) in watched.iter().enumerate() {
            if seen[k].is_some() {
                continue;
            }
            let asked = Instant::now();
            let got = via(lab, router, prefix);
            if got == want {
                seen[k] = Some(Change {
                    router,
                    from: last_old[k],
                    to: Instant::now(),
                });
                continue;
            }
            if got == old && !left_old[k] {
                last_old[k] = asked;
            } else {
                left_old[k] = true;
            }
            assert!(
                Instant::now() < deadline,
                "{router}: {prefix} leads to {got:?}, expected {want:?}"
            );
        }
    }
    wait_via_one(lab, "r1", VIP6, want);
    wait_via_one(lab, "r2", VIP4, want);
    seen.map(|c| c.expect("loop ends when both are seen"))
}

// ================================================================== tests

/// Watches through `vip_addr` until each node serves at least `per_node`
/// of them (new connections land where the router's hash puts them).
fn watches_on_every_node(s: &Setup, vip_addr: &str, per_node: usize) -> Vec<Watcher> {
    let mut watchers: Vec<Watcher> = Vec::new();
    loop {
        let mut count = BTreeMap::new();
        for w in &watchers {
            *count.entry(w.node().unwrap_or_default()).or_insert(0) += 1;
        }
        if NODES
            .iter()
            .all(|n| count.get(*n).copied().unwrap_or(0) >= per_node)
        {
            eprintln!("watches through {vip_addr}: {count:?}");
            return watchers;
        }
        assert!(
            watchers.len() < 40,
            "40 watches through {vip_addr} and still not {per_node} on every node: {count:?}"
        );
        let w = Watcher::start(&s.lab, &s.pki.ca, vip_addr);
        wait_until(CONVERGE, "the watch's first line", || w.node().is_some());
        watchers.push(w);
    }
}

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
    let vips = [VIP4_ADDR, VIP6_ADDR];
    // Long-lived requests first (two on every node through each router),
    // then short ones back to back.
    let watchers: Vec<(&str, Vec<Watcher>)> = vips
        .iter()
        .map(|v| (*v, watches_on_every_node(&s, v, 2)))
        .collect();
    let c4 = Client::start(&s.lab, &s.pki.ca, VIP4_ADDR);
    let c6 = Client::start(&s.lab, &s.pki.ca, VIP6_ADDR);
    let t0 = Instant::now();
    // Every moment a router changed the ECMP group c1's traffic uses, and
    // when each node was drained.
    let mut changes: Vec<Change> = Vec::new();
    let mut drains: Vec<(&str, Instant, [Change; 2])> = Vec::new();
    let_requests_flow(&[&c4, &c6], 10);
    for (i, &node) in NODES.iter().enumerate() {
        let others: Vec<&str> = NODES.iter().copied().filter(|n| *n != node).collect();
        // n1 and n2 are drained with `anyvip drain` and resumed; n3's
        // anyvip itself gets SIGTERM (a planned stop drains first) and is
        // started again, as for an upgrade of anyvip.
        let by_signal = i == NODES.len() - 1;
        let drained = Instant::now();
        if by_signal {
            assert!(s.lab.signal(s.daemons[i].pid, "TERM"));
        } else {
            cli(&s.sockets[i], &["drain"]);
            assert!(cli(&s.sockets[i], &["status"]).contains("drain"));
        }
        // The drained path is longer (prepends) and has a higher MED, so
        // neither FRR nor BIRD keeps it in the multipath set: it leaves at
        // once, while the node still serves.
        let left = path_change(&s.lab, &NODES, &others, drained);
        for c in &left {
            eprintln!(
                "{node}: drained at {:?}, off {} after {:?}",
                drained - t0,
                c.router,
                c.to - drained
            );
        }
        changes.extend(left);
        drains.push((node, drained, left));
        // After the delay anyvip withdraws (both VIPs; on SIGTERM it then
        // closes the sessions and exits); only then is the apiserver
        // restarted.
        if by_signal {
            let pid = s.daemons[i].pid;
            let exit = wait_for(
                drain_delay + CONVERGE,
                "anyvip to exit after its drain",
                || s.lab.try_wait(pid),
            );
            assert!(exit.success(), "{node}: anyvip stopped with {exit:?}");
        } else {
            wait_until(
                drain_delay + CONVERGE,
                "the withdrawal after the delay",
                || {
                    let status = cli(&s.sockets[i], &["status"]);
                    status.matches("withdrawn").count() >= 2 && !status.contains("draining")
                },
            );
        }
        let withdrawn = drained.elapsed();
        assert!(
            withdrawn >= drain_delay,
            "{node}: withdrawn {withdrawn:?} after the drain, before the delay"
        );
        s.apis[i].kill(&mut s.lab);
        s.apis[i].spawn(&mut s.lab);
        eprintln!("{node}: apiserver restarted, back at {:?}", t0.elapsed());
        let resumed = Instant::now();
        if by_signal {
            let cfg = s.configs[i].clone();
            s.daemons[i] = anyvip(&mut s.lab, node, &cfg);
        } else {
            cli(&s.sockets[i], &["resume"]);
        }
        changes.extend(path_change(&s.lab, &others, &NODES, resumed));
        eprintln!("{node}: restarted and back after {:?}", drained.elapsed());
        let_requests_flow(&[&c4, &c6], 20);
    }
    let at_change = |router: &str, start: Instant, end: Instant| {
        changes
            .iter()
            .any(|c| c.router == router && c.covers(start, end))
    };

    // Short requests. No new connection may reach a node that does not
    // answer: no refused connect, no timeout, ever. What plain
    // hash-threshold ECMP does on the routers (FRR and BIRD alike) is
    // outside anyvip's reach: when a path leaves or joins the group, the
    // hash ranges of the *other* next hops move too, so a connection in
    // flight at that instant can land on a node without its socket and be
    // reset. Only those (in flight while that very router changed its
    // group) are counted apart; anything else fails the test.
    let mut failed = Vec::new();
    let mut resets = Vec::new();
    for (c, vip_addr) in [(c4, VIP4_ADDR), (c6, VIP6_ADDR)] {
        let what = c.what.clone();
        let router = router_for(vip_addr);
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
            if at_change(router, r.start, r.end) && reset(e) {
                resets.push(line);
            } else {
                failed.push(line);
            }
        }
    }
    eprintln!(
        "short requests reset while their router changed its ECMP group: {}: {resets:#?}",
        resets.len()
    );
    assert!(failed.is_empty(), "failed requests: {failed:#?}");

    // Long-lived requests. anyvip never ends one: a watch ends only when
    // its router moves it (the same rehash; the next segment from c1 then
    // reaches a node without the connection and is reset); one the router
    // leaves alone outlives the drain, the withdrawal and the restart.
    // Moved means "ended within a second of the change": the stream sends
    // a line every 100 ms, each acknowledged by c1.
    let slack = Duration::from_secs(1);
    let mut early = Vec::new();
    let mut moved = BTreeMap::new();
    let mut drained_watches = BTreeMap::new();
    for (vip_addr, ws) in watchers {
        let router = router_for(vip_addr);
        let all: Vec<Watched> = ws.into_iter().flat_map(Watcher::finish).collect();
        let ended: Vec<&Watched> = all.iter().filter(|w| w.end.is_some()).collect();
        eprintln!(
            "watches through {vip_addr} ({router}): {} opened, {} ended",
            all.len(),
            ended.len()
        );
        for w in &ended {
            let end = w.end.expect("filtered");
            let moved_now = changes
                .iter()
                .any(|c| c.router == router && end >= c.from && end <= c.to + slack);
            if moved_now {
                *moved.entry(router).or_insert(0) += 1;
            } else {
                early.push(format!(
                    "{vip_addr}: watch on {:?} from {:?} ended at {:?} after {} lines, not at a change of {router}: {}",
                    w.node,
                    w.start.saturating_duration_since(t0),
                    end.saturating_duration_since(t0),
                    w.lines,
                    w.error
                ));
            }
        }
        // On the drained node: open until that router moved the path, not
        // before (anyvip keeps serving them through the drain).
        for (node, drained, left) in &drains {
            let Some(change) = left.iter().find(|c| c.router == router) else {
                continue;
            };
            for w in all.iter().filter(|w| {
                w.node.as_deref() == Some(node)
                    && w.start < *drained
                    && w.end.is_none_or(|e| e > *drained)
            }) {
                let end = w.end.expect("a watch on a withdrawn node cannot go on");
                let held = end - *drained;
                drained_watches
                    .entry(router)
                    .or_insert_with(Vec::new)
                    .push(held);
                assert!(
                    end >= change.from,
                    "{vip_addr}: watch on drained {node} ended {held:?} after the drain, before {router} moved the path"
                );
            }
        }
    }
    let on_others: BTreeMap<&str, usize> = moved
        .iter()
        .map(|(r, n)| (*r, n - drained_watches.get(r).map_or(0, Vec::len)))
        .collect();
    eprintln!(
        "watches reset by their router's ECMP change: {moved:?}, of which on nodes that were not being drained: {on_others:?}"
    );
    eprintln!(
        "watches on the drained node, open for after the drain: {drained_watches:?} \
         (until their router dropped the drained path from its multipath set)"
    );
    assert!(early.is_empty(), "watches ended otherwise: {early:#?}");
    for r in ROUTERS {
        assert!(
            drained_watches.get(r).is_some_and(|v| !v.is_empty()),
            "no watch through {r} was on a node when it was drained"
        );
    }
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
