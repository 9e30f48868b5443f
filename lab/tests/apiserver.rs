//! The `anyvip-lab-apiserver` binary as a lab test drives it: start on a
//! free port, switch modes over the control socket, stop with SIGTERM.
//! Plain HTTP here (raw HTTP/1.1 over std sockets); the TLS side is probed
//! by anyvip's own health check tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_anyvip-lab-apiserver"))
        .args(["--node", "n7", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_string();
    Server { child, addr }
}

/// Status and body of `GET path`, or the error (refused, timed out).
fn get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, body.to_string()))
}

fn control(path: &Path, command: &str) -> String {
    let mut s = UnixStream::connect(path).unwrap();
    writeln!(s, "{command}").unwrap();
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply).unwrap();
    reply.trim().to_string()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("anyvip-lab-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn modes_switch_over_the_control_socket_and_sigterm_stops_it() {
    let dir = temp("modes");
    let sock = dir.join("control.sock");
    let mut server = start(&["--plain", "--control", sock.to_str().unwrap()]);
    let addr = server.addr.clone();

    assert_eq!(get(&addr, "/readyz").unwrap(), (200, "ok".into()));
    assert_eq!(get(&addr, "/livez").unwrap(), (200, "ok".into()));
    assert_eq!(get(&addr, "/").unwrap(), (200, "served-by n7\n".into()));

    assert_eq!(control(&sock, "fail"), "mode fail");
    let (status, body) = get(&addr, "/readyz").unwrap();
    assert_eq!(status, 500);
    assert!(body.contains("readyz check failed"), "{body:?}");
    assert_eq!(get(&addr, "/livez").unwrap().0, 200);

    assert_eq!(control(&sock, "hang"), "mode hang");
    let e = get(&addr, "/readyz").unwrap_err();
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "accepted, never answered: {e}"
    );

    assert_eq!(control(&sock, "down"), "mode down");
    let e = get(&addr, "/readyz").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");

    assert_eq!(control(&sock, "ok"), "mode ok");
    // The listener is bound again on the same port.
    let mut back = None;
    for _ in 0..100 {
        if let Ok(r) = get(&addr, "/readyz") {
            back = Some(r);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(back, Some((200, "ok".into())));
    assert_eq!(control(&sock, "status"), "mode ok");
    assert!(control(&sock, "explode").starts_with("error: unknown mode"));

    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!sock.exists(), "the control socket is removed at stop");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_generated_certificate_comes_with_its_ca() {
    let dir = temp("ca");
    let ca = dir.join("ca.crt");
    let _server = start(&["--ca-out", ca.to_str().unwrap(), "--san", "kubernetes"]);
    let pem = std::fs::read_to_string(&ca).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn watch_streams_a_line_per_tick_until_the_client_leaves_and_survives_mode_changes() {
    let dir = temp("watch");
    let sock = dir.join("control.sock");
    let server = start(&["--plain", "--control", sock.to_str().unwrap()]);
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET /watch HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut lines = BufReader::new(s.try_clone().unwrap()).lines();
    let head: Vec<String> = lines
        .by_ref()
        .map(|l| l.unwrap())
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(head[0].starts_with("HTTP/1.1 200"), "{head:?}");
    assert!(
        head.iter()
            .any(|h| h.eq_ignore_ascii_case("transfer-encoding: chunked")),
        "{head:?}"
    );
    // Chunked: a size line, then the event line, for every tick.
    let mut events = Vec::new();
    let mut next = |events: &mut Vec<String>| loop {
        let l = lines.next().unwrap().unwrap();
        if l.starts_with("served-by") {
            events.push(l);
            return;
        }
    };
    for _ in 0..3 {
        next(&mut events);
    }
    // A failing readyz (as when the real apiserver shuts down) does not end
    // a watch already open: only the client or the process does.
    assert_eq!(control(&sock, "fail"), "mode fail");
    for _ in 0..3 {
        next(&mut events);
    }
    let want: Vec<String> = (1..=6).map(|i| format!("served-by n7 event {i}")).collect();
    assert_eq!(events, want);
    drop(server);
    // The process is gone: the stream ends (FIN or reset) well before the
    // 5 s read timeout, instead of hanging like a frozen node would.
    for line in lines {
        if let Err(e) = line {
            assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "the stream hung after the server stopped: {e}"
            );
            break;
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
