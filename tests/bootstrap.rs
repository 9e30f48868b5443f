//! Before `kubeadm init` (issue "a node that heals itself", item 2): the
//! https check's CA file does not exist yet. `anyvip run` must start, show
//! the check down with a reason naming the file, and announce the VIP once
//! the file exists and the apiserver answers — no restart loop.
//!
//! The real daemon, on the loopback of the test's own namespace with its
//! data plane left alone (`manage = false`), a scripted BGP peer that
//! records the announcement, and the lab's stand-in apiserver (TLS with a
//! certificate the late CA signs).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyvip_lab::{server_config, Apiserver, Mode, Pki};
use anyvip_proto::Message;

mod bgp_peer;
use bgp_peer::Peer;

const BIN: &str = env!("CARGO_BIN_EXE_anyvip");
const PATIENCE: Duration = Duration::from_secs(30);

struct Daemon(Child);

/// The stand-in apiserver on a thread of its own (its own runtime), down
/// until `serve`, stopped when dropped.
struct StandIn {
    addr: SocketAddr,
    serve: Option<tokio::sync::oneshot::Sender<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StandIn {
    fn start(pki: &Pki) -> StandIn {
        let tls = server_config(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).unwrap();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (serve, serve_rx) = tokio::sync::oneshot::channel::<()>();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server =
                    Apiserver::start("127.0.0.1:0".parse().unwrap(), "n1", Some(tls), Mode::Down)
                        .await
                        .unwrap();
                assert!(server.apply(Mode::Down).await);
                addr_tx.send(server.local_addr()).unwrap();
                if serve_rx.await.is_ok() {
                    assert!(server.apply(Mode::Ok).await);
                }
                let _ = stop_rx.await;
            });
        });
        StandIn {
            addr: addr_rx.recv().unwrap(),
            serve: Some(serve),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn serve(&mut self) {
        if let Some(s) = self.serve.take() {
            let _ = s.send(());
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.serve.take();
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

#[test]
fn a_missing_ca_file_is_a_failing_check_and_the_vip_comes_once_it_exists() {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("pki").join("ca.crt");
    let socket = dir.path().join("anyvip.sock");
    let log = dir.path().join("anyvip.log");
    let pki = Pki::generate(&["kubernetes".to_string()]).unwrap();
    let mut server = StandIn::start(&pki);
    let port = free_port();
    let peer_addr = Ipv4Addr::new(127, 0, 0, 2);
    let config = dir.path().join("anyvip.toml");
    std::fs::write(
        &config,
        format!(
            "[speaker]\nasn = 65001\nrouter_id = \"10.0.0.1\"\nlisten = [\"127.0.0.1:{port}\"]\n\
             [[peer]]\naddress = \"{peer_addr}\"\nasn = 65010\npassive = true\nhold_time = \"9s\"\n\
             [check.apiserver]\nhttps = \"https://{}/readyz\"\nca_file = \"{}\"\n\
             server_name = \"kubernetes\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nrise = 2\nfall = 1\n\
             [[vip]]\nprefix = \"192.0.2.100/32\"\nchecks = [\"apiserver\"]\n\
             [dataplane]\nmanage = false\n[api]\nsocket = \"{}\"\n",
            server.addr,
            ca_file.display(),
            socket.display()
        ),
    )
    .unwrap();
    // check-config: a warning naming the file, not an error.
    let checked = Command::new(BIN)
        .args(["check-config", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning") && stderr.contains(&ca_file.display().to_string()),
        "{stderr}"
    );

    let _daemon = Daemon(
        Command::new(BIN)
            .args(["run", "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    let status = || -> serde_json::Value {
        let out = Command::new(BIN)
            .args(["status", "--json", "-s"])
            .arg(&socket)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    };
    let deadline = Instant::now() + PATIENCE;
    loop {
        let s = status();
        let reason = s["checks"][0]["last"]["reason"]
            .as_str()
            .unwrap_or_default();
        if reason.contains(&ca_file.display().to_string()) {
            assert_eq!(s["checks"][0]["health"], "down", "{s}");
            assert_eq!(s["vips"][0]["mode"], "withdrawn", "{s}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no reason naming the CA file:\n{s}\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut peer = Peer::connect(peer_addr, SocketAddr::from(([127, 0, 0, 1], port)));
    peer.establish();
    let peer = peer.run();

    // `kubeadm init` writes the CA and starts the apiserver.
    std::fs::create_dir_all(ca_file.parent().unwrap()).unwrap();
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    server.serve();
    peer.wait_for(
        PATIENCE,
        "the VIP announced",
        |m| matches!(m, Message::Update(u) if u.announced().next().is_some()),
    );
    let s = status();
    assert_eq!(s["checks"][0]["health"], "up", "{s}");
    assert_eq!(s["vips"][0]["mode"], "announced", "{s}");
    assert!(
        !logs().contains("anyvip failed"),
        "the daemon did not run through:\n{}",
        logs()
    );
    drop(peer);
    drop(server);
}
