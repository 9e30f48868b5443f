//! Namespaces, commands and processes: thin wrappers over `ip`, `kill` and /proc.
//!
//! Every command runs through `std::process::Command` with explicit argv (no shell), and
//! every process is addressed by pid, never by name.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Namespace (and FRR pathspace) names of this harness: `av<pid>x<counter>`, then
/// `-<node>` for a namespace. The pid is the test process that made it, so a leftover
/// of a crashed run is recognised by its dead owner.
pub const PREFIX: &str = "av";

/// Run a command; Err carries the command line, exit status, stdout and stderr.
pub fn run(cmd: &mut Command) -> Result<Output, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{}: cannot start: {e}", show(cmd)))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{} failed ({}):\nstdout: {}\nstderr: {}",
            show(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout).trim_end(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        ))
    }
}

/// `ip <args>` in the root namespace (only ever used to manage our own namespaces).
pub fn ip(args: &[&str]) -> Result<Output, String> {
    run(Command::new("ip").args(args))
}

/// `ip netns exec <ns> <argv...>`: exec's the program in the namespace (same pid).
pub fn in_ns(ns: &str, argv: &[impl AsRef<std::ffi::OsStr>]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).args(argv);
    cmd
}

pub fn show(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// All network namespace names (`ip netns list`).
pub fn list() -> Vec<String> {
    match ip(&["netns", "list"]) {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect(),
        Err(_) => Vec::new(),
    }
}

pub fn exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists() || list().iter().any(|n| n == ns)
}

/// Pids of the processes in `ns` (`ip netns pids`).
pub fn pids(ns: &str) -> Vec<u32> {
    match ip(&["netns", "pids", ns]) {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // state is the first field after "(comm)"; comm may contain spaces and parens
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// A process's start time (clock ticks since boot): with the pid it names one process,
/// even if the pid is reused later.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // after "(comm)": state is field 3, starttime field 22
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// `pid` still names the process that started at `start` (and it is not a zombie).
pub fn same_process(pid: u32, start: u64) -> bool {
    alive(pid) && start_time(pid) == Some(start)
}

/// `kill -s <sig> <pid>`; false if it could not be signalled (e.g. already gone).
pub fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// SIGTERM, wait up to `grace`, then SIGKILL. For processes that are not our children
/// (daemonised FRR); our own children are reaped with `Child::wait` instead.
pub fn terminate(pid: u32, grace: Duration) {
    if !alive(pid) {
        return;
    }
    signal(pid, "TERM");
    let deadline = Instant::now() + grace;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive(pid) {
        signal(pid, "KILL");
        let deadline = Instant::now() + Duration::from_secs(2);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Kill whatever still runs in `ns`, then delete it (the veths go with it).
pub fn destroy(ns: &str) -> Result<(), String> {
    for pid in pids(ns) {
        terminate(pid, Duration::from_secs(2));
    }
    ip(&["netns", "del", ns]).map(|_| ())
}

/// `av<pid>x<n>` → pid, for names this harness makes (`av<pid>x<n>` or `av<pid>x<n>-<node>`).
pub fn owner_pid(name: &str) -> Option<u32> {
    let id = name.split('-').next()?;
    let rest = id.strip_prefix(PREFIX)?;
    let (pid, counter) = rest.split_once('x')?;
    if counter.is_empty() || !counter.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Remove what crashed runs of this harness left behind: namespaces, FRR pathspace
/// directories and temp dirs named `av<pid>x<n>...` whose `<pid>` no longer runs.
/// Names of live processes (parallel test binaries) and all other names are left alone.
pub fn remove_stale() {
    let stale = |name: &str| owner_pid(name).is_some_and(|pid| !alive(pid));
    for ns in list() {
        if stale(&ns) {
            eprintln!("lab: removing leftover namespace {ns} of a dead run");
            if let Err(e) = destroy(&ns) {
                eprintln!("lab: {e}");
            }
        }
    }
    let tmp = std::env::temp_dir();
    for (dir, strip) in [
        (Path::new("/etc/frr"), ""),
        (Path::new("/var/run/frr"), ""),
        (tmp.as_path(), super::TMP_PREFIX),
    ] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_prefix(strip) else {
                continue;
            };
            if e.path().is_dir() && stale(id) {
                eprintln!(
                    "lab: removing leftover {} of a dead run",
                    e.path().display()
                );
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}
