//! Lab nodes for the lab tests: stand-in apiservers with one lab CA, anyvip
//! with https checks, config builders, router views and ICMP counters.
//! Shared by tests/health_lab.rs and tests/e2e_lab.rs.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::lab::{netns, try_wait_until, wait_until, Lab, Spawned};

pub(crate) const VIP4: &str = "10.201.255.1/32";
pub(crate) const VIP6: &str = "fd00:201:ffff::1/128";
pub(crate) const VIP4_ADDR: &str = "10.201.255.1";
pub(crate) const VIP6_ADDR: &str = "fd00:201:ffff::1";
pub(crate) const NODES: [&str; 3] = ["n1", "n2", "n3"];
pub(crate) const ROUTERS: [&str; 2] = ["r1", "r2"];
/// Sessions, a router noticing a withdrawal, a path coming back: each is
/// normally well under a second here. Generous for a loaded CI machine.
pub(crate) const CONVERGE: Duration = Duration::from_secs(60);

/// Check timing used throughout (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) rise: u32,
    pub(crate) fall: u32,
}

pub(crate) const FAST: Timing = Timing {
    interval: Duration::from_millis(200),
    timeout: Duration::from_millis(150),
    rise: 3,
    fall: 2,
};

impl Timing {
    pub(crate) fn toml(&self) -> String {
        format!(
            "interval = \"{}ms\"\ntimeout = \"{}ms\"\nrise = {}\nfall = {}\n",
            self.interval.as_millis(),
            self.timeout.as_millis(),
            self.rise,
            self.fall
        )
    }
}

// ------------------------------------------------------------ the binaries

/// `anyvip-lab-apiserver`, built for this test's profile (once per process).
pub(crate) fn apiserver_bin() -> &'static Path {
    lab_bin(LabBin::Apiserver)
}

/// The binaries of the `anyvip-lab` package a test runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LabBin {
    Apiserver,
    Demo,
}

/// A binary of `anyvip-lab`, built for this test's profile (both are
/// built once per process: `cargo test --workspace` has built them
/// already, a test run alone builds them here).
pub(crate) fn lab_bin(which: LabBin) -> &'static Path {
    static BINS: OnceLock<[PathBuf; 2]> = OnceLock::new();
    let [apiserver, demo] = BINS.get_or_init(|| {
        let anyvip = Path::new(env!("CARGO_BIN_EXE_anyvip"));
        let profile_dir = anyvip.parent().expect("target/<profile>");
        let bins = [
            profile_dir.join("anyvip-lab-apiserver"),
            profile_dir.join("anyvip-lab-demo"),
        ];
        let profile = profile_dir
            .file_name()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cargo = std::env::var_os("CARGO")
            .or_else(|| option_env!("CARGO").map(Into::into))
            .unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        // Without what Cargo sets for a running test: build scripts watch
        // some of it (ring's reruns on CARGO_MANIFEST_DIR), and a value
        // here that the outer build did not see would rebuild them twice.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("CARGO_PKG_")
                || [
                    "CARGO_MANIFEST_DIR",
                    "CARGO_MANIFEST_PATH",
                    "CARGO_CRATE_NAME",
                    "CARGO_BIN_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "OUT_DIR",
                ]
                .contains(&key.as_ref())
            {
                cmd.env_remove(key.as_ref());
            }
        }
        cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "build",
            "--quiet",
            "-p",
            "anyvip-lab",
            "--bin",
            "anyvip-lab-apiserver",
            "--bin",
            "anyvip-lab-demo",
        ]);
        if let Some(target_dir) = profile_dir.parent() {
            cmd.arg("--target-dir").arg(target_dir);
        }
        match profile.as_str() {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let built = cmd.status();
        let missing: Vec<String> = bins
            .iter()
            .filter(|b| !b.exists())
            .map(|b| b.display().to_string())
            .collect();
        match built {
            Ok(s) if s.success() => {}
            _ if missing.is_empty() => eprintln!(
                "lab tests: `{}` failed ({built:?}); using the existing binaries in {}",
                netns::show(&cmd),
                profile_dir.display()
            ),
            _ => panic!(
                "lab tests: `{}` failed ({built:?}) and there is no {}",
                netns::show(&cmd),
                missing.join(", ")
            ),
        }
        bins
    });
    match which {
        LabBin::Apiserver => apiserver,
        LabBin::Demo => demo,
    }
}

/// The lab's cluster CA and the apiserver certificate it signed (for every
/// name and address a client uses: loopback and the VIPs).
pub(crate) struct Pki {
    pub(crate) ca: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

pub(crate) fn pki(lab: &Lab) -> Pki {
    let sans: Vec<String> = [
        "kubernetes",
        "localhost",
        "127.0.0.1",
        "::1",
        VIP4_ADDR,
        VIP6_ADDR,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let generated = anyvip_lab::Pki::generate(&sans).expect("generate the lab PKI");
    let pki = Pki {
        ca: lab.dir().join("ca.crt"),
        cert: lab.dir().join("apiserver.crt"),
        key: lab.dir().join("apiserver.key"),
    };
    std::fs::write(&pki.ca, generated.ca_pem).unwrap();
    std::fs::write(&pki.cert, generated.cert_pem).unwrap();
    std::fs::write(&pki.key, generated.key_pem).unwrap();
    pki
}

/// One stand-in apiserver in a node.
pub(crate) struct Api {
    pub(crate) node: String,
    pub(crate) pid: u32,
    pub(crate) control: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) log: PathBuf,
}

/// Start the stand-in apiserver in `node` as `name`, listening on
/// `listen`, TLS with the lab's certificate (or `--plain`), in `mode`.
pub(crate) fn start_api(
    lab: &mut Lab,
    node: &str,
    name: &str,
    listen: &str,
    tls: Option<&Pki>,
) -> Api {
    start_api_in(lab, node, name, listen, tls, "ok")
}

pub(crate) fn start_api_in(
    lab: &mut Lab,
    node: &str,
    name: &str,
    listen: &str,
    tls: Option<&Pki>,
    mode: &str,
) -> Api {
    let control = lab.dir().join(format!("{node}-{name}.sock"));
    let mut args: Vec<String> = vec![
        "--node".into(),
        node.into(),
        "--listen".into(),
        listen.into(),
        "--control".into(),
        control.display().to_string(),
        "--mode".into(),
        mode.into(),
    ];
    match tls {
        Some(p) => args.extend([
            "--cert".into(),
            p.cert.display().to_string(),
            "--key".into(),
            p.key.display().to_string(),
        ]),
        None => args.push("--plain".into()),
    }
    let mut api = Api {
        node: node.into(),
        pid: 0,
        control,
        args,
        log: PathBuf::new(),
    };
    api.spawn(lab);
    api
}

impl Api {
    pub(crate) fn spawn(&mut self, lab: &mut Lab) {
        let mut cmd = Command::new(apiserver_bin());
        cmd.args(&self.args);
        let s = lab.spawn(&self.node, cmd);
        self.pid = s.pid;
        self.log = s.log;
        let log = self.log.clone();
        wait_until(
            Duration::from_secs(20),
            &format!("the apiserver on {} to listen", self.node),
            || {
                std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains("listening on ")
            },
        );
    }

    /// Switch modes (`ok`, `fail`, `hang`, `down`); returns once it is in
    /// force.
    pub(crate) fn set(&self, mode: &str) {
        let mut s = UnixStream::connect(&self.control)
            .unwrap_or_else(|e| panic!("{}: {e}", self.control.display()));
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        writeln!(s, "{mode}").unwrap();
        let mut reply = String::new();
        BufReader::new(s).read_line(&mut reply).unwrap();
        assert_eq!(
            reply.trim(),
            format!("mode {mode}"),
            "apiserver on {}",
            self.node
        );
    }

    /// SIGKILL, and wait until it is gone.
    pub(crate) fn kill(&self, lab: &mut Lab) {
        assert!(lab.signal(self.pid, "KILL"));
        wait_until(Duration::from_secs(10), "the apiserver to die", || {
            lab.try_wait(self.pid).is_some()
        });
    }
}

/// Start anyvip in `node` with `config`.
pub(crate) fn anyvip(lab: &mut Lab, node: &str, config: &Path) -> Spawned {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_anyvip"));
    cmd.arg("run")
        .arg("-c")
        .arg(config)
        .env("ANYVIP_LOG", "info,anyvip=debug");
    lab.spawn(node, cmd)
}

// ------------------------------------------------------------- configs

/// `node`'s lab config (speaker and peers) with `body` (checks and VIPs)
/// instead of its `always = true` VIPs, written to the lab dir.
pub(crate) fn config(lab: &Lab, node: &str, tag: &str, body: &str) -> PathBuf {
    let base = std::fs::read_to_string(lab.host_path(node, "/etc/anyvip/anyvip.toml"))
        .expect("node config");
    let head = base
        .split("\n[[vip]]")
        .next()
        .expect("split yields one part")
        .lines()
        .filter(|l| !l.starts_with("# No health checks"))
        .collect::<Vec<_>>()
        .join("\n");
    let path = lab.dir().join(format!("{node}-{tag}.toml"));
    // Every anyvip of a lab shares the file system: each gets its own
    // control socket, where the daemon has one (`[api]`, newer than some
    // of these tests; `check-config` tells whether this build knows it).
    let socket = lab.dir().join(format!("{node}-{tag}.sock"));
    let api = format!("\n[api]\nsocket = \"{}\"\n", socket.display());
    std::fs::write(&path, format!("{head}\n\n{body}{api}")).unwrap();
    let checked = Command::new(env!("CARGO_BIN_EXE_anyvip"))
        .arg("check-config")
        .arg("-c")
        .arg(&path)
        .output()
        .expect("anyvip check-config");
    if !checked.status.success() {
        let why = String::from_utf8_lossy(&checked.stderr).into_owned()
            + &String::from_utf8_lossy(&checked.stdout);
        assert!(
            why.contains("api"),
            "{}: anyvip check-config: {why}",
            path.display()
        );
        std::fs::write(&path, format!("{head}\n\n{body}")).unwrap();
    }
    path
}

pub(crate) fn https_check(name: &str, url: &str, ca: &Path, t: Timing) -> String {
    format!(
        "[check.{name}]\nhttps = \"{url}\"\nca_file = \"{}\"\n{}\n",
        ca.display(),
        t.toml()
    )
}

pub(crate) fn vip(prefix: &str, checks: &[&str], steer: Option<(u16, &str)>) -> String {
    let checks = checks
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let steer = steer
        .map(|(port, to)| format!("steer = {{ port = {port}, to = \"{to}\" }}\n"))
        .unwrap_or_default();
    format!("[[vip]]\nprefix = \"{prefix}\"\nchecks = [{checks}]\n{steer}\n")
}

/// The usual body: one https check on the local apiserver, both VIPs
/// following it, port 443 on the VIP steered to the apiserver's 6443.
pub(crate) fn standard_body(pki: &Pki, t: Timing) -> String {
    format!(
        "{}{}{}",
        https_check("apiserver", "https://127.0.0.1:6443/readyz", &pki.ca, t),
        vip(VIP4, &["apiserver"], Some((443, "127.0.0.1:6443"))),
        // Linux never routes from the network to ::1: keep the VIP as the
        // destination and change the port (the apiserver listens on [::]).
        vip(VIP6, &["apiserver"], Some((443, "[::]:6443"))),
    )
}

/// Apiserver (HTTPS on [::]:6443) and anyvip with the standard config on
/// each of `nodes`.
pub(crate) fn standard_nodes(
    lab: &mut Lab,
    pki: &Pki,
    nodes: &[&str],
    t: Timing,
) -> Vec<(Api, Spawned)> {
    nodes
        .iter()
        .map(|&n| {
            let api = start_api(lab, n, "apiserver", "[::]:6443", Some(pki));
            let cfg = config(lab, n, "standard", &standard_body(pki, t));
            let av = anyvip(lab, n, &cfg);
            (api, av)
        })
        .collect()
}

// ------------------------------------------------------------- routers

/// The nodes a router's kernel route to exactly `prefix` leads to: node i
/// is behind the router's `eth<i>` on both routers (whatever the gateway,
/// global or link-local).
pub(crate) fn via(lab: &Lab, router: &str, prefix: &str) -> Vec<String> {
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

/// Wait until both routers' kernel routes to `prefix` lead to exactly `want`.
pub(crate) fn wait_via(lab: &Lab, prefix: &str, want: &[&str]) -> Duration {
    let start = Instant::now();
    for r in ROUTERS {
        wait_via_one(lab, r, prefix, want);
    }
    start.elapsed()
}

pub(crate) fn wait_via_one(lab: &Lab, router: &str, prefix: &str, want: &[&str]) {
    let mut last = Vec::new();
    let ok = try_wait_until(CONVERGE, "routes", || {
        last = via(lab, router, prefix);
        last == want
    });
    if ok.is_err() {
        panic!("{router}: route to {prefix} leads to {last:?}, expected {want:?}");
    }
}

/// Assert that for `hold`, neither router has a route to any of `prefixes`.
pub(crate) fn assert_no_route_for(lab: &Lab, prefixes: &[&str], hold: Duration) {
    let end = Instant::now() + hold;
    loop {
        for r in ROUTERS {
            for p in prefixes {
                let v = via(lab, r, p);
                assert!(v.is_empty(), "{r} has a route to {p} via {v:?}");
            }
        }
        if Instant::now() >= end {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until every session of `nodes` is Established on both routers.
pub(crate) fn wait_sessions(lab: &Lab, nodes: &[&str]) {
    wait_until(CONVERGE, "BGP sessions Established on r1 and r2", || {
        let frr = lab.vtysh_json("show bgp neighbors json");
        let protocols = lab.birdc("show protocols");
        nodes.iter().all(|n| {
            let i = &n[1..];
            let frr_up = [format!("10.201.{i}.2"), format!("fd00:201:{i}::2")]
                .iter()
                .all(|p| frr[p]["bgpState"] == "Established");
            let bird_up = ["v4", "v6"].iter().all(|af| {
                protocols
                    .lines()
                    .any(|l| l.starts_with(&format!("{n}_{af} ")) && l.contains("Established"))
            });
            frr_up && bird_up
        })
    });
}

pub(crate) fn time_exceeded_sent(lab: &Lab) -> BTreeMap<String, u64> {
    let nodes: Vec<String> = lab.topology().nodes.keys().cloned().collect();
    nodes
        .into_iter()
        .map(|n| {
            let snmp = lab.exec_ok(&n, &["cat", "/proc/net/snmp"]);
            let snmp6 = lab.exec_ok(&n, &["cat", "/proc/net/snmp6"]);
            let v4 = snmp_field(&snmp, "Icmp:", "OutTimeExcds");
            let v6 = snmp6
                .lines()
                .find_map(|l| l.strip_prefix("Icmp6OutTimeExcds"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .expect("Icmp6OutTimeExcds");
            (n, v4 + v6)
        })
        .collect()
}

/// A field of /proc/net/snmp: a header line and a value line per protocol.
pub(crate) fn snmp_field(snmp: &str, proto: &str, field: &str) -> u64 {
    let lines: Vec<&str> = snmp.lines().filter(|l| l.starts_with(proto)).collect();
    let [head, values] = lines.as_slice() else {
        panic!("{proto} in /proc/net/snmp: {snmp}");
    };
    let i = head
        .split_whitespace()
        .position(|f| f == field)
        .unwrap_or_else(|| panic!("{field} not in {head}"));
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}
