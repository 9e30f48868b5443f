//! The soak and fault run (`--soak`): the demo's lab (FRR r1, BIRD r2,
//! nodes n1-n3 with the stand-in apiserver and anyvip) put through many
//! faults in a row, with the state checked at checkpoints all along:
//!
//! 1. n2's apiserver flaps (down, then up) with fast checks on n2 (50 ms,
//!    rise 1, fall 1); each half waits until n2's anyvip shows the VIP
//!    withdrawn / announced. Checkpoints every `--checkpoint-every` flaps,
//!    once with n2 down and once with it up.
//! 2. FRR (r1) stopped and started; 3. BIRD (r2) stopped and started.
//! 4. Reloads on n1, alternating a valid change (a second VIP added or
//!    removed; every other one by SIGHUP, the rest by `anyvip reload`) and
//!    an invalid file (syntax, a bad value, an unknown check, a change that
//!    needs a restart), which must be refused with the running config kept.
//! 5. BFD flaps: BFD at 100 ms x 3 on n2 and both routers, then n2 frozen
//!    (nftables drops all its traffic) until both routers drop its path,
//!    then thawed until the path is back.
//! 6. anyvip `kill -9` and started again, on n1, n2 and n3 in turn; every
//!    other time the apiserver goes down while anyvip is dead, so the new
//!    anyvip finds the old one's VIP address and table and must take the
//!    address away (a stale address would make the node answer for a VIP
//!    it does not announce), then the apiserver comes back.
//! 7. Every anyvip stopped with SIGTERM: each exits 0; no VIP address and
//!    no route is left, and the table holds only the loop guard.
//!
//! Every checkpoint checks: both routers' ECMP group for each VIP is
//! exactly the healthy nodes; a node has a VIP address on `lo` exactly
//! when it should; every running anyvip has its `inet anyvip` table and no
//! node has another table left; no anyvip died. It samples each anyvip's
//! RSS, private dirty memory and open fds. At the end: no VIP address
//! and no route left, and only the loop guard in the table; the anyvip logs have no panic and no ERROR line except one
//! "reload refused" per invalid reload. A check that fails is recorded
//! (the run goes on) and makes the exit status non-zero; the table at the
//! end says what was done and what held.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use super::bench::{anyvip_cli, freeze, thaw, FREEZE_TABLE};
use super::{
    interrupted, sleep, spawn_anyvip, status, via_prefix, Demo, Result, NODES, ROUTERS, STOPPED,
    VIP, VIP_ADDR,
};

/// The node whose apiserver flaps and which gets BFD.
const FLAPPER: &str = "n2";
/// The node that is reloaded.
const RELOADED: &str = "n1";
/// The second VIP the valid reloads add and remove (on n1 only).
const VIP2: &str = "10.201.255.2/32";
const VIP2_ADDR: &str = "10.201.255.2";
/// One flap's half (a status change of one anyvip) takes well under this.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// A phase gives up after this many failed steps (the rest would only
/// repeat the finding).
const MAX_FAILURES_PER_PHASE: usize = 5;

/// How many of each fault (`--soak` defaults are the issue's).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counts {
    pub flaps: u32,
    pub restarts: u32,
    pub kills: u32,
    pub reloads: u32,
    pub bfd_flaps: u32,
    pub checkpoint_every: u32,
}

/// One line of the table.
struct Step {
    what: String,
    planned: u32,
    done: u32,
    checks: u32,
    held: u32,
    note: String,
}

/// first / max / last of a sampled value.
#[derive(Default, Clone, Copy)]
struct Span {
    first: Option<u64>,
    max: u64,
    last: u64,
}

impl Span {
    fn add(&mut self, v: u64) {
        self.first.get_or_insert(v);
        self.max = self.max.max(v);
        self.last = v;
    }
}

#[derive(Default)]
struct NodeSamples {
    /// Over every anyvip the node ran.
    rss_kb: Span,
    fds: Span,
    /// The first anyvip's, until it was killed: the one that lived through
    /// the flaps and the router restarts, where a leak would show.
    first_life: Option<(Span, Span, u32)>,
    samples: u32,
    starts: u32,
    /// The last RSS and private dirty memory (the heap, mostly) seen.
    now_kb: (u64, u64),
    /// The first anyvip's (RSS, private dirty) after each phase it lived
    /// through: a plateau is warm-up, a steady climb a leak.
    by_phase: Vec<(&'static str, u64, u64)>,
}

impl NodeSamples {
    fn first_life(&self) -> (Span, Span, u32) {
        self.first_life
            .unwrap_or((self.rss_kb, self.fds, self.samples))
    }

    fn restarted(&mut self) {
        if self.first_life.is_none() {
            self.first_life = Some((self.rss_kb, self.fds, self.samples));
        }
        self.starts += 1;
    }
}

struct Soak<'d, 'a> {
    d: &'d mut Demo<'a>,
    counts: Counts,
    steps: Vec<Step>,
    failures: Vec<String>,
    samples: BTreeMap<&'static str, NodeSamples>,
    /// Which nodes' apiservers are down (the others are up).
    down: Vec<&'static str>,
    /// The second VIP is in n1's running configuration.
    vip2: bool,
    /// Invalid reloads done: each must log exactly one "reload refused".
    refused: usize,
    checkpoints: u32,
    /// WARN lines of every anyvip log, by message.
    warnings: BTreeMap<String, usize>,
    started: Instant,
}

/// `--soak`: the run, then its table. Err only when it could not run at
/// all (or was interrupted); a check that failed is in the table and in
/// the returned error's text.
pub(crate) fn soak(d: &mut Demo, counts: Counts) -> Result<String> {
    let mut s = Soak {
        d,
        counts,
        steps: Vec::new(),
        failures: Vec::new(),
        samples: BTreeMap::new(),
        down: Vec::new(),
        vip2: false,
        refused: 0,
        checkpoints: 0,
        warnings: BTreeMap::new(),
        started: Instant::now(),
    };
    for n in NODES {
        s.samples.entry(n).or_default().starts = 1;
    }
    s.setup()?;
    s.mark_phase("start");
    s.phase("flaps", |s| s.flaps())?;
    s.phase("FRR restarts", |s| s.router_restarts(0))?;
    s.phase("BIRD restarts", |s| s.router_restarts(1))?;
    // Kills come last: until then each node's first anyvip lives through
    // every phase, and its memory after each shows warm-up or a leak.
    s.phase("reloads", |s| s.reloads())?;
    s.phase("BFD flaps", |s| s.bfd_flaps())?;
    s.phase("kills", |s| s.kills())?;
    s.phase("stop", |s| s.stop_all())?;
    s.logs();
    let table = s.table();
    if s.failures.is_empty() {
        Ok(table)
    } else {
        Err(format!(
            "{table}\nsoak: {} check(s) failed",
            s.failures.len()
        ))
    }
}

impl Soak<'_, '_> {
    fn phase(&mut self, name: &'static str, f: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        println!(
            "== {name}  (t={:.0}s)",
            self.started.elapsed().as_secs_f64()
        );
        f(self)?;
        self.mark_phase(name);
        Ok(())
    }

    /// Note where each first anyvip stands after a phase.
    fn mark_phase(&mut self, name: &'static str) {
        for node in NODES {
            let first = self
                .samples
                .get(node)
                .is_some_and(|x| x.first_life.is_none());
            let pid = self.d.node(node).anyvip_pid;
            // (a stopped anyvip is no longer tracked by the lab: /proc says)
            let alive = Path::new(&format!("/proc/{pid}/status")).exists();
            if first && alive && self.d.lab.try_wait(pid).is_none() {
                self.sample(node, pid);
                let e = self.samples.entry(node).or_default();
                let (rss, dirty) = e.now_kb;
                e.by_phase.push((name, rss, dirty));
            }
        }
    }

    // ----------------------------------------------------------- setup

    /// Fast checks on the flapper, a 1 s connect retry everywhere (router
    /// restarts are followed sooner), applied by reload; then the first
    /// checkpoint.
    fn setup(&mut self) -> Result<()> {
        for i in 0..self.d.nodes.len() {
            let (name, config, socket) = {
                let n = &self.d.nodes[i];
                (n.name, n.config.clone(), n.socket.clone())
            };
            let mut text = read(&config)?;
            text = text.replace("\nfamilies = [", "\nconnect_retry = \"1s\"\nfamilies = [");
            if name == FLAPPER {
                let slow = "interval = \"200ms\"\ntimeout = \"150ms\"\nrise = 3\nfall = 2";
                if !text.contains(slow) {
                    return Err(format!(
                        "{}: no check settings to speed up",
                        config.display()
                    ));
                }
                text = text.replace(
                    slow,
                    "interval = \"50ms\"\ntimeout = \"45ms\"\nrise = 1\nfall = 1",
                );
            }
            write(&config, &text)?;
            // Demo::new started anyvip; its control socket may not be up yet.
            let anyvip = self.d.bins.anyvip.clone();
            netlab_wait(super::CONVERGE, || status(&anyvip, &socket).is_ok()).map_err(|_| {
                format!(
                    "{name}'s anyvip did not answer on {} within {:?}",
                    socket.display(),
                    super::CONVERGE
                )
            })?;
            anyvip_cli(&self.d.bins.anyvip, &socket, &["reload"])?;
        }
        println!(
            "lab {} up; soak counts: {} flaps, {} restarts of each router, {} kills, {} reloads, {} BFD flaps",
            self.d.lab.id(),
            self.counts.flaps,
            self.counts.restarts,
            self.counts.kills,
            self.counts.reloads,
            self.counts.bfd_flaps
        );
        let ok = self.checkpoint("start");
        if !ok {
            return Err(format!(
                "the lab did not reach its first checkpoint: {}",
                self.failures.join("; ")
            ));
        }
        Ok(())
    }

    // ----------------------------------------------------------- checks

    fn fail(&mut self, what: String) {
        println!("  FAILED: {what}");
        self.failures.push(what);
    }

    /// The nodes that should carry the VIP: anyvip running (always, at a
    /// checkpoint) and the apiserver up.
    fn healthy(&self) -> Vec<String> {
        NODES
            .iter()
            .filter(|n| !self.down.contains(n))
            .map(|n| n.to_string())
            .collect()
    }

    /// Check everything; false (and recorded failures) if something did
    /// not hold within the convergence deadline.
    fn checkpoint(&mut self, label: &str) -> bool {
        self.checkpoints += 1;
        let before = self.failures.len();
        let want = self.healthy();
        let want2: Vec<String> = if self.vip2 {
            vec![RELOADED.to_string()]
        } else {
            Vec::new()
        };
        // Routers: the ECMP groups (they follow BGP, so wait for them).
        let lab = &*self.d.lab;
        let groups = netlab_wait(super::CONVERGE, || {
            ROUTERS
                .iter()
                .all(|(r, _)| via_prefix(lab, r, VIP) == want && via_prefix(lab, r, VIP2) == want2)
        });
        if groups.is_err() {
            let seen: Vec<String> = ROUTERS
                .iter()
                .map(|(r, name)| {
                    format!(
                        "{name} {VIP} via {:?}, {VIP2} via {:?}",
                        via_prefix(lab, r, VIP),
                        via_prefix(lab, r, VIP2)
                    )
                })
                .collect();
            self.fail(format!(
                "{label}: ECMP groups should be {want:?} (and {want2:?} for {VIP2}); after {:?}: {}",
                super::CONVERGE,
                seen.join("; ")
            ));
        }
        // Nodes: the VIP addresses on lo (removed only after the withdrawal
        // reached every peer, so also waited for), the tables, the process.
        for node in NODES {
            let vip2 = self.vip2;
            let should = |addr: &str| {
                if addr == VIP_ADDR {
                    want.iter().any(|n| n == node)
                } else {
                    vip2 && node == RELOADED
                }
            };
            let lab = &*self.d.lab;
            let addrs_ok = || {
                let have = lab.addrs(node, "lo");
                [VIP_ADDR, VIP2_ADDR].iter().all(|a| {
                    let present = have.iter().any(|h| h.to_string() == *a);
                    present == should(a)
                })
            };
            if netlab_wait(Duration::from_secs(10), addrs_ok).is_err() {
                let have = lab.addrs(node, "lo");
                let (a, b) = (should(VIP_ADDR), should(VIP2_ADDR));
                self.fail(format!(
                    "{label}: {node}'s lo has {have:?}; {VIP_ADDR} should be there: {a}, {VIP2_ADDR}: {b}"
                ));
            }
            let tables = tables(self.d.lab, node);
            if tables != ["inet anyvip"] {
                self.fail(format!(
                    "{label}: {node} has nftables tables {tables:?}; only inet anyvip belongs there"
                ));
            }
            let pid = self.d.node(node).anyvip_pid;
            if let Some(st) = self.d.lab.try_wait(pid) {
                self.fail(format!("{label}: {node}'s anyvip (pid {pid}) died: {st}"));
            } else {
                self.sample(node, pid);
            }
        }
        self.failures.len() == before
    }

    fn sample(&mut self, node: &'static str, pid: u32) {
        let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            });
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .ok()
            .map(|d| d.count() as u64);
        let dirty = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Private_Dirty:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            });
        let e = self.samples.entry(node).or_default();
        e.samples += 1;
        e.now_kb = (rss.unwrap_or(0), dirty.unwrap_or(0));
        if let Some(v) = rss {
            e.rss_kb.add(v);
        }
        if let Some(v) = fds {
            e.fds.add(v);
        }
    }

    /// Until the node's anyvip reports the VIP in `mode`.
    fn wait_mode(&mut self, node: &str, mode: &str) -> Result<Duration> {
        let socket = self.d.node(node).socket.clone();
        let start = Instant::now();
        loop {
            let st = status(&self.d.bins.anyvip, &socket);
            let now = st.as_ref().ok().and_then(|v| {
                v["vips"]
                    .as_array()?
                    .iter()
                    .find(|x| x["prefix"] == VIP)
                    .and_then(|x| x["mode"].as_str().map(str::to_string))
            });
            if now.as_deref() == Some(mode) {
                return Ok(start.elapsed());
            }
            if start.elapsed() > STEP_TIMEOUT {
                return Err(format!(
                    "{node}'s anyvip did not show the VIP {mode} within {STEP_TIMEOUT:?} (it shows {now:?})"
                ));
            }
            if interrupted() {
                return Err(STOPPED.into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn set_apiserver(&mut self, node: &'static str, up: bool) -> Result<()> {
        self.d.node(node).set(if up { "ok" } else { "down" })?;
        self.down.retain(|n| *n != node);
        if !up {
            self.down.push(node);
        }
        Ok(())
    }

    fn step(&mut self, what: String, planned: u32) -> usize {
        self.steps.push(Step {
            what,
            planned,
            done: 0,
            checks: 0,
            held: 0,
            note: String::new(),
        });
        self.steps.len() - 1
    }

    /// A checkpoint counted in step `i`.
    fn check_in(&mut self, i: usize, label: &str) {
        let ok = self.checkpoint(label);
        if let Some(s) = self.steps.get_mut(i) {
            s.checks += 1;
            s.held += u32::from(ok);
        }
    }

    fn done(&mut self, i: usize) {
        if let Some(s) = self.steps.get_mut(i) {
            s.done += 1;
        }
    }

    fn note(&mut self, i: usize, note: String) {
        if let Some(s) = self.steps.get_mut(i) {
            s.note = note;
        }
    }

    /// A failed step: recorded; true when the phase should give up.
    fn step_failed(&mut self, i: usize, e: String) -> Result<bool> {
        if e == STOPPED {
            return Err(e);
        }
        let label = self
            .steps
            .get(i)
            .map(|s| s.what.clone())
            .unwrap_or_default();
        self.fail(format!("{label}: {e}"));
        let failed = self
            .failures
            .iter()
            .filter(|f| f.starts_with(&label))
            .count();
        Ok(failed >= MAX_FAILURES_PER_PHASE)
    }

    // ----------------------------------------------------------- phases

    fn flaps(&mut self) -> Result<()> {
        let n = self.counts.flaps;
        let i = self.step(
            format!("apiserver flaps on {FLAPPER} (check 50 ms, rise 1, fall 1)"),
            n,
        );
        let every = self.counts.checkpoint_every.max(1);
        let (mut gone, mut back) = (Vec::new(), Vec::new());
        for k in 1..=n {
            let checkpoint = k % every == 0 || k == n;
            let flap = (|| -> Result<()> {
                self.set_apiserver(FLAPPER, false)?;
                gone.push(self.wait_mode(FLAPPER, "withdrawn")?);
                if checkpoint {
                    self.check_in(i, &format!("flap {k}, {FLAPPER} down"));
                }
                self.set_apiserver(FLAPPER, true)?;
                back.push(self.wait_mode(FLAPPER, "announced")?);
                Ok(())
            })();
            match flap {
                Ok(()) => self.done(i),
                Err(e) => {
                    let _ = self.set_apiserver(FLAPPER, true);
                    if self.step_failed(i, format!("flap {k}: {e}"))? {
                        break;
                    }
                }
            }
            if checkpoint {
                self.check_in(i, &format!("flap {k}, {FLAPPER} up"));
                println!(
                    "  {k}/{n} flaps (t={:.0}s)",
                    self.started.elapsed().as_secs_f64()
                );
            }
        }
        self.note(
            i,
            format!(
                "anyvip saw the apiserver go in {} ms, come back in {} ms (median)",
                median_ms(&mut gone),
                median_ms(&mut back)
            ),
        );
        Ok(())
    }

    /// `router`: index into [`ROUTERS`].
    fn router_restarts(&mut self, router: usize) -> Result<()> {
        let (r, name) = ROUTERS[router];
        let n = self.counts.restarts;
        let i = self.step(format!("{name} ({r}) stopped and started"), n);
        let (mut stop, mut back) = (Vec::new(), Vec::new());
        for k in 1..=n {
            let t0 = Instant::now();
            if router == 0 {
                self.d.lab.frr_stop();
            } else {
                self.d.lab.bird_stop();
            }
            stop.push(t0.elapsed());
            let t1 = Instant::now();
            if router == 0 {
                self.d.lab.frr_start();
            } else {
                self.d.lab.bird_start();
            }
            self.done(i);
            self.check_in(i, &format!("{name} restart {k}"));
            back.push(t1.elapsed());
            if interrupted() {
                return Err(STOPPED.into());
            }
        }
        self.note(
            i,
            format!(
                "stop took {} ms; start to checkpoint held {} ms (median)",
                median_ms(&mut stop),
                median_ms(&mut back)
            ),
        );
        Ok(())
    }

    fn kills(&mut self) -> Result<()> {
        let n = self.counts.kills;
        let i = self.step(
            "anyvip kill -9, then started (n1, n2, n3 in turn)".into(),
            n,
        );
        let mut stale_cleared = 0;
        for k in 1..=n {
            let node = NODES[(k as usize - 1) % NODES.len()];
            // Every other kill: the apiserver goes down while anyvip is dead.
            let with_down = k % 2 == 0;
            let kill = (|| -> Result<()> {
                let pid = self.d.node(node).anyvip_pid;
                self.d.lab.signal(pid, "KILL");
                netlab_wait(Duration::from_secs(10), || {
                    self.d.lab.try_wait(pid).is_some()
                })
                .map_err(|_| format!("{node}'s anyvip (pid {pid}) still runs after SIGKILL"))?;
                if with_down {
                    self.set_apiserver(node, false)?;
                }
                let config = self.d.node(node).config.clone();
                let pid = spawn_anyvip(self.d.lab, self.d.bins, node, &config);
                self.d.node(node).anyvip_pid = pid;
                self.samples.entry(node).or_default().restarted();
                if with_down {
                    // The old anyvip's address must go although the new
                    // one never announced it.
                    let ok = self.checkpoint(&format!("kill {k} ({node}), apiserver down"));
                    stale_cleared += u32::from(ok);
                    if let Some(s) = self.steps.get_mut(i) {
                        s.checks += 1;
                        s.held += u32::from(ok);
                    }
                    self.set_apiserver(node, true)?;
                }
                Ok(())
            })();
            match kill {
                Ok(()) => self.done(i),
                Err(e) => {
                    let _ = self.set_apiserver(node, true);
                    if self.step_failed(i, format!("kill {k} ({node}): {e}"))? {
                        break;
                    }
                }
            }
            self.check_in(i, &format!("kill {k} ({node})"));
        }
        self.note(
            i,
            format!(
                "{stale_cleared} of {} restarts with the apiserver down took the dead anyvip's address away",
                n / 2
            ),
        );
        Ok(())
    }

    fn reloads(&mut self) -> Result<()> {
        let n = self.counts.reloads;
        let i = self.step(
            format!("reloads on {RELOADED}: valid (+/- a VIP) and invalid in turn"),
            n,
        );
        let config = self.d.node(RELOADED).config.clone();
        let socket = self.d.node(RELOADED).socket.clone();
        let base = read(&config)?;
        let with_vip2 = format!("{base}\n[[vip]]\nprefix = \"{VIP2}\"\nchecks = [\"apiserver\"]\n");
        let invalid: [(&str, String, &str); 4] = [
            ("a syntax error", format!("{base}\n[[vip]\n"), "line"),
            ("rise = 0", base.replacen("rise = 3", "rise = 0", 1), "rise"),
            (
                "an unknown check",
                format!("{base}\n[[vip]]\nprefix = \"10.201.255.3/32\"\nchecks = [\"nope\"]\n"),
                "nope",
            ),
            (
                "a new [api] socket",
                base.replacen("[api]\nsocket = \"", "[api]\nsocket = \"/nonexistent/", 1),
                "restart",
            ),
        ];
        let (mut valid, mut refused) = (0u32, 0u32);
        for k in 1..=n {
            let result = if k % 2 == 1 {
                // valid: toggle the second VIP; every other one by SIGHUP
                let add = !self.vip2;
                write(&config, if add { &with_vip2 } else { &base })?;
                let hup = (k / 2) % 2 == 1;
                let r = self.reload_valid(&config, &socket, hup, add);
                if r.is_ok() {
                    self.vip2 = add;
                    valid += 1;
                }
                r
            } else {
                let (what, text, names) = &invalid[(k as usize / 2) % invalid.len()];
                write(&config, text)?;
                let hup = (k / 2) % 3 == 0;
                let r = self.reload_invalid(&socket, hup, what, names);
                // The file goes back to what runs.
                write(&config, if self.vip2 { &with_vip2 } else { &base })?;
                if r.is_ok() {
                    refused += 1;
                }
                r
            };
            match result {
                Ok(()) => self.done(i),
                Err(e) => {
                    if self.step_failed(i, format!("reload {k}: {e}"))? {
                        break;
                    }
                }
            }
            if k % 10 == 0 || k == n {
                self.check_in(i, &format!("reload {k}"));
            }
        }
        self.note(
            i,
            format!("{valid} applied, {refused} refused with the running configuration kept"),
        );
        Ok(())
    }

    /// A valid reload (the second VIP added or removed), by SIGHUP or by
    /// `anyvip reload`; waits until the daemon shows it.
    fn reload_valid(&mut self, _config: &Path, socket: &Path, hup: bool, add: bool) -> Result<()> {
        if hup {
            let pid = self.d.node(RELOADED).anyvip_pid;
            if !self.d.lab.signal(pid, "HUP") {
                return Err(format!("SIGHUP to pid {pid} failed"));
            }
        } else {
            anyvip_cli(&self.d.bins.anyvip, socket, &["reload"])?;
        }
        let start = Instant::now();
        loop {
            let has = status(&self.d.bins.anyvip, socket).ok().map(|v| {
                v["vips"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x["prefix"] == VIP2))
            });
            if has == Some(add) {
                return Ok(());
            }
            if start.elapsed() > STEP_TIMEOUT {
                return Err(format!(
                    "{} did not {} {VIP2} within {STEP_TIMEOUT:?}",
                    if hup { "SIGHUP" } else { "anyvip reload" },
                    if add { "add" } else { "remove" }
                ));
            }
            sleep(Duration::from_millis(20))?;
        }
    }

    /// An invalid file: refused, saying why (`names` is in the reason), and
    /// logged once.
    fn reload_invalid(&mut self, socket: &Path, hup: bool, what: &str, names: &str) -> Result<()> {
        let log = self.anyvip_log(RELOADED);
        let count = || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .matches("reload refused")
                .count()
        };
        let before = count();
        if hup {
            let pid = self.d.node(RELOADED).anyvip_pid;
            if !self.d.lab.signal(pid, "HUP") {
                return Err(format!("SIGHUP to pid {pid} failed"));
            }
        } else {
            let out = std::process::Command::new(&self.d.bins.anyvip)
                .args(["reload", "-s"])
                .arg(socket)
                .stdin(std::process::Stdio::null())
                .output()
                .map_err(|e| format!("anyvip reload: {e}"))?;
            let err = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                return Err(format!("anyvip reload accepted a file with {what}"));
            }
            if !err.contains(names) {
                return Err(format!(
                    "anyvip reload refused a file with {what} without naming {names:?}: {}",
                    err.trim()
                ));
            }
        }
        netlab_wait(STEP_TIMEOUT, || count() > before).map_err(|_| {
            format!("no \"reload refused\" logged for a file with {what} within {STEP_TIMEOUT:?}")
        })?;
        self.refused += 1;
        Ok(())
    }

    fn bfd_flaps(&mut self) -> Result<()> {
        let n = self.counts.bfd_flaps;
        let i = self.step(
            format!("BFD 100 ms x 3 on {FLAPPER}: node frozen, then thawed"),
            n,
        );
        if n == 0 {
            return Ok(());
        }
        if let Err(e) = self.d.bfd_on(100) {
            if e == STOPPED {
                return Err(e);
            }
            self.fail(format!("BFD setup: {e}"));
            return Ok(());
        }
        let mut gone = Vec::new();
        for k in 1..=n {
            let flap = (|| -> Result<()> {
                self.d.wait_bfd_up()?;
                let t0 = Instant::now();
                freeze(self.d.lab, FLAPPER)?;
                let left = super::bench::track_path(
                    self.d.lab,
                    FLAPPER,
                    t0,
                    false,
                    super::bench::GONE_TIMEOUT,
                );
                if !thaw(self.d.lab, FLAPPER) {
                    return Err(format!(
                        "could not remove the nft table {FREEZE_TABLE} on {FLAPPER}"
                    ));
                }
                gone.extend(left?.into_iter().map(|ms| Duration::from_millis(ms as u64)));
                Ok(())
            })();
            match flap {
                Ok(()) => self.done(i),
                Err(e) => {
                    thaw(self.d.lab, FLAPPER);
                    if self.step_failed(i, format!("BFD flap {k}: {e}"))? {
                        break;
                    }
                }
            }
            self.check_in(i, &format!("BFD flap {k}"));
        }
        self.note(
            i,
            format!(
                "path gone from both routers in {} ms (median of both)",
                median_ms(&mut gone)
            ),
        );
        Ok(())
    }

    /// SIGTERM every anyvip: each exits 0 and leaves no address, table or
    /// route behind, only the loop guard.
    fn stop_all(&mut self) -> Result<()> {
        let i = self.step("every anyvip stopped (SIGTERM)".into(), NODES.len() as u32);
        for node in NODES {
            let pid = self.d.node(node).anyvip_pid;
            self.sample(node, pid);
            match self.d.lab.stop(pid, Duration::from_secs(20)) {
                Some(st) if st.success() => self.done(i),
                other => self.fail(format!("stop: {node}'s anyvip exited with {other:?}")),
            }
        }
        let before = self.failures.len();
        let lab = &*self.d.lab;
        let empty = netlab_wait(super::CONVERGE, || {
            ROUTERS.iter().all(|(r, _)| {
                via_prefix(lab, r, VIP).is_empty() && via_prefix(lab, r, VIP2).is_empty()
            })
        });
        if empty.is_err() {
            self.fail("stop: the routers still have a route to a VIP".into());
        }
        for node in NODES {
            let have = self.d.lab.addrs(node, "lo");
            let left: Vec<String> = have
                .iter()
                .map(|a| a.to_string())
                .filter(|a| a == VIP_ADDR || a == VIP2_ADDR)
                .collect();
            if !left.is_empty() {
                self.fail(format!("stop: {node}'s lo still has {left:?}"));
            }
            // The loop guard stays while anyvip is stopped (design §6,
            // keep_guard_on_stop), but nothing else of ours: no steering.
            let t = tables(self.d.lab, node);
            let table = self
                .d
                .lab
                .exec(node, &["nft", "list", "table", "inet", "anyvip"]);
            let table = String::from_utf8_lossy(&table.stdout);
            if t != ["inet anyvip"] || !table.contains(VIP_ADDR) || table.contains("dnat to") {
                self.fail(format!(
                    "stop: {node} should have only the loop guard (inet anyvip, no dnat); tables {t:?}:\n{table}"
                ));
            }
        }
        if let Some(s) = self.steps.get_mut(i) {
            s.checks = 1;
            s.held = u32::from(self.failures.len() == before);
        }
        Ok(())
    }

    // ----------------------------------------------------------- logs

    /// The log of the node's current anyvip.
    fn anyvip_log(&self, node: &str) -> std::path::PathBuf {
        let dir = self.d.lab.dir();
        let prefix = format!("{node}-anyvip-");
        // The lab numbers its logs in spawn order: the newest is the highest.
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|f| f.to_str())
                    .is_some_and(|f| f.starts_with(&prefix) && f.ends_with(".log"))
            })
            .max_by_key(|p| log_number(p))
            .unwrap_or_else(|| dir.join(format!("{prefix}0.log")))
    }

    /// Panics and ERROR lines in every anyvip log of the run.
    fn logs(&mut self) {
        let dir = self.d.lab.dir().to_path_buf();
        let mut lines = 0;
        let (mut panics, mut refused, mut warns) = (Vec::new(), 0, 0);
        let mut errors = Vec::new();
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = entry.path();
            let name = p
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or_default()
                .to_string();
            if !(name.starts_with('n') && name.contains("-anyvip-") && name.ends_with(".log")) {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            for l in text.lines() {
                lines += 1;
                if l.contains("panicked") {
                    panics.push(format!("{name}: {l}"));
                } else if level(l) == Some("ERROR") {
                    if l.contains("reload refused") {
                        refused += 1;
                    } else {
                        errors.push(format!("{name}: {l}"));
                    }
                } else if level(l) == Some("WARN") {
                    warns += 1;
                    *self.warnings.entry(message(l)).or_default() += 1;
                }
            }
        }
        for p in &panics {
            self.fail(format!("log: {p}"));
        }
        for e in errors.iter().take(20) {
            self.fail(format!("log: unexpected error: {e}"));
        }
        if refused != self.refused {
            self.fail(format!(
                "log: {refused} \"reload refused\" errors for {} invalid reloads",
                self.refused
            ));
        }
        self.steps.push(Step {
            what: "anyvip logs: no panic, no unexpected ERROR".into(),
            planned: 1,
            done: 1,
            checks: 1,
            held: u32::from(panics.is_empty() && errors.is_empty() && refused == self.refused),
            note: format!(
                "{lines} lines; {} panics, {} unexpected errors, {refused} \"reload refused\" (expected {}), {warns} warnings",
                panics.len(),
                errors.len(),
                self.refused
            ),
        });
    }

    // ----------------------------------------------------------- table

    fn table(&self) -> String {
        let mut s = String::new();
        let took = self.started.elapsed().as_secs();
        let _ = writeln!(
            s,
            "\nanyvip soak and fault run: lab {}, {} min {} s, {} checkpoints",
            self.d.lab.id(),
            took / 60,
            took % 60,
            self.checkpoints
        );
        let _ = writeln!(
            s,
            "a checkpoint: both routers' ECMP groups = the healthy nodes (for each VIP); a VIP address on lo exactly where healthy; \
             inet anyvip on every node and no other table; every anyvip alive"
        );
        let _ = writeln!(
            s,
            "\n{:<62} {:>11} {:>13}  notes",
            "step", "done", "checks held"
        );
        for st in &self.steps {
            let _ = writeln!(
                s,
                "{:<62} {:>11} {:>13}  {}",
                st.what,
                format!("{}/{}", st.done, st.planned),
                format!("{}/{}", st.held, st.checks),
                st.note
            );
        }
        let _ = writeln!(
            s,
            "\n{:<5} {:>7}  {:<44}  all: RSS kB max, fds max",
            "node", "anyvips", "first anyvip: RSS kB first/max/last, fds (samples)",
        );
        for (node, x) in &self.samples {
            let (rss, fds, n) = x.first_life();
            let _ = writeln!(
                s,
                "{:<5} {:>7}  {:<44}  {}, {}",
                node,
                x.starts,
                format!(
                    "{}/{}/{}, {}/{}/{} ({n})",
                    rss.first.unwrap_or(0),
                    rss.max,
                    rss.last,
                    fds.first.unwrap_or(0),
                    fds.max,
                    fds.last
                ),
                x.rss_kb.max,
                x.fds.max
            );
        }
        let _ = writeln!(
            s,
            "\nthe first anyvip of each node after each phase it lived through (RSS / private dirty, kB):"
        );
        for (node, x) in &self.samples {
            let row: Vec<String> = x
                .by_phase
                .iter()
                .map(|(phase, rss, dirty)| format!("{phase} {rss}/{dirty}"))
                .collect();
            let _ = writeln!(s, "  {node}: {}", row.join(", "));
        }
        if !self.warnings.is_empty() {
            let mut w: Vec<(&String, &usize)> = self.warnings.iter().collect();
            w.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let _ = writeln!(s, "\nwarnings logged, by message (the most frequent 8):");
            for (msg, n) in w.iter().take(8) {
                let _ = writeln!(s, "  {n:>6}  {msg}");
            }
        }
        if self.failures.is_empty() {
            let _ = writeln!(s, "\nresult: everything held");
        } else {
            let _ = writeln!(s, "\nresult: {} check(s) FAILED:", self.failures.len());
            for f in &self.failures {
                let _ = writeln!(s, "  - {f}");
            }
        }
        s
    }
}

// ------------------------------------------------------------- helpers

/// Poll `cond` every 20 ms until it holds or `timeout` passes.
fn netlab_wait(timeout: Duration, mut cond: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    loop {
        if cond() {
            return Ok(());
        }
        if start.elapsed() > timeout || interrupted() {
            return Err("timed out".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `family name` of every nftables table in `node`'s namespace.
fn tables(lab: &super::netlab::Lab, node: &str) -> Vec<String> {
    let out = lab.exec(node, &["nft", "list", "tables"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("table "))
        .map(str::to_string)
        .collect()
}

fn median_ms(v: &mut [Duration]) -> String {
    v.sort_unstable();
    match v.get(v.len() / 2) {
        Some(d) => d.as_millis().to_string(),
        None => "-".into(),
    }
}

/// The level of a log line: its first word, or the second after a timestamp.
fn level(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    let first = words.next()?;
    if first.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        words.next()
    } else {
        Some(first)
    }
}

/// A log line's message: the words after the level and the span, up to
/// the first `key=value` field.
fn message(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let start = words
        .iter()
        .position(|w| *w == "WARN" || *w == "ERROR" || *w == "INFO")
        .map_or(0, |i| i + 1);
    words
        .iter()
        .skip(start)
        // the span, e.g. `peer{name=10.201.2.1}:`, is who, not what
        .skip_while(|w| w.contains('{') && w.ends_with("}:"))
        .take_while(|w| {
            !w.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            })
        })
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

fn log_number(p: &Path) -> u64 {
    p.file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.rsplit('-').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn read(p: &Path) -> Result<String> {
    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn write(p: &Path, text: &str) -> Result<()> {
    std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display()))
}
