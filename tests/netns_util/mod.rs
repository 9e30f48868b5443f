//! Tiny network-namespace topologies for the data-plane tests: namespaces
//! named `avs<pid>x<n>-<name>`, veth pairs created directly inside them (the
//! root namespace's links, addresses and nftables are never touched), and
//! [`in_ns`] to run test code in a namespace on a thread of its own.
//! Everything is removed on drop, also when a test panics; namespaces left by
//! a test process that was killed are removed by the next run.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const PREFIX: &str = "avs";
static NEXT: AtomicUsize = AtomicUsize::new(0);

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Run a command; panic with everything it said if it fails.
pub fn run(cmd: &mut Command) -> String {
    let line = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{line}: cannot start: {e}"));
    assert!(
        out.status.success(),
        "{line} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The namespaces of one test.
pub struct Lab {
    prefix: String,
    names: Vec<String>,
}

impl Lab {
    /// `None`, after saying so loudly, when not root: the tests need to
    /// create namespaces (CI runs as root).
    pub fn new(test: &str) -> Option<Lab> {
        if !is_root() {
            // Straight to stderr, past the test harness's output capture.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: needs root (network namespaces, nftables)"
            );
            return None;
        }
        remove_leftovers();
        let prefix = format!(
            "{PREFIX}{}x{}-",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Some(Lab {
            prefix,
            names: Vec::new(),
        })
    }

    /// A new namespace with `lo` up and no IPv6 duplicate address detection
    /// (addresses are usable at once); returns its full name.
    pub fn ns(&mut self, short: &str) -> String {
        let name = format!("{}{short}", self.prefix);
        run(Command::new("ip").args(["netns", "add", &name]));
        self.names.push(name.clone());
        for (key, value) in [
            ("net.ipv6.conf.all.accept_dad", "0"),
            ("net.ipv6.conf.default.accept_dad", "0"),
            // Every ICMP error is sent and counted (no rate limit hides one).
            ("net.ipv4.icmp_ratelimit", "0"),
            ("net.ipv6.icmp.ratelimit", "0"),
        ] {
            self.sysctl(&name, key, value);
        }
        self.ip(&name, &["link", "set", "lo", "up"]);
        name
    }

    /// A veth pair `a_if` (in `a`) — `b_if` (in `b`), both up.
    pub fn veth(&self, a: &str, a_if: &str, b: &str, b_if: &str) {
        self.ip(
            a,
            &[
                "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b,
            ],
        );
        self.ip(a, &["link", "set", a_if, "up"]);
        self.ip(b, &["link", "set", b_if, "up"]);
    }

    /// `ip -n <ns> <args>`
    pub fn ip(&self, ns: &str, args: &[&str]) -> String {
        run(Command::new("ip").args(["-n", ns]).args(args))
    }

    /// `ip netns exec <ns> <argv>`
    pub fn exec(&self, ns: &str, argv: &[&str]) -> String {
        run(Command::new("ip").args(["netns", "exec", ns]).args(argv))
    }

    pub fn sysctl(&self, ns: &str, key: &str, value: &str) {
        self.exec(ns, &["sysctl", "-qw", &format!("{key}={value}")]);
    }

    pub fn sysctl_get(&self, ns: &str, key: &str) -> String {
        self.exec(ns, &["sysctl", "-n", key]).trim().to_string()
    }

    pub fn forwarding(&self, ns: &str) {
        self.sysctl(ns, "net.ipv4.ip_forward", "1");
        self.sysctl(ns, "net.ipv6.conf.all.forwarding", "1");
    }

    /// One value of `/proc/net/snmp` (`Icmp`, `InTimeExcds`) or
    /// `/proc/net/snmp6` (`Icmp6InTimeExcds`) in `ns`.
    pub fn snmp(&self, ns: &str, group: &str, field: &str) -> u64 {
        if group.ends_with('6') {
            let text = self.exec(ns, &["cat", "/proc/net/snmp6"]);
            let key = format!("{group}{field}");
            return text
                .lines()
                .find_map(|l| {
                    let mut it = l.split_whitespace();
                    (it.next() == Some(key.as_str())).then(|| it.next().unwrap().parse().unwrap())
                })
                .unwrap_or_else(|| panic!("no {key} in /proc/net/snmp6"));
        }
        let text = self.exec(ns, &["cat", "/proc/net/snmp"]);
        let prefix = format!("{group}:");
        let mut lines = text.lines().filter(|l| l.starts_with(&prefix));
        let names = lines.next().unwrap().split_whitespace();
        let values = lines.next().unwrap().split_whitespace();
        names
            .zip(values)
            .find(|(n, _)| *n == field)
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or_else(|| panic!("no {group} {field} in /proc/net/snmp"))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for name in self.names.drain(..).rev() {
            let _ = Command::new("ip").args(["netns", "del", &name]).output();
        }
    }
}

/// Namespaces of ours whose test process is gone.
fn remove_leftovers() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('x'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// Run `f` on a new thread that has entered namespace `ns` (by its full
/// name). Sockets, netlink connections, `/proc/sys/net` files and child
/// processes created there belong to `ns`. A panic in `f` is the caller's.
pub fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::scope(|scope| {
        let handle = scope.spawn(move || {
            let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: a valid namespace fd; setns only changes this thread.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            let now = std::fs::metadata("/proc/thread-self/ns/net").unwrap();
            let want = file.metadata().unwrap();
            assert_eq!(
                (now.dev(), now.ino()),
                (want.dev(), want.ino()),
                "thread is not in {ns}"
            );
            f()
        });
        handle
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// Run a future on a current-thread tokio runtime (inside [`in_ns`]).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Poll `f` every 50 ms until it is true or `timeout` passed.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
