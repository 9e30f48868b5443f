//! The daemon speaks systemd's notify protocol at the right moments: READY
//! once it runs, WATCHDOG from its main loop, RELOADING then READY on
//! SIGHUP, STOPPING at SIGTERM. The notify socket is the test's own.

mod notify_util;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use notify_util::NotifySocket;

const WAIT: Duration = Duration::from_secs(20);

/// A config with a passive peer that never connects and no data plane
/// (the tests run in the host's namespace: nothing must be added there).
fn config_text(api: &Path) -> String {
    format!("[api]\nsocket = \"{}\"\n", api.display())
        + "[speaker]\nasn = 65001\nrouter_id = \"10.0.0.1\"\nlisten = [\"127.0.0.1:0\"]\n\
         [[peer]]\naddress = \"127.0.0.2\"\nasn = 65010\npassive = true\n\
         [[vip]]\nprefix = \"192.0.2.100/32\"\nalways = true\n\
         [drain]\ndelay = \"200ms\"\n\
         [dataplane]\nmanage = false\n"
}

fn kill(signal: &str, pid: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), pid])
        .status();
    assert!(sent.is_ok_and(|s| s.success()), "kill -{signal} {pid}");
}

/// `anyvip run -c config` with the test's notify socket, stderr to `stderr`.
fn spawn(config: &Path, socket: &NotifySocket, watchdog: Option<Duration>, stderr: Stdio) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_anyvip"));
    cmd.arg("run")
        .arg("-c")
        .arg(config)
        .env("ANYVIP_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    socket.configure(&mut cmd, watchdog);
    cmd.spawn().expect("start anyvip")
}

#[test]
fn the_daemon_sends_ready_watchdog_reloading_and_stopping() {
    let dir = std::env::temp_dir().join(format!("anyvip-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("anyvip.toml");
    std::fs::write(&config, config_text(&dir.join("anyvip.sock"))).unwrap();
    let socket = NotifySocket::new();
    let mut child = spawn(
        &config,
        &socket,
        Some(Duration::from_millis(600)),
        Stdio::null(),
    );

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
    kill("HUP", &pid);
    socket.wait_for("RELOADING=1", WAIT, |n| n.has("RELOADING", "1"));
    socket.wait_for("READY=1 after the reload", WAIT, |n| n.has("READY", "1"));
    kill("TERM", &pid);
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
    let valid = config_text(&dir.join("anyvip.sock"));
    std::fs::write(&config, &valid).unwrap();
    let log = dir.join("stderr.log");
    let socket = NotifySocket::new();
    let stderr = std::fs::File::create(&log).unwrap();
    let mut child = spawn(&config, &socket, None, stderr.into());
    socket.wait_for("READY=1", WAIT, |n| n.has("READY", "1"));

    std::fs::write(&config, valid.replace("asn = 65010", "asn = 0")).unwrap();
    let pid = child.id().to_string();
    kill("HUP", &pid);
    socket.wait_for("RELOADING=1", WAIT, |n| n.has("RELOADING", "1"));
    socket.wait_for("READY=1 after the refusal", WAIT, |n| n.has("READY", "1"));
    kill("TERM", &pid);
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
