//! Smoke test of the lab demo (`scripts/demo`): runs `anyvip-lab-demo
//! --quick` end to end, non-interactively, and checks that it exits 0,
//! prints the failover summary with no failed client request, and leaves
//! nothing behind (namespaces, processes, directories of its lab).
//!
//! Needs root (CI is root) and skips loudly otherwise. The demo runs the
//! `anyvip` daemon, which lives in the root package: it is built here for
//! this test's profile (a no-op when up to date) and passed with
//! `--anyvip`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// `anyvip`, built for this test's profile next to the demo binary.
fn anyvip_bin(profile_dir: &Path) -> PathBuf {
    let bin = profile_dir.join("anyvip");
    let profile = profile_dir
        .file_name()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    // Without what Cargo sets for a running test (build scripts watch some
    // of it; a value the outer build did not see would rebuild them).
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
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "-p", "anyvip", "--bin", "anyvip"]);
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
    match built {
        Ok(s) if s.success() => {}
        _ if bin.exists() => eprintln!("demo: building anyvip failed ({built:?}); using {bin:?}"),
        _ => panic!("demo: building anyvip failed ({built:?}) and there is no {bin:?}"),
    }
    bin
}

/// Processes whose command line mentions `needle` (the lab id is in every
/// command the demo starts: config paths, sockets, FRR's pathspace).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == std::process::id().to_string() {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(format!("{name}: {cmdline}"));
        }
    }
    found
}

#[test]
fn the_demo_runs_end_to_end_and_leaves_nothing_behind() {
    if !is_root() {
        eprintln!(
            "\n!!!!!!!! SKIPPED the_demo_runs_end_to_end: the lab needs root. \
             Run `cargo test -p anyvip-lab --test demo` as root; CI does. !!!!!!!!\n"
        );
        return;
    }
    let demo = Path::new(env!("CARGO_BIN_EXE_anyvip-lab-demo"));
    let anyvip = anyvip_bin(demo.parent().expect("target/<profile>"));
    let started = Instant::now();
    let child = Command::new(demo)
        .arg("--quick")
        .arg("--anyvip")
        .arg(&anyvip)
        .arg("--apiserver")
        .arg(env!("CARGO_BIN_EXE_anyvip-lab-apiserver"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start anyvip-lab-demo");
    let pid = child.id();
    // A hung demo must not hang CI: after 120 s it gets SIGINT (Ctrl-C),
    // which makes it tear its lab down and exit.
    let watchdog = std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(120);
        while Instant::now() < end {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = Command::new("kill")
            .args(["-s", "INT", &pid.to_string()])
            .status();
        true
    });
    let out = child.wait_with_output().expect("wait for the demo");
    let timed_out = watchdog.join().unwrap_or(false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stdout.lines().rev().take(40).collect::<Vec<_>>();
    let tail: String = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
    let show = format!("stdout (end):\n{tail}\nstderr:\n{stderr}");
    eprintln!("demo took {:?}", started.elapsed());
    assert!(!timed_out, "the demo ran over 120 s\n{show}");
    assert!(out.status.success(), "demo exited {}\n{show}", out.status);

    let summary = stdout
        .lines()
        .rfind(|l| l.starts_with("failover: "))
        .unwrap_or_else(|| panic!("no summary line\n{show}"));
    assert!(
        summary.contains("n2 left FRR in ") && summary.contains(" ms, BIRD in "),
        "{summary}"
    );
    assert!(
        summary.contains("; 0 of "),
        "failed requests: {summary}\n{show}"
    );
    assert_eq!(
        stdout.lines().last(),
        Some(summary),
        "the summary is the last line"
    );

    // Nothing of its lab is left: namespaces, processes, directories.
    let id = stdout
        .lines()
        .find_map(|l| l.split("   lab ").nth(1)?.split_whitespace().next())
        .unwrap_or_else(|| panic!("no lab id in the view\n{show}"))
        .to_string();
    assert!(id.starts_with("av"), "{id}");
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let left: Vec<String> = String::from_utf8_lossy(&netns.stdout)
        .lines()
        .filter(|l| l.starts_with(&format!("{id}-")))
        .map(str::to_string)
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    let procs = processes_mentioning(&id);
    assert!(procs.is_empty(), "processes left: {procs:#?}");
    for dir in [
        PathBuf::from("/etc/frr").join(&id),
        PathBuf::from("/var/run/frr").join(&id),
        std::env::temp_dir().join(format!("anyvip-lab-{id}")),
    ] {
        assert!(!dir.exists(), "{} left", dir.display());
    }
}
