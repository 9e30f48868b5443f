//! The failover benchmark (`--bench N`): scenarios on n2, then a table.

use super::*;

/// The hold time every BGP session of the benchmark offers (a frozen node's
/// path leaves after it).
pub(crate) const BENCH_HOLD_TIME: &str = "3s";
pub(crate) const BENCH_DRAIN_DELAY: Duration = Duration::from_secs(2);
/// The node every trial acts on.
const BENCH_NODE: &str = "n2";
/// A path leaving (health, kill, freeze, drain) takes well under this.
pub(crate) const GONE_TIMEOUT: Duration = Duration::from_secs(20);
/// The nftables table that freezes a node.
pub(crate) const FREEZE_TABLE: &str = "anyvip_bench_freeze";

/// One line of the table: samples of one measure on one router.
struct Series {
    what: &'static str,
    router: &'static str,
    unit: &'static str,
    samples: Vec<u128>,
    /// Why it was not measured (or not for every trial).
    note: Option<String>,
}

impl Series {
    fn new(what: &'static str, router: &'static str, unit: &'static str) -> Series {
        Series {
            what,
            router,
            unit,
            samples: Vec::new(),
            note: None,
        }
    }

    /// Per router: `what` on FRR, then on BIRD.
    fn both(what: &'static str) -> [Series; 2] {
        [
            Series::new(what, "FRR", "ms"),
            Series::new(what, "BIRD", "ms"),
        ]
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[u128], p: f64) -> u128 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn bench_table(series: &[Series], n: u32, lab: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nanyvip failover benchmark: lab {lab}, {n} trial(s) per scenario, acting on {BENCH_NODE}"
    );
    let _ = writeln!(
        s,
        "settings: https check every 200 ms (timeout 150 ms), fall 2, rise 3; BGP hold time {BENCH_HOLD_TIME} (every session); \
         drain delay {} ms (GRACEFUL_SHUTDOWN community, no prepend); path polled in the routers' kernel tables every ~5 ms",
        BENCH_DRAIN_DELAY.as_millis()
    );
    let _ = writeln!(
        s,
        "\n{:<48} {:<6} {:>3} {:>8} {:>8} {:>8}",
        "scenario", "router", "n", "median", "p90", "max"
    );
    for x in series {
        let mut v = x.samples.clone();
        v.sort_unstable();
        if v.is_empty() {
            let _ = writeln!(
                s,
                "{:<48} {:<6} not measured: {}",
                x.what,
                x.router,
                x.note.as_deref().unwrap_or("no trial ran")
            );
            continue;
        }
        let u = if x.unit == "ms" { " ms" } else { "" };
        let _ = write!(
            s,
            "{:<48} {:<6} {:>3} {:>8} {:>8} {:>8}",
            x.what,
            x.router,
            v.len(),
            format!("{}{u}", percentile(&v, 0.5)),
            format!("{}{u}", percentile(&v, 0.9)),
            format!("{}{u}", v[v.len() - 1]),
        );
        if let Some(note) = &x.note {
            let _ = write!(s, "   (only {} of {n} trials: {note})", v.len());
        }
        s.push('\n');
    }
    s
}

/// Until both routers' kernel tables have the VIP through n1, n2 and n3.
fn wait_all(lab: &Lab, timeout: Duration) -> Result<Duration> {
    let start = Instant::now();
    loop {
        if ROUTERS.iter().all(|(r, _)| via(lab, r) == NODES) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "the VIP did not get its three paths on both routers within {timeout:?}"
            ));
        }
        sleep(Duration::from_millis(20))?;
    }
}

/// Poll both routers' kernel tables every ~5 ms until `node`'s path has
/// left (`back` false) or joined each; the time from `t0`, FRR then BIRD.
pub(crate) fn track_path(
    lab: &Lab,
    node: &str,
    t0: Instant,
    back: bool,
    timeout: Duration,
) -> Result<Vec<u128>> {
    let mut seen: Vec<Option<u128>> = vec![None; ROUTERS.len()];
    while seen.iter().any(Option::is_none) {
        for (i, (r, _)) in ROUTERS.iter().enumerate() {
            if seen[i].is_none() && via(lab, r).iter().any(|n| n == node) == back {
                seen[i] = Some(t0.elapsed().as_millis());
            }
        }
        if seen.iter().all(Option::is_some) {
            break;
        }
        if t0.elapsed() > timeout {
            let missing: Vec<&str> = ROUTERS
                .iter()
                .zip(&seen)
                .filter(|(_, s)| s.is_none())
                .map(|((_, name), _)| *name)
                .collect();
            return Err(format!(
                "{node}'s path did not {} {} within {timeout:?}",
                if back { "join" } else { "leave" },
                missing.join(" and ")
            ));
        }
        if interrupted() {
            return Err(STOPPED.into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(seen.into_iter().flatten().collect())
}

pub(crate) fn freeze(lab: &Lab, node: &str) -> Result<()> {
    let rules = format!(
        "table inet {FREEZE_TABLE} {{\n\
         chain in {{ type filter hook prerouting priority -500; policy drop; }}\n\
         chain out {{ type filter hook output priority -500; policy drop; }}\n}}\n"
    );
    let path = lab.dir().join(format!("{node}-freeze.nft"));
    std::fs::write(&path, rules).map_err(|e| format!("{}: {e}", path.display()))?;
    let out = lab.exec(node, &["nft", "-f", &path.display().to_string()]);
    if !out.status.success() {
        return Err(format!(
            "nft -f on {node}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

pub(crate) fn thaw(lab: &Lab, node: &str) -> bool {
    lab.exec(node, &["nft", "delete", "table", "inet", FREEZE_TABLE])
        .status
        .success()
}

/// `anyvip <args> -s SOCKET`.
pub(crate) fn anyvip_cli(anyvip: &Path, socket: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new(anyvip)
        .args(args)
        .arg("-s")
        .arg(socket)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("anyvip {args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "anyvip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

impl Demo<'_> {
    /// SIGKILL the bench node's anyvip and reap it.
    fn kill_anyvip(&mut self) -> Result<()> {
        let pid = self.node(BENCH_NODE).anyvip_pid;
        self.lab.signal(pid, "KILL");
        let start = Instant::now();
        while self.lab.try_wait(pid).is_none() {
            if start.elapsed() > Duration::from_secs(5) {
                return Err(format!("anyvip (pid {pid}) still running after SIGKILL"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    fn start_anyvip(&mut self) {
        let config = self.node(BENCH_NODE).config.clone();
        let pid = spawn_anyvip(self.lab, self.bins, BENCH_NODE, &config);
        self.node(BENCH_NODE).anyvip_pid = pid;
    }

    /// After a failed trial: everything back as it was (best effort).
    fn restore(&mut self) {
        let _ = self.node(BENCH_NODE).set("ok");
        thaw(self.lab, BENCH_NODE);
        let pid = self.node(BENCH_NODE).anyvip_pid;
        if self.lab.try_wait(pid).is_some() {
            self.start_anyvip();
        } else {
            let socket = self.node(BENCH_NODE).socket.clone();
            let _ = anyvip_cli(&self.bins.anyvip, &socket, &["resume"]);
        }
    }

    /// `n` trials of one scenario, each yielding one sample per series.
    fn trials(
        &mut self,
        n: u32,
        name: &str,
        series: &mut [Series],
        mut trial: impl FnMut(&mut Self) -> Result<Vec<u128>>,
    ) -> Result<()> {
        for i in 1..=n {
            if let Err(e) = wait_all(self.lab, CONVERGE) {
                if e == STOPPED {
                    return Err(e);
                }
                for s in series.iter_mut() {
                    s.note = Some(format!("before trial {i}: {e}"));
                }
                return Ok(());
            }
            // let the routers and the sessions settle
            sleep(Duration::from_millis(500))?;
            match trial(self) {
                Ok(v) => {
                    println!("  {name} #{i}:");
                    for (s, x) in series.iter().zip(&v) {
                        let u = if s.unit == "ms" { " ms" } else { "" };
                        println!("    {:<44} {:<5} {x}{u}", s.what, s.router);
                    }
                    for (s, x) in series.iter_mut().zip(v) {
                        s.samples.push(x);
                    }
                }
                Err(e) if e == STOPPED => return Err(e),
                Err(e) => {
                    println!("  {name} #{i}: not measured: {e}");
                    for s in series.iter_mut() {
                        s.note = Some(format!("trial {i}: {e}"));
                    }
                    self.restore();
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// The failover benchmark (`--bench N`): the table of the scenarios.
pub(crate) fn bench(d: &mut Demo, n: u32) -> Result<String> {
    println!(
        "lab {} up; waiting for the VIP's three paths on both routers ...",
        d.lab.id()
    );
    let took = wait_all(d.lab, CONVERGE)?;
    println!(
        "three paths on FRR and BIRD {} ms after anyvip started; {n} trial(s) per scenario on {BENCH_NODE}",
        took.as_millis()
    );
    let node = BENCH_NODE;

    // (1) + (2): the apiserver goes down, then comes back.
    let [a, b] = Series::both("health failure (mode down) -> path gone");
    let [c, e] = Series::both("recovery (mode ok) -> path back");
    let mut health = [a, b, c, e];
    d.trials(n, "health", &mut health, |d| {
        let t0 = Instant::now();
        d.node(node).set("down")?;
        let mut v = track_path(d.lab, node, t0, false, GONE_TIMEOUT)?;
        sleep(Duration::from_millis(500))?;
        let t1 = Instant::now();
        d.node(node).set("ok")?;
        v.extend(track_path(d.lab, node, t1, true, CONVERGE)?);
        Ok(v)
    })?;

    // (3) + (6): anyvip SIGKILLed, then started again.
    let [a, b] = Series::both("anyvip SIGKILL -> path gone");
    let [c, e] = Series::both("anyvip start -> first announcement");
    let mut kill = [a, b, c, e];
    d.trials(n, "kill/start", &mut kill, |d| {
        let t0 = Instant::now();
        d.kill_anyvip()?;
        let mut v = track_path(d.lab, node, t0, false, GONE_TIMEOUT)?;
        sleep(Duration::from_millis(500))?;
        let t1 = Instant::now();
        d.start_anyvip();
        v.extend(track_path(d.lab, node, t1, true, CONVERGE)?);
        Ok(v)
    })?;

    // (4): the node frozen: all its traffic dropped, no FIN, no RST.
    let mut frozen = Series::both("node frozen (nft drop all) -> path gone");
    d.trials(n, "frozen", &mut frozen, |d| {
        let t0 = Instant::now();
        freeze(d.lab, node)?;
        let v = track_path(d.lab, node, t0, false, GONE_TIMEOUT);
        if !thaw(d.lab, node) {
            return Err(format!(
                "could not remove the nft table {FREEZE_TABLE} on {node}"
            ));
        }
        let v = v?;
        // the sessions come back (anyvip's own hold timer, then a new connection)
        track_path(d.lab, node, Instant::now(), true, CONVERGE)?;
        Ok(v)
    })?;

    // (5): drain while c1 requests continuously, then resume.
    let [a, b] = Series::both("drain -> path gone");
    let mut drain = [
        a,
        b,
        Series::new("drain: client requests failed", "-", "requests"),
        Series::new("drain: connects refused/reset, retried", "-", "requests"),
    ];
    d.trials(n, "drain", &mut drain, |d| {
        let mut client = Client::start(
            d.lab.ns("c1").to_string(),
            d.ca.clone(),
            Duration::from_millis(20),
        );
        sleep(Duration::from_millis(1000))?;
        let socket = d.node(node).socket.clone();
        let t0 = Instant::now();
        anyvip_cli(&d.bins.anyvip, &socket, &["drain"])?;
        let mut v = track_path(d.lab, node, t0, false, GONE_TIMEOUT)?;
        // past the drain delay (the withdrawal), then resume
        sleep((BENCH_DRAIN_DELAY + Duration::from_secs(1)).saturating_sub(t0.elapsed()))?;
        anyvip_cli(&d.bins.anyvip, &socket, &["resume"])?;
        track_path(d.lab, node, Instant::now(), true, CONVERGE)?;
        sleep(Duration::from_millis(500))?;
        client.stop();
        let reqs = client.snapshot();
        let failed = reqs.iter().filter(|r| r.answer.is_err()).count() as u128;
        let refused: u32 = reqs.iter().map(|r| r.refused).sum();
        v.push(failed);
        v.push(u128::from(refused));
        println!(
            "    (client: {} requests during the trial, one new connection each)",
            reqs.len()
        );
        for r in reqs.iter().filter(|r| r.answer.is_err()) {
            if let Err(e) = &r.answer {
                println!("    failed request: {e}");
            }
        }
        Ok(v)
    })?;

    // (7): the node frozen with BFD (RFC 5880) on n2's sessions and the
    // routers', at 100 ms x 3 and 300 ms x 3.
    let mut bfd_rows = Vec::new();
    for (ms, what) in [
        (100, "node frozen, BFD 100 ms x 3 -> path gone"),
        (300, "node frozen, BFD 300 ms x 3 -> path gone"),
    ] {
        let mut rows = Series::both(what);
        if let Err(e) = d.bfd_on(ms) {
            if e == STOPPED {
                return Err(e);
            }
            for s in rows.iter_mut() {
                s.note = Some(format!("BFD setup: {e}"));
            }
        } else {
            d.trials(n, &format!("frozen, BFD {ms} ms"), &mut rows, |d| {
                d.wait_bfd_up()?;
                let t0 = Instant::now();
                freeze(d.lab, node)?;
                let v = track_path(d.lab, node, t0, false, GONE_TIMEOUT);
                if !thaw(d.lab, node) {
                    return Err(format!(
                        "could not remove the nft table {FREEZE_TABLE} on {node}"
                    ));
                }
                let v = v?;
                track_path(d.lab, node, Instant::now(), true, CONVERGE)?;
                Ok(v)
            })?;
        }
        bfd_rows.extend(rows);
    }

    let mut all = Vec::new();
    all.extend(health);
    all.extend(kill);
    all.extend(frozen);
    all.extend(bfd_rows);
    all.extend(drain);
    Ok(bench_table(&all, n, d.lab.id()))
}

impl Demo<'_> {
    /// BFD at `ms` x 3 between the routers and the bench node: an FRR
    /// profile on both peer groups, BIRD's `protocol bfd` with `bfd on`,
    /// and the node's `bfd` applied by a reload (no BGP reset); then wait
    /// until its sessions are Up.
    pub(crate) fn bfd_on(&mut self, ms: u32) -> Result<()> {
        let tx = format!("  transmit-interval {ms}");
        let rx = format!("  receive-interval {ms}");
        self.lab.vtysh_lines(&[
            "configure terminal",
            "bfd",
            " profile BENCH",
            &tx,
            &rx,
            "  detect-multiplier 3",
            " exit",
            "exit",
            "router bgp 65000",
            " neighbor NODES4 bfd profile BENCH",
            " neighbor NODES6 bfd profile BENCH",
            "exit",
        ]);
        let conf = self.lab.bird_conf();
        let text =
            std::fs::read_to_string(&conf).map_err(|e| format!("{}: {e}", conf.display()))?;
        let head = match text.split_once("\n# bench bfd\n") {
            Some((head, _)) => head.to_string(),
            None => text.replace(
                "  error wait time 1, 10;\n",
                "  error wait time 1, 10;\n  bfd on;\n",
            ),
        };
        let text = format!(
            "{head}\n# bench bfd\nprotocol bfd {{\n  interface \"eth*\" {{ min rx interval {ms} ms; min tx interval {ms} ms; idle tx interval 1000 ms; multiplier 3; }};\n}}\n"
        );
        std::fs::write(&conf, text).map_err(|e| format!("{}: {e}", conf.display()))?;
        let out = self.lab.birdc("configure");
        if !out.contains("Reconfigured") {
            return Err(format!("birdc configure: {out}"));
        }
        let config = self.node(BENCH_NODE).config.clone();
        let text =
            std::fs::read_to_string(&config).map_err(|e| format!("{}: {e}", config.display()))?;
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with("bfd = "))
            .map(|l| format!("{l}\n"))
            .collect();
        let text = text.replace(
            "\nfamilies = [",
            &format!("\nbfd = {{ interval = \"{ms}ms\", multiplier = 3 }}\nfamilies = ["),
        );
        std::fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
        let socket = self.node(BENCH_NODE).socket.clone();
        anyvip_cli(&self.bins.anyvip, &socket, &["reload"])?;
        wait_all(self.lab, CONVERGE)?;
        self.wait_bfd_up()
    }

    /// Until every BFD session of the bench node is Up (anyvip's view).
    pub(crate) fn wait_bfd_up(&mut self) -> Result<()> {
        let socket = self.node(BENCH_NODE).socket.clone();
        let start = Instant::now();
        loop {
            let up = status(&self.bins.anyvip, &socket).is_ok_and(|v| {
                v["peers"].as_array().is_some_and(|peers| {
                    !peers.is_empty() && peers.iter().all(|p| p["bfd"]["state"] == "up")
                })
            });
            if up {
                return Ok(());
            }
            if start.elapsed() > CONVERGE {
                return Err(format!(
                    "{BENCH_NODE}'s BFD sessions not Up within {CONVERGE:?}"
                ));
            }
            sleep(Duration::from_millis(50))?;
        }
    }
}
