//! The memory and idle-CPU measurement (`--memory [SECS]`): anyvip next to
//! BIRD as the node's BGP speaker, doing the same job in one run.
//!
//! The job (issue 14): two eBGP sessions (to r1, FRR, and r2, BIRD, over
//! IPv4) and two VIP /32s (10.201.255.1 and .2) announced. On the lab's
//! topology, side by side:
//!   n1  anyvip, an https check every 200 ms on the stand-in apiserver
//!       (127.0.0.1:6443, its own CA), both VIPs depending on it;
//!   n3  anyvip, an exec check (`true`) every 200 ms;
//!   n2  BIRD 2 as the speaker: the two /32s as static routes exported to
//!       the same two routers (no health check: BIRD has none).
//!
//! Once every session is Established and both /32s have the three paths
//! on both routers, the steady state is held for SECS (default 60); then
//! per speaker: RSS and threads (/proc/PID/status), PSS and private dirty
//! (/proc/PID/smaps_rollup), open fds, CPU seconds per minute over the
//! steady window (/proc/PID/stat) and, for anyvip, the probes run in it
//! (`anyvip status --json`) and the CPU per probe (the whole process's CPU
//! divided by the probes: keepalives are included, they are a small part).
//! gobgpd and ExaBGP are measured only as "not installed" (no config is
//! written for them here).
//!
//! Everything runs in the lab's namespaces and is torn down with it (the
//! lab's `Drop`, also on errors, panics and Ctrl-C).

use super::*;

/// The two /32s every speaker announces.
const MEM_VIPS: [&str; 2] = ["10.201.255.1/32", "10.201.255.2/32"];
/// The probe interval of both anyvip checks.
const PROBE_INTERVAL_MS: u64 = 200;

/// One speaker under measurement.
struct Speaker {
    label: String,
    node: &'static str,
    pid: u32,
    /// anyvip's control socket (probe counts); `None` for BIRD.
    socket: Option<PathBuf>,
}

/// What /proc says about a process at one moment.
#[derive(Debug, Default, Clone)]
struct Sample {
    rss_kb: u64,
    hwm_kb: u64,
    pss_kb: u64,
    private_dirty_kb: u64,
    threads: u64,
    fds: u64,
    /// utime + stime, in seconds.
    cpu_s: f64,
}

/// `Key:   123 kB` from a /proc file, in kB.
fn kb(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn sample(pid: u32) -> Result<Sample> {
    let read = |f: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{f}"))
            .map_err(|e| format!("/proc/{pid}/{f}: {e} (did the process exit?)"))
    };
    let status = read("status")?;
    let rollup = read("smaps_rollup")?;
    let stat = read("stat")?;
    // Fields after the command name (which may hold spaces): utime and
    // stime are fields 14 and 15 of proc(5), 12th and 13th after ") ".
    let after = stat.rsplit_once(") ").map(|(_, s)| s).unwrap_or_default();
    let ticks: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse().ok())
        .collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    Ok(Sample {
        rss_kb: kb(&status, "VmRSS"),
        hwm_kb: kb(&status, "VmHWM"),
        pss_kb: kb(&rollup, "Pss"),
        private_dirty_kb: kb(&rollup, "Private_Dirty"),
        threads: kb(&status, "Threads"),
        fds,
        cpu_s: ticks.iter().sum::<u64>() as f64 / hz,
    })
}

/// Probes run so far by every check of the anyvip behind `socket`.
fn probes(anyvip: &Path, socket: &Path) -> Result<u64> {
    let v = status(anyvip, socket)?;
    Ok(v["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["probes"].as_u64())
        .sum())
}

/// The speaker section and the two sessions of an anyvip node (`i` is the
/// node's number in the lab's addressing plan).
fn anyvip_config(i: u32, check: &str, socket: &Path) -> String {
    let vips: String = MEM_VIPS
        .iter()
        .map(|p| format!("\n[[vip]]\nprefix = \"{p}\"\nchecks = [\"job\"]\n"))
        .collect();
    format!(
        r#"# anyvip-lab-demo --memory: two eBGP sessions, two VIP /32s
[speaker]
asn = 65001
router_id = "10.201.254.1{i}"
listen = ["0.0.0.0:179"]

[[peer]]
address = "10.201.{i}.1"
asn = 65000
families = ["ipv4"]

[[peer]]
address = "10.201.1{i}.1"
asn = 65100
families = ["ipv4"]

[check.job]
{check}
interval = "{PROBE_INTERVAL_MS}ms"
timeout = "150ms"
rise = 3
fall = 2
{vips}
[api]
socket = "{socket}"
"#,
        socket = socket.display()
    )
}

/// The same job for BIRD 2 on node `i`: the /32s as static routes (next
/// hop self, as eBGP does), exported to both routers, nothing imported.
fn bird_config(i: u32) -> String {
    let routes: String = MEM_VIPS
        .iter()
        .map(|p| format!("  route {p} blackhole;\n"))
        .collect();
    format!(
        r#"# anyvip-lab-demo --memory: BIRD as the node's speaker, same job as anyvip
log stderr all;
router id 10.201.254.1{i};
protocol device {{ scan time 10; }}
protocol static vips {{
  ipv4;
{routes}}}
template bgp up {{
  local as 65001;
  ipv4 {{ import none; export where proto = "vips"; }};
}}
protocol bgp r1 from up {{ neighbor 10.201.{i}.1 as 65000; }}
protocol bgp r2 from up {{ neighbor 10.201.1{i}.1 as 65100; }}
"#
    )
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Both sessions of a speaker Established.
fn established(bins: &Bins, lab: &Lab, s: &Speaker) -> bool {
    match &s.socket {
        Some(socket) => status(&bins.anyvip, socket).is_ok_and(|v| {
            let peers = v["peers"].as_array().cloned().unwrap_or_default();
            peers.len() == 2 && peers.iter().all(|p| p["state"] == "Established")
        }),
        None => {
            let sock = lab.dir().join(format!("{}-bird.ctl", s.node));
            let out = Command::new("birdc")
                .arg("-s")
                .arg(&sock)
                .arg("show protocols")
                .stdin(Stdio::null())
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            out.lines()
                .filter(|l| l.starts_with("r1 ") || l.starts_with("r2 "))
                .filter(|l| l.contains("Established"))
                .count()
                == 2
        }
    }
}

/// Every /32 on both routers through all three nodes (`eth1`-`eth3`).
fn routes_everywhere(lab: &Lab) -> bool {
    ROUTERS.iter().all(|(r, _)| {
        MEM_VIPS.iter().all(|vip| {
            let devs: Vec<String> = lab
                .kernel_routes(r, vip)
                .into_iter()
                .map(|h| h.dev)
                .collect();
            ["eth1", "eth2", "eth3"]
                .iter()
                .all(|d| devs.iter().any(|x| x == d))
        })
    })
}

fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .any(|d| d.join(program).exists())
}

/// `anyvip-lab-demo --memory SECS`: build the lab, measure, print the
/// table; the lab is torn down on every path out.
pub(crate) fn main(cli: &Cli, bins: &Bins, steady: Duration) -> ExitCode {
    println!(
        "anyvip memory/CPU measurement: anyvip (https and exec checks) and BIRD as the node speaker, \
         2 eBGP sessions and 2 VIP /32s each, {} s steady state ...",
        steady.as_secs()
    );
    let mut lab = Lab::start_with(Options {
        topology: cli.topology.clone(),
        ..Options::default()
    });
    let result = measure(&mut lab, bins, steady);
    let code = match &result {
        Ok(table) => {
            println!("{table}");
            ExitCode::SUCCESS
        }
        Err(e) if e == STOPPED => ExitCode::from(130),
        Err(e) => {
            eprintln!("\nanyvip-lab-demo --memory: {e}");
            ExitCode::FAILURE
        }
    };
    lab.teardown();
    code
}

fn measure(lab: &mut Lab, bins: &Bins, steady: Duration) -> Result<String> {
    let dir = lab.dir().to_path_buf();
    // n1: the stand-in apiserver and anyvip with an https check on it.
    let ca = dir.join("n1-ca.crt");
    let mut api = Command::new(&bins.apiserver);
    api.args(["--node", "n1", "--listen", "127.0.0.1:6443", "--ca-out"])
        .arg(&ca);
    let spawned = lab.spawn("n1", api);
    netlab::try_wait_until(
        Duration::from_secs(20),
        "the apiserver on n1 to listen",
        || {
            interrupted()
                || std::fs::read_to_string(&spawned.log)
                    .unwrap_or_default()
                    .contains("listening on ")
        },
    )?;
    let mut speakers = Vec::new();
    for (i, node, label, check) in [
        (
            1,
            "n1",
            "anyvip, https check",
            format!(
                "https = \"https://127.0.0.1:6443/readyz\"\nca_file = \"{}\"",
                ca.display()
            ),
        ),
        (
            3,
            "n3",
            "anyvip, exec check",
            "exec = [\"true\"]".to_string(),
        ),
    ] {
        let socket = dir.join(format!("{node}-anyvip.sock"));
        let config = dir.join(format!("{node}-memory.toml"));
        write(&config, &anyvip_config(i, &check, &socket))?;
        let pid = spawn_anyvip(lab, bins, node, &config);
        speakers.push(Speaker {
            label: label.to_string(),
            node,
            pid,
            socket: Some(socket),
        });
    }
    let conf = dir.join("n2-bird.conf");
    write(&conf, &bird_config(2))?;
    let mut bird = Command::new("bird");
    bird.arg("-f")
        .arg("-c")
        .arg(&conf)
        .arg("-s")
        .arg(dir.join("n2-bird.ctl"))
        .arg("-P")
        .arg(dir.join("n2-bird.pid"));
    let pid = lab.spawn("n2", bird).pid;
    speakers.push(Speaker {
        label: "BIRD 2 (no health check)".to_string(),
        node: "n2",
        pid,
        socket: None,
    });

    println!("waiting for the sessions to be Established and both /32s on both routers ...");
    let start = Instant::now();
    loop {
        if interrupted() {
            return Err(STOPPED.into());
        }
        for s in &speakers {
            if lab.try_wait(s.pid).is_some() {
                return Err(format!(
                    "{} on {} exited (logs in {})",
                    s.label,
                    s.node,
                    dir.display()
                ));
            }
        }
        if speakers.iter().all(|s| established(bins, lab, s)) && routes_everywhere(lab) {
            break;
        }
        if start.elapsed() > CONVERGE {
            return Err(format!(
                "sessions or routes not up within {CONVERGE:?} (logs in {})",
                dir.display()
            ));
        }
        sleep(Duration::from_millis(200))?;
    }
    println!(
        "converged after {} ms; holding the steady state for {} s ...",
        start.elapsed().as_millis(),
        steady.as_secs()
    );

    let mut before = Vec::new();
    for s in &speakers {
        let n = match &s.socket {
            Some(sock) => Some(probes(&bins.anyvip, sock)?),
            None => None,
        };
        before.push((sample(s.pid)?, n));
    }
    let t0 = Instant::now();
    sleep(steady)?;
    let minutes = t0.elapsed().as_secs_f64() / 60.0;
    if !routes_everywhere(lab) {
        return Err("a /32 left a router during the steady state".into());
    }

    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nmemory and idle CPU, lab {}: 2 eBGP sessions (FRR r1, BIRD r2; IPv4), 2 VIP /32s, \
         {:.0} s steady state; checks every {PROBE_INTERVAL_MS} ms",
        lab.id(),
        minutes * 60.0
    );
    let _ = writeln!(
        t,
        "\n{:<26} {:>8} {:>8} {:>8} {:>9} {:>7} {:>4} {:>10} {:>10} {:>12}",
        "speaker",
        "RSS",
        "peak RSS",
        "PSS",
        "priv.dirty",
        "threads",
        "fds",
        "CPU-s/min",
        "probes/min",
        "CPU/probe"
    );
    for (s, (b, n0)) in speakers.iter().zip(&before) {
        let a = sample(s.pid)?;
        let cpu_per_min = (a.cpu_s - b.cpu_s) / minutes;
        let (rate, per_probe) = match (&s.socket, n0) {
            (Some(sock), Some(n0)) => {
                let n = probes(&bins.anyvip, sock)?.saturating_sub(*n0);
                let per = if n > 0 {
                    format!("{:.2} ms", (a.cpu_s - b.cpu_s) * 1000.0 / n as f64)
                } else {
                    "-".to_string()
                };
                (format!("{:.0}", n as f64 / minutes), per)
            }
            _ => ("-".to_string(), "-".to_string()),
        };
        let mb = |k: u64| format!("{:.1} MB", k as f64 / 1024.0);
        let _ = writeln!(
            t,
            "{:<26} {:>8} {:>8} {:>8} {:>9} {:>7} {:>4} {:>10.3} {:>10} {:>12}",
            s.label,
            mb(a.rss_kb),
            mb(a.hwm_kb),
            mb(a.pss_kb),
            mb(a.private_dirty_kb),
            a.threads,
            a.fds,
            cpu_per_min,
            rate,
            per_probe
        );
    }
    for (name, program) in [("gobgpd", "gobgpd"), ("ExaBGP", "exabgp")] {
        let why = if installed(program) {
            "installed, not measured (no configuration for it here)"
        } else {
            "not installed"
        };
        let _ = writeln!(t, "{name:<26} {why}");
    }
    let _ = writeln!(
        t,
        "\nRSS, peak RSS (VmHWM), threads: /proc/PID/status; PSS, private dirty: /proc/PID/smaps_rollup; \
         CPU: utime+stime over the steady window (1 s = 1 CPU-second); CPU/probe = the process's CPU / probes run \
         (BGP keepalives included). The apiserver's own CPU and the exec'd program's are not counted."
    );
    Ok(t)
}
