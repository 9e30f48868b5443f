//! The systemd side of anyvip: the shipped unit (`config/anyvip.service`)
//! passes `systemd-analyze verify`, its `systemd-analyze security` exposure
//! is at most 2.0, it grants exactly what the daemon needs, the sysusers and
//! sysctl snippets beside it are valid, and `anyvip::notify` delivers each
//! notification to a test-owned `NOTIFY_SOCKET`, from the calling process.
//!
//! The notify tests run the calls in a child process (this test binary
//! again, selecting [`notify_helper`] by name and mode by an environment
//! variable): the module reads process-global environment variables, which
//! must not be changed while other tests run on other threads.

mod notify_util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use notify_util::{Notification, NotifySocket};

const CONFIG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
const SHIPPED_EXEC_START: &str = "ExecStart=/usr/local/bin/anyvip run -c /etc/anyvip/anyvip.toml";
const MAX_EXPOSURE: f64 = 2.0;
/// Selects the helper's mode in the child process.
const HELPER: &str = "ANYVIP_TEST_NOTIFY_HELPER";
const WAIT: Duration = Duration::from_secs(30);

fn unit_text() -> String {
    std::fs::read_to_string(Path::new(CONFIG_DIR).join("anyvip.service")).expect("the unit file")
}

/// The unit as shipped, in `dir`, with ExecStart= pointing at the binary
/// under test (verify checks that the program exists).
fn unit_copy(dir: &Path) -> PathBuf {
    let text = unit_text();
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("ExecStart="))
            .collect::<Vec<_>>(),
        [SHIPPED_EXEC_START],
        "the unit must start exactly `anyvip run -c /etc/anyvip/anyvip.toml`"
    );
    let copy = text.replace(
        SHIPPED_EXEC_START,
        &format!(
            "ExecStart={} run -c /etc/anyvip/anyvip.toml",
            env!("CARGO_BIN_EXE_anyvip")
        ),
    );
    let path = dir.join("anyvip.service");
    std::fs::write(&path, copy).expect("write the unit copy");
    path
}

fn run(cmd: &mut Command) -> Output {
    let line = format!("{cmd:?}");
    cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {line}: {e} (systemd-analyze and systemd-sysusers come with Debian's `systemd` package)")
    })
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let dir = tempfile::tempdir().expect("temp dir");
    let unit = unit_copy(dir.path());
    let out = run(Command::new("systemd-analyze").arg("verify").arg(&unit));
    // verify exits 0 even for unknown keys or values it cannot parse (it
    // ignores them, like systemd would): any word about our file fails.
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let about_us: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("anyvip.service"))
        .collect();
    assert!(about_us.is_empty(), "verify complained:\n{said}");
}

/// `Overall exposure level for anyvip.service: 1.6 OK`
fn overall_exposure(output: &str) -> Option<f64> {
    let line = output
        .lines()
        .find(|l| l.contains("Overall exposure level for"))?;
    let (_, rest) = line.rsplit_once(": ")?;
    rest.split_whitespace().next()?.parse().ok()
}

#[test]
fn unit_exposure_is_at_most_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let unit = unit_copy(dir.path());
    let out = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit));
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let exposure = overall_exposure(&String::from_utf8_lossy(&out.stdout))
        .unwrap_or_else(|| panic!("no overall exposure level in:\n{said}"));
    assert!(
        exposure <= MAX_EXPOSURE,
        "exposure {exposure} > {MAX_EXPOSURE}:\n{said}"
    );
}

#[test]
fn exposure_line_parses() {
    assert_eq!(
        overall_exposure("x\n→ Overall exposure level for anyvip.service: 1.6 OK 🙂\n"),
        Some(1.6)
    );
    assert_eq!(overall_exposure("nothing"), None);
}

/// `[Service]` settings: key -> every value, in order (later lines of a
/// list-valued key add to it; an empty assignment resets it).
fn service_section(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut section = "";
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if section != "[Service]" {
            continue;
        }
        let (k, v) = line.split_once('=').expect("key=value");
        let values = map.entry(k.to_string()).or_default();
        if v.is_empty() {
            values.clear();
        } else {
            values.push(v.to_string());
        }
    }
    map
}

fn one<'a>(service: &'a BTreeMap<String, Vec<String>>, key: &str) -> &'a str {
    match service.get(key).map(Vec::as_slice) {
        Some([v]) => v,
        other => panic!("[Service] {key}= should be set once, is {other:?}"),
    }
}

fn words(service: &BTreeMap<String, Vec<String>>, key: &str) -> Vec<String> {
    let mut w: Vec<String> = service
        .get(key)
        .into_iter()
        .flatten()
        .flat_map(|v| v.split_whitespace().map(str::to_string))
        .collect();
    w.sort();
    w
}

fn seconds(v: &str) -> Duration {
    humantime::parse_duration(v).unwrap_or_else(|e| panic!("{v}: {e}"))
}

/// What the daemon needs and the design promises, and the settings that
/// would quietly break it (each one looks like a harmless hardening step).
#[test]
fn unit_grants_what_anyvip_needs_and_nothing_more() {
    let service = service_section(&unit_text());
    // Type=notify-reload needs systemd 253; Debian 12 has 252.
    assert_eq!(one(&service, "Type"), "notify");
    assert_eq!(one(&service, "NotifyAccess"), "main");
    assert_eq!(one(&service, "ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(one(&service, "Restart"), "on-failure");
    let watchdog = seconds(one(&service, "WatchdogSec"));
    assert!(watchdog >= Duration::from_secs(2), "{watchdog:?}");
    // Room for the default drain, the withdrawal and Cease grace times
    // (2 s + 3 s in src/daemon/) and a final `nft` run (10 s at most).
    let stop = anyvip::config::DEFAULT_DRAIN_DELAY + Duration::from_secs(2 + 3 + 10);
    let timeout = seconds(one(&service, "TimeoutStopSec"));
    assert!(
        timeout > stop,
        "TimeoutStopSec={timeout:?}, a stop may take {stop:?}"
    );
    assert_eq!(one(&service, "KillMode"), "mixed");

    let caps = ["CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"];
    assert_eq!(words(&service, "CapabilityBoundingSet"), caps);
    assert_ne!(one(&service, "User"), "root");
    // Not root: capabilities reach the daemon (and `nft`) only as ambient ones.
    assert_eq!(words(&service, "AmbientCapabilities"), caps);
    assert_eq!(
        words(&service, "RestrictAddressFamilies"),
        ["AF_INET", "AF_INET6", "AF_NETLINK", "AF_UNIX"]
    );
    assert_eq!(one(&service, "RuntimeDirectory"), "anyvip");
    assert_eq!(one(&service, "ProtectSystem"), "strict");
    // /proc/sys stays read-only except the one subtree anyvip may write.
    assert_eq!(one(&service, "ProtectKernelTunables"), "yes");
    assert_eq!(
        words(&service, "ReadWritePaths"),
        ["/proc/sys/net/ipv4/conf"]
    );
    // ProcSubset=pid hides /proc/sys (the sysctls are read at start);
    // PrivateUsers= would leave CAP_NET_ADMIN powerless over the host's
    // network namespace; PrivateNetwork= would hide it altogether.
    for (key, breaks) in [
        ("ProcSubset", "pid"),
        ("PrivateUsers", "yes"),
        ("PrivateNetwork", "yes"),
    ] {
        assert_ne!(
            service.get(key).and_then(|v| v.last()).map(String::as_str),
            Some(breaks),
            "{key}={breaks} breaks anyvip"
        );
    }
}

#[test]
fn unit_user_is_the_one_sysusers_creates() {
    let service = service_section(&unit_text());
    let user = one(&service, "User");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("etc")).expect("etc");
    let out = run(Command::new("systemd-sysusers")
        .arg("--dry-run")
        .arg(format!("--root={}", dir.path().display()))
        .arg(Path::new(CONFIG_DIR).join("anyvip.sysusers")));
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("Creating user '{user}'")),
        "sysusers does not create {user}:\n{said}"
    );
    assert!(
        said.contains(&format!("Creating group '{}'", one(&service, "Group"))),
        "{said}"
    );
}

#[test]
fn sysctl_snippet_is_valid_and_covers_what_anyvip_sets() {
    let file = Path::new(CONFIG_DIR).join("anyvip-sysctl.conf");
    let out = run(Command::new("sysctl").arg("--dry-run").arg("-p").arg(&file));
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let body = std::fs::read_to_string(&file).expect("read");
    // The values src/address.rs (suppress_arp) and src/steer
    // (route_localnet) would otherwise write.
    for needed in [
        "net.ipv4.conf.all.arp_ignore = 1",
        "net.ipv4.conf.all.arp_announce = 2",
        "net.ipv4.conf.all.route_localnet = 1",
    ] {
        assert!(body.contains(needed), "{} lacks {needed}", file.display());
    }
}

// ---- anyvip::notify, end to end ------------------------------------------

/// Runs in the child process only (the parent's run of it returns at once).
#[test]
fn notify_helper() {
    use anyvip::notify;
    let Ok(mode) = std::env::var(HELPER) else {
        return;
    };
    match mode.as_str() {
        "sequence" => {
            assert!(notify::enabled());
            notify::ready("2 peers, 1 VIP: waiting for checks").expect("ready");
            let watchdog = notify::watchdog_interval().expect("a watchdog");
            notify::status(&format!("watchdog every {}us", watchdog.as_micros())).expect("status");
            notify::watchdog_ping().expect("ping");
            notify::reloading().expect("reloading");
            notify::ready("reloaded\nREADY=0").expect("ready again");
            notify::stopping().expect("stopping");
            notify::extend_timeout(Duration::from_secs(20)).expect("extend");
        }
        "watchdog" => {
            let interval = notify::watchdog_interval();
            notify::status(&format!("watchdog {interval:?}")).expect("status");
        }
        "unset" => {
            assert!(!notify::enabled());
            assert_eq!(notify::watchdog_interval(), None);
            notify::ready("x").expect("no-op");
            notify::status("x").expect("no-op");
            notify::reloading().expect("no-op");
            notify::watchdog_ping().expect("no-op");
            notify::stopping().expect("no-op");
            notify::extend_timeout(Duration::from_secs(1)).expect("no-op");
        }
        other => panic!("unknown helper mode {other}"),
    }
}

/// This test binary again, running only [`notify_helper`] in `mode`.
fn helper(mode: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
    cmd.args([
        "--exact",
        "notify_helper",
        "--test-threads=1",
        "--nocapture",
    ])
    .env(HELPER, mode);
    cmd
}

fn run_helper(cmd: &mut Command) -> u32 {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the helper");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for the helper");
    assert!(out.status.success(), "helper failed:\n{}", text(&out));
    pid
}

fn monotonic_now_usec() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a timespec we own.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) },
        0
    );
    ts.tv_sec as u128 * 1_000_000 + ts.tv_nsec as u128 / 1_000
}

fn sequence_arrives(socket: &NotifySocket) {
    let pid = run_helper(socket.configure(&mut helper("sequence"), Some(Duration::from_secs(3))));
    let all: Vec<Notification> = socket.collect(Duration::from_millis(500));
    let show = || format!("{all:#?}");
    assert_eq!(all.len(), 7, "{}", show());
    // systemd (NotifyAccess=main) only accepts the main process's messages.
    assert!(all.iter().all(|n| n.pid == Some(pid)), "{}", show());

    assert!(all[0].has("READY", "1"), "{}", show());
    assert_eq!(
        all[0].get("STATUS"),
        Some("2 peers, 1 VIP: waiting for checks")
    );
    // Half of WATCHDOG_USEC, per sd_watchdog_enabled(3).
    assert_eq!(all[1].get("STATUS"), Some("watchdog every 1500000us"));
    assert_eq!(all[2].raw, "WATCHDOG=1\n");
    assert!(all[3].has("RELOADING", "1"), "{}", show());
    let stamp: u128 = all[3]
        .get("MONOTONIC_USEC")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("RELOADING=1 without MONOTONIC_USEC: {}", show()));
    assert!(stamp > 0 && stamp <= monotonic_now_usec(), "{stamp}");
    // A status text cannot smuggle in another field.
    assert!(all[4].has("READY", "1"), "{}", show());
    assert_eq!(all[4].get("STATUS"), Some("reloaded READY=0"));
    assert_eq!(all[4].fields.len(), 2, "{}", show());
    assert!(all[5].has("STOPPING", "1"), "{}", show());
    assert!(all[6].has("EXTEND_TIMEOUT_USEC", "20000000"), "{}", show());
}

#[test]
fn notifications_reach_a_socket_path_in_order_from_the_caller() {
    sequence_arrives(&NotifySocket::new());
}

#[test]
fn notifications_reach_an_abstract_socket() {
    sequence_arrives(&NotifySocket::new_abstract());
}

#[test]
fn a_watchdog_for_another_process_is_not_ours() {
    let socket = NotifySocket::new();
    let mut cmd = helper("watchdog");
    socket.configure(&mut cmd, Some(Duration::from_secs(4)));
    // The pid of a process that is certainly not the helper.
    run_helper(cmd.env("WATCHDOG_PID", "1"));
    let status = socket.wait_for("the helper's status", WAIT, |n| n.get("STATUS").is_some());
    assert_eq!(status.get("STATUS"), Some("watchdog None"));

    let mut cmd = helper("watchdog");
    socket.configure(&mut cmd, None);
    run_helper(&mut cmd);
    let status = socket.wait_for("the helper's status", WAIT, |n| n.get("STATUS").is_some());
    assert_eq!(status.get("STATUS"), Some("watchdog None"));
}

#[test]
fn without_notify_socket_every_call_is_a_no_op() {
    let mut cmd = helper("unset");
    cmd.env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID");
    run_helper(&mut cmd);
}
