//! The lab: `containerlab/anyvip.clab.yml` built with `ip netns` + veth, no Docker.
//!
//! ```ignore
//! mod lab;
//! use lab::{Lab, wait_until};
//!
//! #[test]
//! fn something() {
//!     if !lab::require_root("something") { return; }
//!     let mut lab = Lab::start();                 // namespaces, links, exec, FRR, BIRD
//!     let conf = lab.host_path("n1", "/etc/anyvip/anyvip.toml");
//!     let mut anyvip = std::process::Command::new(env!("CARGO_BIN_EXE_anyvip"));
//!     anyvip.arg("run").arg("-c").arg(conf);
//!     lab.spawn("n1", anyvip);                    // runs in n1's namespace, killed at drop
//!     wait_until(Duration::from_secs(30), "VIP on r1", || {
//!         lab.kernel_routes("r1", "10.201.255.1/32").len() == 1
//!     });
//! }                                               // drop: everything is gone, also on panic
//! ```
//!
//! How the file is read (see `topology.rs`): every node becomes a namespace
//! `av<pid>x<n>-<node>` (unique per lab instance and test process); every link a veth pair
//! created directly inside the two namespaces under its final names (`eth1`, ...), so no
//! name is ever taken in the root namespace; `lo` and the link ends are set up (as
//! containerlab does); each `exec:` line runs as argv in the node's namespace; each
//! `binds:` file is copied to `<lab dir>/<node>/<container path>` (see [`Lab::host_path`]).
//! The `anyvip.role` label picks what is started: `frr` gets FRR with the files bound
//! under `/etc/frr/` (pathspace `av<pid>x<n>`), `bird` gets BIRD with the file bound at
//! `/etc/bird/bird.conf`; nodes and clients run nothing until a test spawns something.
//!
//! Teardown (`Drop`, which also runs when a test panics): spawned processes, BIRD and FRR
//! are stopped by pid (FRR: all its daemons from its pid files at once; `frr_stop` uses
//! `frrinit.sh stop`), whatever else still runs in a lab namespace is killed by pid, the
//! namespaces are deleted, `/etc/frr/<id>`, `/var/run/frr/<id>` and the lab dir removed.
//! Leftovers of crashed runs (owner pid dead) are removed when the next lab starts.
#![allow(dead_code)]

pub mod bird;
pub mod frr;
pub mod netns;
pub mod topology;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use topology::{Role, Topology};

/// Temp dir of a lab: `<tmp>/anyvip-lab-<id>`.
pub const TMP_PREFIX: &str = "anyvip-lab-";

static COUNTER: AtomicU32 = AtomicU32::new(0);
static STALE: std::sync::Once = std::sync::Once::new();

/// True when root. Otherwise prints a loud skip notice and returns false: lab tests
/// `return` then (CI runs as root, so there they always run).
pub fn require_root(test: &str) -> bool {
    if netns::is_root() {
        return true;
    }
    eprintln!(
        "\n!!!!!!!! SKIPPED {test}: the lab needs root (network namespaces, FRR, BIRD). \
         Run `cargo test --test lab_harness` as root; CI does. !!!!!!!!\n"
    );
    false
}

/// Poll `cond` (every 50 ms) until true; panic naming `what` after `timeout`.
/// Returns how long it took. Use this for every readiness wait, never a fixed sleep.
pub fn wait_until(timeout: Duration, what: &str, cond: impl FnMut() -> bool) -> Duration {
    try_wait_until(timeout, what, cond).unwrap_or_else(|e| panic!("{e}"))
}

/// [`wait_until`] returning the value `f` produced.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let mut got = None;
    wait_until(timeout, what, || {
        got = f();
        got.is_some()
    });
    got.expect("set when wait_until returned")
}

/// [`wait_until`] that returns Err instead of panicking.
pub fn try_wait_until(
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
) -> Result<Duration, String> {
    let start = Instant::now();
    let deadline = start + timeout;
    loop {
        if cond() {
            return Ok(start.elapsed());
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Which routers [`Lab::start_with`] starts (each can also be started later).
#[derive(Debug, Clone)]
pub struct Options {
    pub topology: PathBuf,
    pub frr: bool,
    pub bird: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            topology: Topology::default_path(),
            frr: true,
            bird: true,
        }
    }
}

/// A process started with [`Lab::spawn`].
#[derive(Debug, Clone)]
pub struct Spawned {
    pub pid: u32,
    /// stdout and stderr of the process.
    pub log: PathBuf,
}

/// One next hop of a kernel route.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NextHop {
    pub gateway: Option<IpAddr>,
    pub dev: String,
}

pub struct Lab {
    id: String,
    topo: Topology,
    dir: PathBuf,
    /// Namespaces created so far (node name, namespace name).
    namespaces: Vec<(String, String)>,
    frr: Option<frr::Frr>,
    bird: Option<bird::Bird>,
    children: Vec<(Child, Spawned)>,
    /// How many processes were spawned so far (names their log files).
    spawned: usize,
}

impl Lab {
    /// The topology from `containerlab/anyvip.clab.yml` with FRR and BIRD running.
    pub fn start() -> Lab {
        Lab::start_with(Options::default())
    }

    /// Panics if anything fails; what was built by then is torn down by `Drop`.
    pub fn start_with(opts: Options) -> Lab {
        assert!(
            netns::is_root(),
            "the lab needs root: call lab::require_root first"
        );
        STALE.call_once(netns::remove_stale);
        let topo = Topology::load(&opts.topology).unwrap_or_else(|e| panic!("{e}"));
        let id = format!(
            "{}{}x{}",
            netns::PREFIX,
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let dir = std::env::temp_dir().join(format!("{TMP_PREFIX}{id}"));
        let mut lab = Lab {
            id,
            topo,
            dir,
            namespaces: Vec::new(),
            frr: None,
            bird: None,
            children: Vec::new(),
            spawned: 0,
        };
        if let Err(e) = lab.build(&opts) {
            panic!("lab {}: {e}", lab.id);
        }
        lab
    }

    fn build(&mut self, opts: &Options) -> Result<(), String> {
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir)
                .map_err(|e| format!("{}: {e}", self.dir.display()))?;
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let nodes: Vec<String> = self.topo.nodes.keys().cloned().collect();
        for node in &nodes {
            let ns = format!("{}-{node}", self.id);
            netns::ip(&["netns", "add", &ns])?;
            self.namespaces.push((node.clone(), ns.clone()));
            netns::ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        for link in self.topo.links.clone() {
            let (a, b) = (
                self.ns(&link.a.node).to_string(),
                self.ns(&link.b.node).to_string(),
            );
            let (ia, ib) = (link.a.iface.as_str(), link.b.iface.as_str());
            netns::ip(&[
                "-n", &a, "link", "add", ia, "type", "veth", "peer", "name", ib, "netns", &b,
            ])?;
            netns::ip(&["-n", &a, "link", "set", ia, "up"])?;
            netns::ip(&["-n", &b, "link", "set", ib, "up"])?;
        }
        for node in &nodes {
            self.materialize_binds(node)?;
        }
        for node in &nodes {
            let ns = self.ns(node).to_string();
            for argv in self.topo.nodes[node].exec.clone() {
                netns::run(&mut netns::in_ns(&ns, &argv))
                    .map_err(|e| format!("{node} exec: {e}"))?;
            }
        }
        let frrs = self.topo.with_role(Role::Frr);
        match frrs.as_slice() {
            [] => {}
            [r] => {
                let r = r.to_string();
                let f = frr::Frr::new(
                    &self.id,
                    self.ns(&r),
                    self.dir.join(format!("{r}-frrinit.log")),
                );
                let files = self.topo.nodes[&r]
                    .binds
                    .iter()
                    .filter_map(|b| {
                        let rel = b.container.strip_prefix("/etc/frr").ok()?;
                        Some((
                            self.host_path(&r, &b.container),
                            rel.to_string_lossy().into_owned(),
                        ))
                    })
                    .collect::<Vec<_>>();
                // set before install so teardown removes whatever install created
                self.frr = Some(f);
                self.frr.as_ref().expect("just set").install(&files)?;
                if opts.frr {
                    self.frr.as_mut().expect("just set").start()?;
                }
            }
            more => return Err(format!("one FRR router supported, got {more:?}")),
        }
        let birds = self.topo.with_role(Role::Bird);
        match birds.as_slice() {
            [] => {}
            [r] => {
                let r = r.to_string();
                let conf = self.host_path(&r, "/etc/bird/bird.conf");
                if !conf.exists() {
                    return Err(format!("{r}: bind a BIRD config to /etc/bird/bird.conf"));
                }
                self.bird = Some(bird::Bird::new(self.ns(&r), conf, &self.dir, &r));
                if opts.bird {
                    self.bird.as_mut().expect("just set").start()?;
                }
            }
            more => return Err(format!("one BIRD router supported, got {more:?}")),
        }
        Ok(())
    }

    /// Copy each bound file or directory to `<lab dir>/<node>/<container path>`.
    fn materialize_binds(&self, node: &str) -> Result<(), String> {
        for b in &self.topo.nodes[node].binds {
            let dst = self.host_path(node, &b.container);
            copy_tree(&b.host, &dst)
                .map_err(|e| format!("{node}: bind {}: {e}", b.host.display()))?;
        }
        Ok(())
    }

    /// Lab id (`av<pid>x<n>`): namespace prefix and FRR pathspace.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn topology(&self) -> &Topology {
        &self.topo
    }

    /// The lab's temp dir (bound files, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Namespace of `node`. Panics for an unknown node.
    pub fn ns(&self, node: &str) -> &str {
        self.namespaces
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, ns)| ns.as_str())
            .unwrap_or_else(|| panic!("lab {}: no node {node:?}", self.id))
    }

    /// All namespaces of this lab.
    pub fn namespaces(&self) -> Vec<String> {
        self.namespaces.iter().map(|(_, ns)| ns.clone()).collect()
    }

    /// Where the file bound at `container_path` in `node` lives on the host (a per-lab
    /// copy, so a test may edit it). Paths under a bound directory work too.
    pub fn host_path(&self, node: &str, container_path: impl AsRef<Path>) -> PathBuf {
        let rel = container_path
            .as_ref()
            .strip_prefix("/")
            .unwrap_or(container_path.as_ref());
        self.dir.join(node).join(rel)
    }

    /// Run `argv` in `node`'s namespace and wait; never panics on a failing command.
    pub fn exec(&self, node: &str, argv: &[&str]) -> Output {
        let mut cmd = netns::in_ns(self.ns(node), argv);
        cmd.output()
            .unwrap_or_else(|e| panic!("{}: {e}", netns::show(&cmd)))
    }

    /// [`Lab::exec`] that panics unless the command succeeds; returns stdout.
    pub fn exec_ok(&self, node: &str, argv: &[&str]) -> String {
        let out =
            netns::run(&mut netns::in_ns(self.ns(node), argv)).unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Start `cmd` (program, args, env, cwd are taken from it) in `node`'s namespace,
    /// stdout+stderr to `<lab dir>/<node>-<program>-<n>.log`. Tracked by pid: stopped
    /// (SIGTERM, then SIGKILL) and reaped at teardown.
    pub fn spawn(&mut self, node: &str, cmd: Command) -> Spawned {
        let program = Path::new(cmd.get_program())
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp_log = self
            .dir
            .join(format!("{node}-{program}-{}.log", self.spawned));
        self.spawned += 1;
        let log = std::fs::File::create(&tmp_log)
            .unwrap_or_else(|e| panic!("{}: {e}", tmp_log.display()));
        let err = log.try_clone().expect("clone log fd");
        let mut run = netns::in_ns(self.ns(node), &[cmd.get_program()]);
        run.args(cmd.get_args())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => run.env(k, v),
                None => run.env_remove(k),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            run.current_dir(d);
        }
        let child = run
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", netns::show(&run)));
        let spawned = Spawned {
            pid: child.id(),
            log: tmp_log,
        };
        self.children.push((child, spawned.clone()));
        spawned
    }

    /// Send a signal (`"TERM"`, `"KILL"`, `"STOP"`, `"HUP"`, ...) to a process this lab
    /// spawned. Panics for any other pid.
    pub fn signal(&self, pid: u32, sig: &str) -> bool {
        assert!(
            self.children.iter().any(|(_, s)| s.pid == pid),
            "pid {pid} was not spawned by lab {}",
            self.id
        );
        netns::signal(pid, sig)
    }

    /// SIGTERM a spawned process, SIGKILL after `grace`; reap it and return its status.
    pub fn stop(&mut self, pid: u32, grace: Duration) -> Option<ExitStatus> {
        let i = self.children.iter().position(|(_, s)| s.pid == pid)?;
        let (child, _) = self.children.remove(i);
        stop_child(child, grace)
    }

    /// `Some(status)` once a spawned process has exited (it stays tracked).
    pub fn try_wait(&mut self, pid: u32) -> Option<ExitStatus> {
        let (child, _) = self.children.iter_mut().find(|(_, s)| s.pid == pid)?;
        child.try_wait().ok().flatten()
    }

    fn frr(&self) -> &frr::Frr {
        self.frr
            .as_ref()
            .unwrap_or_else(|| panic!("lab {}: the topology has no FRR router", self.id))
    }

    /// `vtysh -c <cmd>` on the FRR router; panics if it fails.
    pub fn vtysh(&self, cmd: &str) -> String {
        self.frr().vtysh(&[cmd]).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `vtysh -c <cmd>` (a `... json` command) parsed.
    pub fn vtysh_json(&self, cmd: &str) -> serde_json::Value {
        let out = self.vtysh(cmd);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("vtysh {cmd:?}: not JSON ({e}): {out}"))
    }

    /// Several commands in one vtysh run, e.g. `["configure terminal", "router bgp 65000",
    /// "neighbor 10.201.1.2 password x"]`.
    pub fn vtysh_lines(&self, cmds: &[&str]) -> String {
        self.frr().vtysh(cmds).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Stop FRR (`frrinit.sh stop`); [`Lab::frr_start`] brings it back with the same config.
    pub fn frr_stop(&mut self) {
        let f = self.frr.as_mut().expect("no FRR router");
        f.stop().unwrap_or_else(|e| panic!("{e}"));
    }

    pub fn frr_start(&mut self) {
        let f = self.frr.as_mut().expect("no FRR router");
        if !f.is_running() {
            f.start().unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// FRR's config dir `/etc/frr/<id>/` (edit `frr.conf` there, then restart).
    pub fn frr_conf_dir(&self) -> PathBuf {
        self.frr().conf_dir()
    }

    fn bird(&self) -> &bird::Bird {
        self.bird
            .as_ref()
            .unwrap_or_else(|| panic!("lab {}: the topology has no BIRD router", self.id))
    }

    /// `birdc <cmd>` on the BIRD router; panics if it fails.
    pub fn birdc(&self, cmd: &str) -> String {
        self.bird().birdc(cmd).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn bird_stop(&mut self) {
        self.bird.as_mut().expect("no BIRD router").stop();
    }

    pub fn bird_start(&mut self) {
        let b = self.bird.as_mut().expect("no BIRD router");
        if !b.is_running() {
            b.start().unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// BIRD's config file (the lab's copy; `birdc configure` re-reads it).
    pub fn bird_conf(&self) -> PathBuf {
        self.bird().conf.clone()
    }

    /// Pids of every process of this lab: FRR's daemons, BIRD, spawned processes and
    /// anything else running in a lab namespace.
    pub fn pids(&mut self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.children.iter().map(|(_, s)| s.pid).collect();
        if let Some(f) = self.frr.as_mut() {
            pids.extend(f.pids());
        }
        if let Some(p) = self.bird.as_ref().and_then(bird::Bird::pid) {
            pids.push(p);
        }
        for (_, ns) in &self.namespaces {
            pids.extend(netns::pids(ns));
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Directories this lab owns (all removed at teardown).
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut d = vec![self.dir.clone()];
        if let Some(f) = &self.frr {
            d.extend([f.conf_dir(), f.run_dir()]);
        }
        d
    }

    /// Global addresses on `node`'s `iface`.
    pub fn addrs(&self, node: &str, iface: &str) -> Vec<IpAddr> {
        let out = self.exec_ok(node, &["ip", "-j", "addr", "show", "dev", iface]);
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j addr: {e}: {out}"));
        v.as_array()
            .into_iter()
            .flatten()
            .flat_map(|link| link["addr_info"].as_array().cloned().unwrap_or_default())
            .filter(|a| a["scope"] == "global")
            .filter_map(|a| a["local"].as_str()?.parse().ok())
            .collect()
    }

    /// Next hops of the route to exactly `prefix` in `node`'s main table (`ip -j route
    /// show exact`); a multipath route gives one entry per `nexthops` member. Sorted.
    pub fn kernel_routes(&self, node: &str, prefix: &str) -> Vec<NextHop> {
        let family = if prefix.contains(':') { "-6" } else { "-4" };
        let out = self.exec_ok(
            node,
            &["ip", family, "-j", "route", "show", "exact", prefix],
        );
        let v: serde_json::Value =
            serde_json::from_str(if out.trim().is_empty() { "[]" } else { &out })
                .unwrap_or_else(|e| panic!("ip -j route: {e}: {out}"));
        let hop = |h: &serde_json::Value| NextHop {
            gateway: h["gateway"].as_str().and_then(|g| g.parse().ok()),
            dev: h["dev"].as_str().unwrap_or_default().to_string(),
        };
        let mut hops: Vec<NextHop> = v
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| match r["nexthops"].as_array() {
                Some(nh) => nh.iter().map(hop).collect::<Vec<_>>(),
                None => vec![hop(r)],
            })
            .collect();
        hops.sort();
        hops
    }

    /// Tear down now (what `Drop` does); safe to call twice.
    pub fn teardown(&mut self) {
        let mut errors = Vec::new();
        for (child, _) in std::mem::take(&mut self.children) {
            stop_child(child, Duration::from_secs(3));
        }
        if let Some(b) = self.bird.as_mut() {
            b.stop();
        }
        if let Some(f) = self.frr.as_mut() {
            f.kill_all();
        }
        for (_, ns) in std::mem::take(&mut self.namespaces) {
            if netns::exists(&ns) {
                if let Err(e) = netns::destroy(&ns) {
                    errors.push(e);
                }
            }
        }
        if let Some(f) = self.frr.take() {
            if let Err(e) = f.remove_dirs() {
                errors.push(e);
            }
        }
        self.bird = None;
        if self.dir.exists() {
            if let Err(e) = std::fs::remove_dir_all(&self.dir) {
                errors.push(format!("{}: {e}", self.dir.display()));
            }
        }
        for e in errors {
            eprintln!("lab {} teardown: {e}", self.id);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// SIGTERM, SIGKILL after `grace`, reap. Never panics (runs in `Drop`).
fn stop_child(mut child: Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    netns::signal(child.id(), "TERM");
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().ok()
}

fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if src.is_dir() {
        std::fs::create_dir_all(dst)?;
        for e in std::fs::read_dir(src)? {
            let e = e?;
            copy_tree(&e.path(), &dst.join(e.file_name()))?;
        }
        Ok(())
    } else {
        std::fs::copy(src, dst).map(|_| ())
    }
}
