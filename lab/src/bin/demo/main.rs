//! anyvip-lab-demo: the lab demo (`scripts/demo`, the README's first
//! command). Needs root.
//!
//! It builds `containerlab/anyvip.clab.yml` in network namespaces with the
//! test harness of `tests/lab/` (FRR on r1, BIRD on r2, nodes n1-n3, client
//! c1), starts on every node the stand-in apiserver (HTTPS on
//! 127.0.0.1:6443, certificate from one lab CA) and anyvip with an https
//! check on it (every 200 ms, rise 3, fall 2) for the VIP 10.201.255.1/32,
//! port 443 steered to the apiserver. Then a live view, about once a
//! second: the BGP sessions of each node (`anyvip status --json`), the
//! routers' kernel next hops for the VIP, and which node answered each of
//! c1's requests (`curl https://10.201.255.1/` in c1's namespace). Then the
//! scripted failover: n2's apiserver goes down (listener closed), its path
//! leaves both routers while requests go on to n1 and n3, it comes back and
//! its path rejoins. The time from the mode switch to the path leaving each
//! router's kernel table is measured by polling it every few milliseconds.
//!
//! The client: one request at a time, each a new connection (so ECMP hashes
//! each anew). A connection refused, or reset during the TLS handshake
//! (curl exit 7 or 35: the request was never sent), is retried after
//! 100 ms, up to 5 attempts, as any client with a refused connection does;
//! those attempts are counted and shown (they happen only in the detection
//! window, on connections hashed to the node whose apiserver just died).
//! Every other error, and a request whose every attempt failed, is a failed
//! request.
//!
//! Everything is torn down at the end, on Ctrl-C (SIGINT/SIGTERM set a
//! flag the loops check, then the lab's `Drop` runs) and on errors; with
//! `--keep` the lab stays up and the commands to look around (and to tear
//! it down: `anyvip-lab-demo --teardown <id>`) are printed.
//!
//! The failover benchmark: `scripts/demo --bench 5` (or
//! `anyvip-lab-demo --bench 5`) builds the same lab (every BGP session with
//! hold_time "3s", `[drain] delay = "2s"`) and runs 5 trials of each
//! scenario on n2, then prints a table (median, p90, max) with the settings:
//! health failure (apiserver mode down) -> path gone, recovery (mode ok) ->
//! path back, anyvip SIGKILL -> path gone, anyvip start -> first
//! announcement, node frozen (nftables drop of all its traffic) -> path
//! gone, the same with BFD between n2 and both routers at 100 ms x 3 and
//! 300 ms x 3, drain (`anyvip drain -s SOCKET`) -> path gone and the client's
//! failed requests; each on FRR (r1) and BIRD (r2), the path's presence
//! polled in the routers' kernel tables every ~5 ms. A scenario that cannot
//! be done (time out, command failing) is printed as "not measured: why".

mod bench;
mod memory;
#[path = "../../../../tests/lab/mod.rs"]
mod netlab;
mod soak;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bench::{BENCH_DRAIN_DELAY, BENCH_HOLD_TIME};
use clap::Parser;
use netlab::{netns, Lab, Options};

const VIP: &str = "10.201.255.1/32";
const VIP_ADDR: &str = "10.201.255.1";
const NODES: [&str; 3] = ["n1", "n2", "n3"];
/// The node whose apiserver the scripted failover takes down.
const VICTIM: &str = "n2";
const ROUTERS: [(&str, &str); 2] = [("r1", "FRR"), ("r2", "BIRD")];
/// Sessions and first announcements (3-8 s normally), generous for a loaded machine.
const CONVERGE: Duration = Duration::from_secs(60);

#[derive(Parser)]
#[command(
    name = "anyvip-lab-demo",
    version,
    about = "The anyvip lab demo: FRR + BIRD, three nodes, a client, a live failover (root)"
)]
struct Cli {
    /// Leave the lab up at the end and print the commands to look around.
    #[arg(long)]
    keep: bool,
    /// How many down/up cycles of n2's apiserver.
    #[arg(long, default_value_t = 1)]
    cycles: u32,
    /// Short holds between the steps (for tests; the view is the same).
    #[arg(long)]
    quick: bool,
    /// The failover benchmark: N trials per scenario, then a table.
    #[arg(long, value_name = "N")]
    bench: Option<u32>,
    /// The soak and fault run: many faults in a row with the state checked
    /// at checkpoints, then a table (the counts below; defaults are long).
    #[arg(long, conflicts_with = "bench")]
    soak: bool,
    /// --soak: apiserver down/up flaps on n2 (checks every 50 ms, rise 1, fall 1).
    #[arg(long, default_value_t = 1000, requires = "soak")]
    flaps: u32,
    /// --soak: a checkpoint every N flaps.
    #[arg(long, default_value_t = 50, requires = "soak")]
    checkpoint_every: u32,
    /// --soak: stops and starts of each router (FRR, then BIRD).
    #[arg(long, default_value_t = 20, requires = "soak")]
    restarts: u32,
    /// --soak: anyvip kill -9 and start again (n1, n2, n3 in turn).
    #[arg(long, default_value_t = 20, requires = "soak")]
    kills: u32,
    /// --soak: reloads on n1, valid and invalid files in turn.
    #[arg(long, default_value_t = 100, requires = "soak")]
    reloads: u32,
    /// --soak: n2 frozen until BFD (100 ms x 3) takes its path off, then thawed.
    #[arg(long, default_value_t = 20, requires = "soak")]
    bfd_flaps: u32,
    /// Memory and idle CPU of anyvip next to BIRD as the node speaker (same
    /// job), SECS of steady state (default 60), then a table.
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "60")]
    memory: Option<u64>,
    /// Tear down a lab left by `--keep` (its id, e.g. av12345x0), then exit.
    #[arg(long, value_name = "LAB_ID")]
    teardown: Option<String>,
    /// The anyvip binary (default: next to this one, else on PATH).
    #[arg(long)]
    anyvip: Option<PathBuf>,
    /// The anyvip-lab-apiserver binary (default: next to this one, else on PATH).
    #[arg(long)]
    apiserver: Option<PathBuf>,
    /// The topology file.
    #[arg(long, default_value_os_t = default_topology())]
    topology: PathBuf,
}

fn default_topology() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../containerlab/anyvip.clab.yml")
}

// ------------------------------------------------------------- Ctrl-C

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int);
    // SAFETY: the handler only stores to an atomic (async-signal-safe).
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
}

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Errors end the demo (the lab is torn down by `Drop`).
type Result<T> = std::result::Result<T, String>;

const STOPPED: &str = "interrupted";

/// Sleep `d` in small steps; Err once interrupted.
fn sleep(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if interrupted() {
            return Err(STOPPED.into());
        }
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(20)));
    }
    Ok(())
}

// ------------------------------------------------------------- main

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !netns::is_root() {
        eprintln!("anyvip-lab-demo: needs root (network namespaces, FRR, BIRD)");
        return ExitCode::FAILURE;
    }
    if let Some(id) = &cli.teardown {
        return match teardown(id) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("anyvip-lab-demo: {e}");
                ExitCode::FAILURE
            }
        };
    }
    install_signal_handlers();
    let bins = match Bins::find(&cli) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("anyvip-lab-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(secs) = cli.memory {
        return memory::main(&cli, &bins, Duration::from_secs(secs.max(1)));
    }
    println!("anyvip lab demo: building the lab (FRR r1, BIRD r2, nodes n1-n3, client c1) ...");
    let mut lab = Lab::start_with(Options {
        topology: cli.topology.clone(),
        ..Options::default()
    });
    let result = Demo::new(&cli, &bins, &mut lab).and_then(|mut d| match cli.bench {
        Some(n) => bench::bench(&mut d, n.max(1)),
        None if cli.soak => soak::soak(
            &mut d,
            soak::Counts {
                flaps: cli.flaps,
                restarts: cli.restarts,
                kills: cli.kills,
                reloads: cli.reloads,
                bfd_flaps: cli.bfd_flaps,
                checkpoint_every: cli.checkpoint_every,
            },
        ),
        None => d.run(),
    });
    let code = match &result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) if e == STOPPED => {
            println!("\ninterrupted: tearing the lab down");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("\nanyvip-lab-demo: {e}");
            eprintln!(
                "(logs were in {}; tearing the lab down)",
                lab.dir().display()
            );
            ExitCode::FAILURE
        }
    };
    if cli.keep && result.is_ok() {
        print_keep(&lab, &bins);
        // Leave everything running: no Drop.
        std::mem::forget(lab);
    } else {
        let namespaces = lab.namespaces();
        lab.teardown();
        drop(lab);
        let left: Vec<String> = netns::list()
            .into_iter()
            .filter(|n| namespaces.contains(n))
            .collect();
        if left.is_empty() {
            println!("lab torn down: namespaces, routers and processes are gone");
        } else {
            eprintln!("namespaces left behind: {left:?}");
        }
    }
    if let Ok(summary) = &result {
        println!("{summary}");
    }
    code
}

struct Bins {
    anyvip: PathBuf,
    apiserver: PathBuf,
}

impl Bins {
    fn find(cli: &Cli) -> Result<Bins> {
        let here = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        let find = |given: &Option<PathBuf>, name: &str| -> Result<PathBuf> {
            if let Some(p) = given {
                return Ok(p.clone());
            }
            if let Some(p) = here.as_ref().map(|d| d.join(name)).filter(|p| p.exists()) {
                return Ok(p);
            }
            std::env::var_os("PATH")
                .into_iter()
                .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .map(|d| d.join(name))
                .find(|p| p.exists())
                .ok_or_else(|| {
                    format!("no {name} next to this binary or on PATH (cargo build --release -p anyvip -p anyvip-lab)")
                })
        };
        Ok(Bins {
            anyvip: find(&cli.anyvip, "anyvip")?,
            apiserver: find(&cli.apiserver, "anyvip-lab-apiserver")?,
        })
    }
}

// ------------------------------------------------------------- the nodes

struct Node {
    name: &'static str,
    control: PathBuf,
    socket: PathBuf,
    mode: &'static str,
    /// anyvip's config and the pid it runs as (restarted by `--bench`).
    config: PathBuf,
    anyvip_pid: u32,
}

impl Node {
    /// Switch the stand-in apiserver's mode; returns once it is in force.
    fn set(&mut self, mode: &'static str) -> Result<()> {
        let e = |e: std::io::Error| format!("{}: {e}", self.control.display());
        let mut s = UnixStream::connect(&self.control).map_err(e)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(e)?;
        writeln!(s, "{mode}").map_err(e)?;
        let mut reply = String::new();
        BufReader::new(s).read_line(&mut reply).map_err(e)?;
        if reply.trim() != format!("mode {mode}") {
            return Err(format!("apiserver on {}: {}", self.name, reply.trim()));
        }
        self.mode = mode;
        Ok(())
    }
}

// ------------------------------------------------------------- the client

#[derive(Clone)]
struct Request {
    /// `Ok(node)` or `Err(reason)`.
    answer: std::result::Result<String, String>,
    /// Connections refused or reset before the request was sent (retried).
    refused: u32,
}

#[derive(Default)]
struct ClientLog {
    requests: Vec<Request>,
}

/// One HTTPS request from c1 to the VIP, over a new connection.
fn request(ns: &str, ca: &Path) -> Request {
    let url = format!("https://{VIP_ADDR}/");
    let mut refused = 0;
    loop {
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
                "3",
                "--cacert",
            ],
        )
        .arg(ca)
        .arg(&url)
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
            // 7: could not connect (refused); 35: the TLS handshake failed
            // (reset): no request was sent, so it is safe to retry
            Ok(o) if matches!(o.status.code(), Some(7 | 35)) && refused < 4 && !interrupted() => {
                refused += 1;
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        };
        return Request { answer, refused };
    }
}

struct Client {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<ClientLog>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Client {
    fn start(ns: String, ca: PathBuf, pause: Duration) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(ClientLog::default()));
        let (s, l) = (stop.clone(), log.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) && !interrupted() {
                let r = request(&ns, &ca);
                if interrupted() {
                    return;
                }
                l.lock().expect("client log").requests.push(r);
                std::thread::sleep(pause);
            }
        });
        Client {
            stop,
            log,
            thread: Some(thread),
        }
    }

    fn snapshot(&self) -> Vec<Request> {
        self.log.lock().expect("client log").requests.clone()
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop();
    }
}

// ------------------------------------------------------------- the demo

struct Cycle {
    left: Vec<Option<Duration>>,
    back: Vec<Option<Duration>>,
}

struct Demo<'a> {
    lab: &'a mut Lab,
    bins: &'a Bins,
    nodes: Vec<Node>,
    ca: PathBuf,
    tty: bool,
    quick: bool,
    cycles: u32,
    phase: String,
    events: Vec<String>,
    started: Instant,
    client: Option<Client>,
}

impl<'a> Demo<'a> {
    fn new(cli: &Cli, bins: &'a Bins, lab: &'a mut Lab) -> Result<Demo<'a>> {
        let sans: Vec<String> = ["kubernetes", "localhost", "127.0.0.1", VIP_ADDR]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let pki = anyvip_lab::Pki::generate(&sans)?;
        let dir = lab.dir().to_path_buf();
        let (ca, cert, key) = (
            dir.join("ca.crt"),
            dir.join("apiserver.crt"),
            dir.join("apiserver.key"),
        );
        for (p, c) in [
            (&ca, &pki.ca_pem),
            (&cert, &pki.cert_pem),
            (&key, &pki.key_pem),
        ] {
            std::fs::write(p, c).map_err(|e| format!("{}: {e}", p.display()))?;
        }
        let mut nodes = Vec::new();
        for name in NODES {
            let control = dir.join(format!("{name}-apiserver.sock"));
            let mut api = Command::new(&bins.apiserver);
            api.arg("--node")
                .arg(name)
                .arg("--listen")
                .arg("127.0.0.1:6443")
                .arg("--control")
                .arg(&control)
                .arg("--cert")
                .arg(&cert)
                .arg("--key")
                .arg(&key);
            let spawned = lab.spawn(name, api);
            netlab::try_wait_until(
                Duration::from_secs(20),
                &format!("the apiserver on {name} to listen"),
                || {
                    interrupted()
                        || std::fs::read_to_string(&spawned.log)
                            .unwrap_or_default()
                            .contains("listening on ")
                },
            )?;
            let socket = dir.join(format!("{name}-anyvip.sock"));
            let config = node_config(lab, name, &ca, &socket, cli.bench.is_some())?;
            let anyvip_pid = spawn_anyvip(lab, bins, name, &config);
            nodes.push(Node {
                name,
                control,
                socket,
                mode: "ok",
                config,
                anyvip_pid,
            });
        }
        if interrupted() {
            return Err(STOPPED.into());
        }
        Ok(Demo {
            lab,
            bins,
            nodes,
            ca,
            tty: std::io::stdout().is_terminal(),
            quick: cli.quick,
            cycles: cli.cycles.max(1),
            phase: String::new(),
            events: Vec::new(),
            started: Instant::now(),
            client: None,
        })
    }

    fn hold(&self, normal: u64, quick: u64) -> Duration {
        Duration::from_millis(if self.quick { quick } else { normal })
    }

    fn event(&mut self, what: String) {
        let t = self.started.elapsed().as_secs_f64();
        self.events.push(format!("{t:7.2}s  {what}"));
    }

    /// Show the view for `d`, refreshed about once a second.
    fn show_for(&mut self, d: Duration) -> Result<()> {
        let end = Instant::now() + d;
        loop {
            self.render();
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            sleep(left.min(Duration::from_secs(1)))?;
        }
    }

    /// Show the view until `cond` holds (checked every 50 ms); how long it took.
    fn show_until(&mut self, what: &str, mut cond: impl FnMut(&Lab) -> bool) -> Result<Duration> {
        let start = Instant::now();
        let mut next_render = start;
        loop {
            if cond(self.lab) {
                return Ok(start.elapsed());
            }
            if start.elapsed() > CONVERGE {
                return Err(format!("timed out after {CONVERGE:?} waiting for {what}"));
            }
            if Instant::now() >= next_render {
                self.render();
                next_render = Instant::now() + Duration::from_secs(1);
            }
            sleep(Duration::from_millis(50))?;
        }
    }

    fn run(&mut self) -> Result<String> {
        self.phase = "starting: apiservers up, anyvip checking them (rise 3 × 200 ms), BGP sessions coming up".into();
        self.event("apiservers and anyvip started on n1, n2, n3".into());
        let took = self.show_until("all three paths on both routers", |lab| {
            ROUTERS
                .iter()
                .all(|(r, _)| via(lab, r) == ["n1", "n2", "n3"])
        })?;
        self.event(format!(
            "the VIP has 3 equal paths on r1 (FRR) and r2 (BIRD), {} ms after start",
            took.as_millis()
        ));
        let pause = self.hold(100, 50);
        self.client = Some(Client::start(
            self.lab.ns("c1").to_string(),
            self.ca.clone(),
            pause,
        ));
        self.phase = "steady: c1's requests to the VIP spread over the three nodes (ECMP)".into();
        self.event("client c1 starts requesting https://10.201.255.1/".into());
        let steady = self.hold(6000, 2000);
        self.show_for(steady)?;

        let mut cycles = Vec::new();
        for c in 1..=self.cycles {
            let of = if self.cycles > 1 {
                format!(" (cycle {c} of {})", self.cycles)
            } else {
                String::new()
            };
            // down
            let t0 = Instant::now();
            self.node(VICTIM).set("down")?;
            self.event(format!(
                "{VICTIM}: apiserver killed (mode down: listener closed){of}"
            ));
            self.phase = format!(
                "failover{of}: {VICTIM}'s apiserver is down; its path must leave both routers"
            );
            let left = self.track(t0, false)?;
            self.phase =
                format!("failover{of}: {VICTIM} withdrawn; requests keep flowing to n1 and n3");
            self.show_for(self.hold(5000, 1500))?;
            // back
            let t1 = Instant::now();
            self.node(VICTIM).set("ok")?;
            self.event(format!("{VICTIM}: apiserver back (mode ok){of}"));
            self.phase = format!(
                "recovery{of}: {VICTIM}'s apiserver is back; after rise 3 checks it rejoins"
            );
            let back = self.track(t1, true)?;
            self.phase = format!("recovered{of}: three paths again");
            self.show_for(self.hold(5000, 1500))?;
            cycles.push(Cycle { left, back });
        }
        if let Some(c) = self.client.as_mut() {
            c.stop();
        }
        self.phase = "done".into();
        self.render();
        Ok(self.summary(&cycles))
    }

    fn node(&mut self, name: &str) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .expect("a demo node")
    }

    /// Poll both routers' kernel tables (every few ms) until the victim's
    /// path has left (`back` false) or rejoined each; render meanwhile. The
    /// time from `t0` to each router's change.
    fn track(&mut self, t0: Instant, back: bool) -> Result<Vec<Option<Duration>>> {
        let mut seen: Vec<Option<Duration>> = vec![None; ROUTERS.len()];
        let mut next_render = Instant::now();
        while seen.iter().any(Option::is_none) {
            for (i, (r, name)) in ROUTERS.iter().enumerate() {
                if seen[i].is_none() && via(self.lab, r).iter().any(|n| n == VICTIM) == back {
                    let d = t0.elapsed();
                    seen[i] = Some(d);
                    let verb = if back { "rejoined" } else { "left" };
                    self.event(format!(
                        "{VICTIM}'s path {verb} {r} ({name}) kernel table after {} ms",
                        d.as_millis()
                    ));
                }
            }
            if t0.elapsed() > CONVERGE {
                return Err(format!(
                    "{VICTIM}'s path did not {} both routers within {CONVERGE:?}",
                    if back { "rejoin" } else { "leave" }
                ));
            }
            if Instant::now() >= next_render {
                self.render();
                next_render = Instant::now() + Duration::from_secs(1);
            }
            if interrupted() {
                return Err(STOPPED.into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.render();
        Ok(seen)
    }

    fn summary(&self, cycles: &[Cycle]) -> String {
        let requests = self
            .client
            .as_ref()
            .map(Client::snapshot)
            .unwrap_or_default();
        let failed = requests.iter().filter(|r| r.answer.is_err()).count();
        let refused: u32 = requests.iter().map(|r| r.refused).sum();
        let med = |pick: &dyn Fn(&Cycle) -> Option<Duration>| -> String {
            let mut v: Vec<u128> = cycles
                .iter()
                .filter_map(pick)
                .map(|d| d.as_millis())
                .collect();
            v.sort_unstable();
            match v.len() {
                0 => "?".into(),
                n => v[n / 2].to_string(),
            }
        };
        let how = if cycles.len() > 1 {
            format!(" (median of {} cycles)", cycles.len())
        } else {
            String::new()
        };
        let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &requests {
            if let Ok(n) = &r.answer {
                *per_node.entry(n.as_str()).or_default() += 1;
            }
        }
        let spread = per_node
            .iter()
            .map(|(n, c)| format!("{n} {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "rejoin: {VICTIM} back on FRR in {} ms, BIRD in {} ms{how} (rise 3 × 200 ms)\n\
             client: {} requests answered by {spread}; {refused} connection attempts refused or reset before the request was sent (by {VICTIM} before its withdrawal), retried\n\
             failover: {VICTIM} left FRR in {} ms, BIRD in {} ms{how}; {failed} of {} client requests failed",
            med(&|c| c.back[0]),
            med(&|c| c.back[1]),
            requests.len(),
            med(&|c| c.left[0]),
            med(&|c| c.left[1]),
            requests.len(),
        )
    }

    // --------------------------------------------------------- the view

    fn render(&mut self) {
        let mut s = String::new();
        if self.tty {
            s.push_str("\x1b[H\x1b[2J");
        } else {
            s.push_str(
                "\n----------------------------------------------------------------------\n",
            );
        }
        let _ = writeln!(
            s,
            "anyvip lab demo   lab {}   VIP {VIP}   t={:.1}s",
            self.lab.id(),
            self.started.elapsed().as_secs_f64()
        );
        let _ = writeln!(s, ">> {}\n", self.phase);

        let _ = writeln!(
            s,
            "Nodes (anyvip status --json)   apiserver  check  VIP         BGP sessions"
        );
        for n in &self.nodes {
            let st = status(&self.bins.anyvip, &n.socket);
            let (check, vip, peers) = match &st {
                Ok(v) => node_view(v),
                Err(e) => ("?".into(), "?".into(), format!("(no status: {e})")),
            };
            let _ = writeln!(
                s,
                "  {:<29} {:<10} {:<6} {:<11} {}",
                n.name, n.mode, check, vip, peers
            );
        }

        let _ = writeln!(s, "\nRouters: kernel next hops for {VIP} (ECMP)");
        for (r, name) in ROUTERS {
            let hops = via(self.lab, r);
            let _ = writeln!(
                s,
                "  {r} ({name:<4})  {} path(s): {}",
                hops.len(),
                if hops.is_empty() {
                    "-".to_string()
                } else {
                    hops.join(" ")
                }
            );
        }

        let _ = writeln!(
            s,
            "\nClient c1 -> https://{VIP_ADDR}/ (one new connection per request)"
        );
        match &self.client {
            None => {
                let _ = writeln!(s, "  (not started yet)");
            }
            Some(c) => {
                let reqs = c.snapshot();
                let recent: Vec<String> = reqs
                    .iter()
                    .rev()
                    .take(40)
                    .rev()
                    .map(|r| match &r.answer {
                        Ok(n) => n.clone(),
                        Err(_) => "XX".into(),
                    })
                    .collect();
                let _ = writeln!(s, "  last {:>2}: {}", recent.len(), recent.join(" "));
                let count = |rs: &[Request]| {
                    let mut m: BTreeMap<String, usize> =
                        NODES.iter().map(|n| (n.to_string(), 0)).collect();
                    for r in rs {
                        match &r.answer {
                            Ok(n) => *m.entry(n.clone()).or_default() += 1,
                            Err(_) => *m.entry("failed".into()).or_default() += 1,
                        }
                    }
                    m.iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join("  ")
                };
                let tail = &reqs[reqs.len().saturating_sub(20)..];
                let refused: u32 = reqs.iter().map(|r| r.refused).sum();
                let _ = writeln!(s, "  last 20:  {}", count(tail));
                let _ = writeln!(
                    s,
                    "  total {}: {}   (connections refused/reset before sending, retried: {refused})",
                    reqs.len(),
                    count(&reqs)
                );
                if let Some(Err(e)) = reqs
                    .iter()
                    .rev()
                    .find(|r| r.answer.is_err())
                    .map(|r| &r.answer)
                {
                    let _ = writeln!(s, "  last failure: {e}");
                }
            }
        }

        let _ = writeln!(s, "\nEvents");
        for e in self.events.iter().rev().take(8).rev() {
            let _ = writeln!(s, "  {e}");
        }
        if self.tty {
            s.push_str("\n(Ctrl-C: stop and tear everything down)\n");
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(s.as_bytes());
        let _ = out.flush();
    }
}

/// Check health, VIP mode, and the sessions (`r1 v4 Established`, ...).
fn node_view(v: &serde_json::Value) -> (String, String, String) {
    let check = v["checks"]
        .as_array()
        .and_then(|c| c.first())
        .and_then(|c| c["health"].as_str())
        .unwrap_or("?")
        .to_string();
    let vip = v["vips"]
        .as_array()
        .and_then(|c| c.first())
        .and_then(|c| c["mode"].as_str())
        .unwrap_or("?")
        .to_string();
    let peers = v["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let addr = p["address"].as_str().unwrap_or("?");
            let state = p["state"].as_str().unwrap_or("?");
            let state = if state == "Established" { "up" } else { state };
            format!("{}:{state}", peer_label(addr))
        })
        .collect::<Vec<_>>()
        .join(" ");
    (check, vip, peers)
}

/// `r1v4`, `r2v6`, ... from the lab's addressing plan (router side of
/// 10.201.{i}.0/30 is r1, of 10.201.{10+i}.0/30 is r2; same for IPv6).
fn peer_label(addr: &str) -> String {
    let (family, third) = if addr.contains(':') {
        ("v6", addr.split(':').nth(2))
    } else {
        ("v4", addr.split('.').nth(2))
    };
    match third.and_then(|t| t.parse::<u32>().ok()) {
        Some(n) if n < 10 => format!("r1{family}"),
        Some(_) => format!("r2{family}"),
        None => addr.to_string(),
    }
}

fn status(anyvip: &Path, socket: &Path) -> Result<serde_json::Value> {
    let out = Command::new(anyvip)
        .args(["status", "--json", "-s"])
        .arg(socket)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.lines().next().unwrap_or("failed").to_string());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

/// The nodes `router`'s kernel route to the VIP leads to: node i is behind
/// the router's `eth<i>` on both routers.
fn via(lab: &Lab, router: &str) -> Vec<String> {
    via_prefix(lab, router, VIP)
}

/// [`via`] for any prefix.
fn via_prefix(lab: &Lab, router: &str, prefix: &str) -> Vec<String> {
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

/// The node's lab config (speaker, peers) with the demo's check, VIP and
/// control socket instead of its `always = true` VIPs.
fn node_config(lab: &Lab, node: &str, ca: &Path, socket: &Path, bench: bool) -> Result<PathBuf> {
    let base_path = lab.host_path(node, "/etc/anyvip/anyvip.toml");
    let base =
        std::fs::read_to_string(&base_path).map_err(|e| format!("{}: {e}", base_path.display()))?;
    let head = base
        .split("\n[[vip]]")
        .next()
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with("# No health checks"))
        .collect::<Vec<_>>()
        .join("\n");
    // The benchmark: a short hold time (a frozen node's path goes after it)
    // and a short drain delay.
    let head = if bench {
        head.replace(
            "\nfamilies = [",
            &format!("\nhold_time = \"{BENCH_HOLD_TIME}\"\nfamilies = ["),
        )
    } else {
        head
    };
    let mut body = format!(
        r#"
# The demo: announce the VIP while the local apiserver answers /readyz.
[check.apiserver]
https = "https://127.0.0.1:6443/readyz"
ca_file = "{ca}"
interval = "200ms"
timeout = "150ms"
rise = 3
fall = 2

[[vip]]
prefix = "{VIP}"
checks = ["apiserver"]
steer = {{ port = 443, to = "127.0.0.1:6443" }}

[api]
socket = "{socket}"
"#,
        ca = ca.display(),
        socket = socket.display()
    );
    if bench {
        let _ = write!(
            body,
            "\n[drain]\ndelay = \"{}ms\"\n",
            BENCH_DRAIN_DELAY.as_millis()
        );
    }
    let path = lab.dir().join(format!("{node}-anyvip.toml"));
    std::fs::write(&path, format!("{head}\n{body}"))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

// ------------------------------------------------------------- --keep / --teardown

fn print_keep(lab: &Lab, bins: &Bins) {
    let id = lab.id();
    let dir = lab.dir().display().to_string();
    let me = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "anyvip-lab-demo".into());
    println!("\nThe lab {id} stays up. Look around:");
    println!(
        "  ip netns exec {} vtysh -N {id} -c 'show bgp summary'",
        lab.ns("r1")
    );
    println!(
        "  ip netns exec {} vtysh -N {id} -c 'show ip route {VIP}'",
        lab.ns("r1")
    );
    println!("  birdc -s {dir}/r2.ctl show protocols");
    println!("  birdc -s {dir}/r2.ctl show route {VIP} all");
    for n in NODES {
        println!(
            "  {} status -s {dir}/{n}-anyvip.sock",
            bins.anyvip.display()
        );
    }
    println!(
        "  ip netns exec {} curl -s --cacert {dir}/ca.crt https://{VIP_ADDR}/",
        lab.ns("c1")
    );
    println!("  ip netns exec {} ip route show {VIP}", lab.ns("r1"));
    println!("  logs: {dir}/*.log   namespaces: ip netns list | grep {id}");
    println!("Tear it down:\n  {me} --teardown {id}");
    println!(
        "(a later lab run by the tests or the demo also removes it: its owner process has exited)"
    );
}

/// Remove a lab left by `--keep`: everything running in its namespaces
/// (FRR, BIRD, anyvip, apiservers), the namespaces, its directories.
fn teardown(id: &str) -> Result<()> {
    if netns::owner_pid(id).is_none() || id.contains('-') || id.contains('/') {
        return Err(format!("{id:?} is not a lab id (like av12345x0)"));
    }
    let prefix = format!("{id}-");
    let mut removed = 0;
    for ns in netns::list() {
        if ns.starts_with(&prefix) {
            netns::destroy(&ns)?;
            removed += 1;
        }
    }
    for dir in [
        Path::new("/etc/frr").join(id),
        Path::new("/var/run/frr").join(id),
        std::env::temp_dir().join(format!("{}{id}", netlab::TMP_PREFIX)),
    ] {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
    }
    println!("lab {id}: {removed} namespaces removed with everything that ran in them");
    Ok(())
}

/// Start anyvip on `node` with `config`; its pid.
fn spawn_anyvip(lab: &mut Lab, bins: &Bins, node: &str, config: &Path) -> u32 {
    let mut av = Command::new(&bins.anyvip);
    av.arg("run").arg("-c").arg(config);
    av.env("ANYVIP_LOG", "info");
    lab.spawn(node, av).pid
}
