//! The short soak and fault run in the suite: `anyvip-lab-demo --soak`
//! (lab/src/bin/demo/soak.rs) with small counts — apiserver flaps, FRR and
//! BIRD restarts, anyvip kill -9 (once with the apiserver down while it is
//! dead), valid and invalid reloads, BFD flaps — every checkpoint checked
//! (routers' ECMP groups, VIP addresses, nftables tables, live daemons),
//! then a clean stop and the logs. The long run is `scripts/soak`.
//! Needs root; the demo builds and tears down its own lab (also when
//! interrupted: this test sends SIGTERM if it overruns).

mod lab;
mod lab_nodes;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lab_nodes::{lab_bin, LabBin};

/// The short run takes 1-3 minutes; this is only a guard against a hang.
const DEADLINE: Duration = Duration::from_secs(20 * 60);

#[test]
fn a_short_soak_and_fault_run_holds_at_every_checkpoint() {
    if !lab::require_root("a_short_soak_and_fault_run_holds_at_every_checkpoint") {
        return;
    }
    let demo = lab_bin(LabBin::Demo);
    let mut child = Command::new(demo)
        .args(["--soak", "--flaps", "20", "--checkpoint-every", "10"])
        .args(["--restarts", "3", "--kills", "3", "--reloads", "8"])
        .args(["--bfd-flaps", "3", "--anyvip", env!("CARGO_BIN_EXE_anyvip")])
        .arg("--apiserver")
        .arg(lab_bin(LabBin::Apiserver))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", demo.display()));
    // Read both pipes on threads so a full pipe never stalls the run.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let mut signalled = false;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for the demo") {
            break st;
        }
        if start.elapsed() > DEADLINE && !signalled {
            // SIGTERM: the demo tears its lab down, then exits.
            lab::netns::signal(child.id(), "TERM");
            signalled = true;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    assert!(
        status.success() && !signalled,
        "the soak run failed ({status}{}):\n{out}\n{err}",
        if signalled {
            ", stopped after the deadline"
        } else {
            ""
        }
    );
    // The table: every step done, every check held.
    assert!(out.contains("result: everything held"), "{out}");
    for step in [
        "apiserver flaps on n2",
        "FRR (r1) stopped and started",
        "BIRD (r2) stopped and started",
        "anyvip kill -9",
        "reloads on n1",
        "BFD 100 ms x 3 on n2",
        "every anyvip stopped",
        "anyvip logs",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(step)),
            "no line for {step:?} in the table:\n{out}"
        );
    }
    println!("{out}");
}
