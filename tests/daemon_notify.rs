//! The daemon speaks systemd's notify protocol at the right moments: READY
//! once it runs, WATCHDOG from its main loop, RELOADING then READY on
//! SIGHUP, STOPPING at SIGTERM. The notify socket is the test's own.

mod notify_util;

use std::process::{Command, Stdio};
use std::time::Duration;

use notify_util::NotifySocket;

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn the_daemon_sends_ready_watchdog_reloading_and_stopping() {
    let dir = std::env::temp_dir().join(format!("anyvip-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("anyvip.toml");
    // A passive peer that never connects; no data plane (this test runs in
    // its own namespace: nothing must be added there).
    let api = dir.join("anyvip.sock");
    std::fs::write(
        &config,
        format!("[api]\nsocket = \"{}\"\n", api.display())
            + "[speaker]\nasn = 65001\nrouter_id = \"10.0.0.1\"\nlisten = [\"127.0.0.1:0\"]\n\
         [[peer]]\naddress = \"127.0.0.2\"\nasn = 65010\npassive = true\n\
         [[vip]]\nprefix = \"192.0.2.100/32\"\nalways = true\n\
         [drain]\ndelay = \"200ms\"\n\
         [dataplane]\nmanage = false\n",
    )
    .unwrap();
    let socket = NotifySocket::new();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_anyvip"));
    cmd.arg("run")
        .arg("-c")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    socket.configure(&mut cmd, Some(Duration::from_millis(600)));
    let mut child = cmd.spawn().expect("start anyvip");

    let ready = socket.wait_for("READY=1", WAIT, |n| n.has("READY", "1"));
    assert!(
        ready
            .get("STATUS")
            .is_some_and(|s| s.contains("VIPs announced")),
        "READY carries a status line: {ready:?}"
    );
    // The watchdog period is half of WATCHDOG_USEC: several pings arrive.
    for _ in 0..3 {
        socket.wait_for("WATCHDOG=1", WAIT, |n| n.has("WATCHDOG", "1"));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    socket.wait_for("RELOADING=1", WAIT, |n| n.has("RELOADING", "1"));
    socket.wait_for("READY=1 after the reload", WAIT, |n| n.has("READY", "1"));
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    socket.wait_for("STOPPING=1", WAIT, |n| n.has("STOPPING", "1"));
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit after a drain: {status}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Found by the soak run: a refused SIGHUP reload was logged twice (by the
/// reload and again by the loop), so log-based alerting counted two; and
/// the reasons were on the lines after the ERROR line, which journald
/// stores as separate entries without a level.
#[test]
fn an_invalid_file_on_sighup_is_refused_logged_once_and_ready_follows() {
    let dir = std::env::temp_dir().join(format!("anyvip-notify-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("anyvip.toml");
    let api = dir.join("anyvip.sock");
    let valid = format!("[api]\nsocket = \"{}\"\n", api.display())
        + "[speaker]\nasn = 65001\nrouter_id = \"10.0.0.1\"\nlisten = [\"127.0.0.1:0\"]\n\
         [[peer]]\naddress = \"127.0.0.2\"\nasn = 65010\npassive = true\n\
         [[vip]]\nprefix = \"192.0.2.100/32\"\nalways = true\n\
         [drain]\ndelay = \"200ms\"\n\
         [dataplane]\nmanage = false\n";
    std::fs::write(&config, &valid).unwrap();
    let log = dir.join("stderr.log");
    let socket = NotifySocket::new();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_anyvip"));
    cmd.arg("run")
        .arg("-c")
        .arg(&config)
        .env("ANYVIP_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    socket.configure(&mut cmd, None);
    let mut child = cmd.spawn().expect("start anyvip");
    socket.wait_for("READY=1", WAIT, |n| n.has("READY", "1"));

    std::fs::write(&config, valid.replace("asn = 65010", "asn = 0")).unwrap();
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    socket.wait_for("RELOADING=1", WAIT, |n| n.has("RELOADING", "1"));
    socket.wait_for("READY=1 after the refusal", WAIT, |n| n.has("READY", "1"));
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit: {status}");
    let text = std::fs::read_to_string(&log).unwrap();
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("reload"))
        .filter(|l| !l.contains("INFO"))
        .collect();
    assert_eq!(
        errors.len(),
        1,
        "one ERROR line for one refused reload:\n{text}"
    );
    assert!(
        errors[0].contains("ERROR reload refused") && errors[0].contains("peer[0].asn"),
        "it says the reload was refused and names the key: {}",
        errors[0]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
