//! The operator surface end to end: the real `anyvip run` (data plane not
//! managed: it must not touch this network namespace) with its control
//! socket in a scratch directory and metrics on 127.0.0.1, a scripted
//! passive peer on the loopback, a VIP that follows a maintenance-flag
//! check, and the real `anyvip` CLI against it.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyvip_proto::attribute::Community;
use anyvip_proto::{AttributeValue, Message, Update};
use serde_json::Value;

mod bgp_peer;
use bgp_peer::Peer;

const BIN: &str = env!("CARGO_BIN_EXE_anyvip");
const VIP: &str = "192.0.2.100/32";
const TOR1: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const TOR2: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const WAIT: Duration = Duration::from_secs(15);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "anyvip-api-{name}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How a test's daemon is configured.
#[derive(Clone)]
struct Setup {
    dir: PathBuf,
    bgp_port: u16,
    metrics_port: u16,
    peers: Vec<(&'static str, Ipv4Addr)>,
    /// `always = true` instead of the maintenance check.
    always: bool,
}

impl Setup {
    fn new(dir: &Path) -> Setup {
        Setup {
            dir: dir.to_path_buf(),
            bgp_port: free_port(),
            metrics_port: free_port(),
            peers: vec![("tor1", TOR1)],
            always: false,
        }
    }

    /// In a directory that does not exist yet: anyvip creates it.
    fn socket(&self) -> PathBuf {
        self.dir.join("run").join("anyvip.sock")
    }

    fn maintenance(&self) -> PathBuf {
        self.dir.join("maintenance")
    }

    fn config(&self) -> String {
        let mut c = format!(
            // Derived from the node (the source toward tor1: 127.0.0.1), so
            // the reload test also shows an unchanged derived ID leaves the
            // sessions be.
            "[speaker]\nasn = 65001\nrouter_id = \"auto\"\nlisten = [\"127.0.0.1:{}\"]\n\n",
            self.bgp_port
        );
        for (name, address) in &self.peers {
            c.push_str(&format!(
                "[[peer]]\nname = \"{name}\"\naddress = \"{address}\"\nasn = 65010\npassive = true\nhold_time = \"9s\"\n\n"
            ));
        }
        if self.always {
            c.push_str(&format!("[[vip]]\nprefix = \"{VIP}\"\nalways = true\n\n"));
        } else {
            c.push_str(&format!(
                "[check.maint]\nfile = \"{}\"\ninterval = \"100ms\"\nrise = 1\nfall = 1\n\n[[vip]]\nprefix = \"{VIP}\"\nchecks = [\"maint\"]\n\n",
                self.maintenance().display()
            ));
        }
        c.push_str("[drain]\ndelay = \"1s\"\n\n");
        // This daemon runs in the test's own network namespace.
        c.push_str("[dataplane]\nmanage = false\n\n");
        c.push_str(&format!(
            "[api]\nsocket = \"{}\"\nmetrics = \"127.0.0.1:{}\"\n",
            self.socket().display(),
            self.metrics_port
        ));
        c
    }

    fn config_file(&self) -> PathBuf {
        self.dir.join("anyvip.toml")
    }

    fn write(&self) {
        std::fs::write(self.config_file(), self.config()).unwrap();
    }
}

/// `anyvip run`, ours: killed when dropped.
struct Daemon {
    setup: Setup,
    child: Child,
    log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `anyvip ARGS` to completion.
fn anyvip(args: &[&str], socket: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("-s")
        .arg(socket)
        .env_remove("ANYVIP_SOCKET")
        .stdin(Stdio::null())
        .output()
        .expect("run anyvip")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Daemon {
    fn spawn(setup: &Setup, log_name: &str) -> (Child, PathBuf) {
        setup.write();
        let log = setup.dir.join(log_name);
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "-c"])
            .arg(setup.config_file())
            .env("ANYVIP_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        // The shipped unit's UMask=0077: the socket's mode must not depend on it.
        // SAFETY: umask(2) is async-signal-safe and cannot fail.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::umask(0o077);
                Ok(())
            });
        }
        (cmd.spawn().expect("start anyvip"), log)
    }

    /// Start it and wait until its control socket answers.
    fn start(setup: &Setup) -> Daemon {
        let (child, log) = Daemon::spawn(setup, "anyvip.log");
        let mut d = Daemon {
            setup: setup.clone(),
            child,
            log,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("anyvip exited ({status}): {}", d.log_text());
            }
            if anyvip(&["status"], &d.setup.socket()).status.success() {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "no control socket: {}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn bgp(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.setup.bgp_port))
    }

    fn cli(&self, args: &[&str]) -> Output {
        anyvip(args, &self.setup.socket())
    }

    /// Run a command that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "anyvip {args:?}: {}\nstdout: {}\nstderr: {}\nlog: {}",
            out.status,
            text(&out.stdout),
            text(&out.stderr),
            self.log_text()
        );
        text(&out.stdout)
    }

    fn status(&self) -> Value {
        serde_json::from_str(&self.ok(&["status", "--json"])).expect("status --json is JSON")
    }

    /// Poll `status --json` until `f` holds.
    fn wait_for(&self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.status();
            if f(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {WAIT:?}; last status {s:#}\nlog: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A scripted peer from `from`, Established, kept up in the background.
    fn peer(&self, from: Ipv4Addr) -> bgp_peer::Running {
        let mut p = Peer::connect(from, self.bgp());
        p.establish();
        p.run()
    }

    /// GET /metrics: (content type, body).
    fn scrape(&self, accept: Option<&str>) -> (String, String) {
        use std::io::{Read, Write};
        let mut s = TcpStream::connect(("127.0.0.1", self.setup.metrics_port)).expect("metrics");
        s.set_read_timeout(Some(WAIT)).unwrap();
        let accept = accept
            .map(|a| format!("Accept: {a}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n{accept}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let content_type = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-type: ")
                    .map(str::to_string)
            })
            .expect("a content type");
        (content_type, body.to_string())
    }
}

fn vip(s: &Value) -> &Value {
    &s["vips"][0]
}

fn peer<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no peer {name} in {s:#}"))
}

fn is_update_for(m: &Message, announced: bool) -> Option<&Update> {
    let Message::Update(u) = m else { return None };
    let prefixes: Vec<String> = if announced {
        u.announced().map(|n| n.prefix.to_string()).collect()
    } else {
        u.withdrawn_routes().map(|n| n.prefix.to_string()).collect()
    };
    prefixes.iter().any(|p| p == VIP).then_some(u)
}

fn gshut(u: &Update) -> bool {
    u.attributes.iter().any(|a| {
        matches!(&a.value, AttributeValue::Communities(c) if c.contains(&Community::GRACEFUL_SHUTDOWN))
    })
}

/// Every sample of `metric` whose labels include `labels`, as prometheus-parse reads them.
fn metric(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&prometheus_parse::Sample> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    match found[0].value {
        prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
        ref other => panic!("{name} is not a counter or gauge: {other:?}"),
    }
}

fn parse_metrics(body: &str) -> prometheus_parse::Scrape {
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap();
    // prometheus-parse skips lines it cannot read: every sample line must
    // have become a sample (a histogram folds its _bucket lines into one).
    let lines = body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.contains("_bucket{"))
        .count();
    let samples = scrape
        .samples
        .iter()
        .filter(|s| !matches!(s.value, prometheus_parse::Value::Histogram(_)))
        .count();
    assert_eq!(lines, samples, "unparsed lines in:\n{body}");
    scrape
}

#[test]
fn status_drain_resume_maintenance_and_metrics() {
    let scratch = Scratch::new("drain");
    let setup = Setup::new(&scratch.0);
    let d = Daemon::start(&setup);

    // The socket: created with its directory, mode 0660.
    let meta = std::fs::metadata(setup.socket()).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    let dir = std::fs::metadata(setup.socket().parent().unwrap()).unwrap();
    assert_eq!(dir.permissions().mode() & 0o777, 0o755);

    let tor1 = d.peer(TOR1);
    tor1.wait_for(WAIT, "the VIP announced", |m| {
        is_update_for(m, true).is_some()
    });
    let s = d.wait_for("tor1 up and the VIP announced", |s| {
        peer(s, "tor1")["state"] == "Established"
            && vip(s)["mode"] == "announced"
            && peer(s, "tor1")["prefixes_sent"] == 1
    });
    let p = peer(&s, "tor1");
    assert_eq!(p["address"], "127.0.0.2");
    assert!(p["messages_sent"].as_u64().unwrap() >= 3, "{p:#}");
    assert!(p["updates_sent"].as_u64().unwrap() >= 1, "{p:#}");
    assert_eq!(p["prefixes_sent_by_family"]["ipv4-unicast"], 1);
    assert!(p["since"].as_str().unwrap().ends_with('Z'));
    let v = vip(&s);
    assert_eq!(v["prefix"], VIP);
    assert_eq!(
        (v["healthy"].as_bool(), v["drained"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(v["checks"][0]["name"], "maint");
    assert_eq!(v["checks"][0]["health"], "up");
    assert_eq!(v["checks"][0]["last"]["pass"], true);
    assert!(v["checks"][0]["last"]["latency_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(s["checks"][0]["kind"], "file");
    assert_eq!(s["config_file"], setup.config_file().display().to_string());
    assert_eq!(s["router_id"], "127.0.0.1");
    assert_eq!(
        s["router_id_source"],
        "source address toward peer 127.0.0.2"
    );
    assert!(s["nft_counters"].is_null(), "the data plane is not managed");

    // The table.
    let table = d.ok(&["status"]);
    let row = |start: &str| -> Vec<String> {
        table
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no {start} row in\n{table}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        row("tor1")[..3],
        ["tor1", "127.0.0.2", "Established"],
        "{table}"
    );
    assert_eq!(
        row("tor1")[4..6],
        ["1", "0"],
        "prefixes sent and received: {table}"
    );
    assert_eq!(row(VIP)[..3], [VIP, "announced", "up"], "{table}");
    assert!(
        table.contains("\nrouter ID 127.0.0.1 (auto: source address toward peer 127.0.0.2)\n"),
        "{table}"
    );
    assert_eq!(row("maint")[..3], ["maint", "file", "up"], "{table}");
    assert_eq!(row("maint")[4], "pass", "{table}");
    assert!(row("maint")[7].ends_with("ms"), "latency: {table}");

    // Metrics: the text format parses, and the check's probes move.
    let (content_type, body) = d.scrape(None);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let first = parse_metrics(&body);
    let tor1_labels = [("peer", "tor1"), ("address", "127.0.0.2")];
    assert_eq!(
        metric(
            &first,
            "anyvip_peer_state",
            &[("peer", "tor1"), ("state", "Established")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &first,
            "anyvip_peer_state",
            &[("peer", "tor1"), ("state", "Idle")]
        ),
        0.0
    );
    assert_eq!(
        metric(
            &first,
            "anyvip_peer_established_transitions_total",
            &tor1_labels
        ),
        1.0
    );
    assert!(metric(&first, "anyvip_peer_updates_sent_total", &tor1_labels) >= 1.0);
    assert_eq!(
        metric(
            &first,
            "anyvip_peer_prefixes_advertised",
            &[("peer", "tor1"), ("family", "ipv4-unicast")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &first,
            "anyvip_vip_state",
            &[("prefix", VIP), ("state", "announced")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &first,
            "anyvip_check_up",
            &[("check", "maint"), ("kind", "file")]
        ),
        1.0
    );
    let probes = metric(&first, "anyvip_check_probes_total", &[("check", "maint")]);
    std::thread::sleep(Duration::from_millis(350));
    let (_, body) = d.scrape(None);
    let second = parse_metrics(&body);
    let later = metric(&second, "anyvip_check_probes_total", &[("check", "maint")]);
    assert!(later > probes, "probes did not move: {probes} then {later}");
    let histogram = second
        .samples
        .iter()
        .find(|s| s.metric == "anyvip_check_latency_seconds")
        .expect("the latency histogram");
    let prometheus_parse::Value::Histogram(buckets) = &histogram.value else {
        panic!("{histogram:?}")
    };
    let inf = buckets
        .iter()
        .find(|b| b.less_than.is_infinite())
        .unwrap()
        .count;
    assert!(
        inf >= later,
        "every probe is in the histogram: {inf} < {later}"
    );
    // What Prometheus itself asks for.
    let (content_type, body) = d.scrape(Some(
        "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
    ));
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(body.ends_with("# EOF\n"));

    // Drain: GRACEFUL_SHUTDOWN first, the withdrawal after the drain delay.
    let out = d.ok(&["drain", "192.0.2.100"]);
    assert!(out.starts_with(VIP) && out.contains("draining"), "{out}");
    let s = d.status();
    assert_eq!(
        (vip(&s)["mode"].as_str(), vip(&s)["drained"].as_bool()),
        (Some("draining"), Some(true))
    );
    let drained_at = Instant::now();
    let m = tor1.wait_for(WAIT, "the GRACEFUL_SHUTDOWN announcement", |m| {
        is_update_for(m, true).is_some_and(gshut)
    });
    assert!(is_update_for(&m, true).is_some());
    tor1.wait_for(WAIT, "the withdrawal", |m| {
        is_update_for(m, false).is_some()
    });
    assert!(
        drained_at.elapsed() >= Duration::from_millis(800),
        "withdrawn before the drain delay: {:?}",
        drained_at.elapsed()
    );
    let s = d.wait_for("the VIP withdrawn", |s| vip(s)["mode"] == "withdrawn");
    assert_eq!(vip(&s)["healthy"], true, "drained, not unhealthy");
    assert_eq!(peer(&s, "tor1")["prefixes_sent"], 0);
    let (_, body) = d.scrape(None);
    let m = parse_metrics(&body);
    assert_eq!(
        metric(
            &m,
            "anyvip_vip_state",
            &[("prefix", VIP), ("state", "withdrawn")]
        ),
        1.0
    );
    assert_eq!(metric(&m, "anyvip_vip_drained", &[("prefix", VIP)]), 1.0);
    assert!(metric(&m, "anyvip_vip_transitions_total", &[("prefix", VIP)]) >= 3.0);

    // Resume (all VIPs): announced again, without GRACEFUL_SHUTDOWN.
    let out = d.ok(&["resume"]);
    assert!(out.starts_with(VIP) && out.contains("announced"), "{out}");
    let m = tor1.wait_for(WAIT, "the announcement again", |m| {
        is_update_for(m, true).is_some()
    });
    assert!(!is_update_for(&m, true).is_some_and(gshut), "{m:?}");
    d.wait_for("the VIP announced", |s| {
        vip(s)["mode"] == "announced" && vip(s)["drained"] == false
    });

    // An unknown VIP is refused, and a malformed one is a usage error.
    let out = d.cli(&["drain", "198.51.100.7/32"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("198.51.100.7/32 is not a configured VIP"),
        "{out:?}"
    );
    let out = d.cli(&["resume", "banana"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        text(&out.stderr).contains("\"banana\" is not a VIP prefix"),
        "{out:?}"
    );
    assert_eq!(vip(&d.status())["mode"], "announced", "nothing changed");

    // The maintenance flag drains (design section 5: present = drain):
    // GRACEFUL_SHUTDOWN first, the withdrawal after the drain delay.
    std::fs::write(setup.maintenance(), "").unwrap();
    tor1.wait_for(WAIT, "the GRACEFUL_SHUTDOWN announcement", |m| {
        is_update_for(m, true).is_some_and(gshut)
    });
    tor1.wait_for(WAIT, "the withdrawal", |m| {
        is_update_for(m, false).is_some()
    });
    let s = d.wait_for("the VIP withdrawn", |s| vip(s)["mode"] == "withdrawn");
    assert_eq!(vip(&s)["healthy"], false);
    assert_eq!(vip(&s)["checks"][0]["health"], "down");
    assert_eq!(vip(&s)["checks"][0]["last"]["pass"], false);
    let table = d.ok(&["status"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(VIP) && l.contains("withdrawn") && l.contains("down")),
        "{table}"
    );
    std::fs::remove_file(setup.maintenance()).unwrap();
    tor1.wait_for(WAIT, "the announcement again", |m| {
        is_update_for(m, true).is_some()
    });
    d.wait_for("the VIP announced", |s| vip(s)["mode"] == "announced");
    tor1.assert_alive();
}

#[test]
fn reload_adds_a_peer_without_touching_the_others_and_refuses_a_broken_file() {
    let scratch = Scratch::new("reload");
    let mut setup = Setup::new(&scratch.0);
    let d = Daemon::start(&setup);
    let tor1 = d.peer(TOR1);
    let before = d.wait_for("tor1 up", |s| peer(s, "tor1")["state"] == "Established");
    let since = peer(&before, "tor1")["since"].clone();
    // A reset now would show a later `since` (whole seconds).
    std::thread::sleep(Duration::from_millis(1100));

    setup.peers.push(("tor2", TOR2));
    setup.write();
    let out = d.ok(&["reload"]);
    assert!(out.contains("reloaded"), "{out}");
    let s = d.status();
    assert_eq!(s["peers"].as_array().unwrap().len(), 2, "{s:#}");
    assert_eq!(peer(&s, "tor2")["address"], "127.0.0.3");
    let t1 = peer(&s, "tor1");
    assert_eq!(
        (&t1["state"], &t1["since"]),
        (&"Established".into(), &since),
        "{t1:#}"
    );
    assert_eq!(t1["established_transitions"], 1);
    assert_eq!(s["last_reload"]["ok"], true);
    // The new peer works.
    let tor2 = d.peer(TOR2);
    tor2.wait_for(WAIT, "the VIP on the new session", |m| {
        is_update_for(m, true).is_some()
    });
    d.wait_for("tor2 up", |s| peer(s, "tor2")["state"] == "Established");
    tor1.assert_alive();

    // A broken file: refused with the key and the reason; all stays.
    let good = setup.config();
    std::fs::write(
        setup.config_file(),
        good.replacen("asn = 65010", "asn = 0", 1),
    )
    .unwrap();
    let out = d.cli(&["reload"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("reload refused") && stderr.contains("peer[0].asn: 0 is reserved"),
        "{stderr}"
    );
    let s = d.status();
    assert_eq!(s["last_reload"]["ok"], false);
    assert!(
        s["last_reload"]["error"]
            .as_str()
            .unwrap()
            .contains("peer[0].asn"),
        "{s:#}"
    );
    assert_eq!(s["peers"].as_array().unwrap().len(), 2);
    assert_eq!(peer(&s, "tor1")["since"], since);
    assert_eq!(peer(&s, "tor2")["state"], "Established");
    assert_eq!(vip(&s)["mode"], "announced");
    let table = d.ok(&["status"]);
    assert!(
        table.contains("REFUSED") && table.contains("peer[0].asn"),
        "{table}"
    );
    let (_, body) = d.scrape(None);
    assert_eq!(
        metric(
            &parse_metrics(&body),
            "anyvip_config_last_reload_successful",
            &[]
        ),
        0.0
    );
    // [api] is bound once, at start: a change is refused, not half applied.
    std::fs::write(
        setup.config_file(),
        good.replacen("metrics = \"127.0.0.1:", "metrics = \"127.0.0.2:", 1),
    )
    .unwrap();
    let out = d.cli(&["reload"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("[api] changed"), "{out:?}");
    tor1.assert_alive();
    tor2.assert_alive();
}

#[test]
fn a_daemon_that_is_not_there_exits_3() {
    let scratch = Scratch::new("absent");
    let socket = scratch.0.join("nothing.sock");
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["drain"],
        &["resume", VIP],
        &["reload"],
    ] {
        let out = anyvip(args, &socket);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {out:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("is anyvip running? socket {}", socket.display())),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }
    // The socket from the environment, as the default.
    let out = Command::new(BIN)
        .arg("status")
        .env("ANYVIP_SOCKET", &socket)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains(&socket.display().to_string()));
    // A file that is not a socket at all.
    std::fs::write(&socket, "").unwrap();
    assert_eq!(anyvip(&["status"], &socket).status.code(), Some(3));
    // Usage errors are 2.
    let out = Command::new(BIN)
        .args(["drain", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_socket_is_only_replaced_when_stale_and_removed_at_stop() {
    let scratch = Scratch::new("socket");
    let mut setup = Setup::new(&scratch.0);
    setup.always = true;
    std::fs::create_dir_all(setup.socket().parent().unwrap()).unwrap();

    // Something that is not a socket is never removed.
    std::fs::write(setup.socket(), "keep me").unwrap();
    let (mut child, log) = Daemon::spawn(&setup, "refused.log");
    let status = child.wait().unwrap();
    assert!(!status.success());
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("is not a socket"), "{log}");
    assert_eq!(std::fs::read_to_string(setup.socket()).unwrap(), "keep me");
    std::fs::remove_file(setup.socket()).unwrap();

    // A socket nobody listens on (a crashed daemon's) is replaced.
    drop(std::os::unix::net::UnixListener::bind(setup.socket()).unwrap());
    assert!(setup.socket().exists());
    let d = Daemon::start(&setup);
    d.ok(&["status"]);

    // A second daemon on the same socket stops at start; the first serves on.
    let mut second = setup.clone();
    second.bgp_port = free_port();
    second.metrics_port = free_port();
    let second_dir = scratch.0.join("second");
    std::fs::create_dir_all(&second_dir).unwrap();
    second.dir = second_dir;
    let socket = setup.socket();
    std::fs::write(
        second.config_file(),
        second.config().replace(
            &second.socket().display().to_string(),
            &socket.display().to_string(),
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["run", "-c"])
        .arg(second.config_file())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("something is listening on it"),
        "{out:?}"
    );
    d.ok(&["status"]);

    // A stop (SIGTERM: drain, withdraw, close) removes the socket.
    let pid = libc::pid_t::try_from(d.child.id()).unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let mut d = d;
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = d.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "anyvip did not stop: {}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}: {}", d.log_text());
    assert!(!socket.exists(), "the socket is removed at stop");
}

/// Run `cmd` to completion; kill it and fail if it takes longer than `limit`.
fn output_within(cmd: &mut Command, limit: Duration, what: &str) -> Output {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run anyvip");
    // Its output is a few kilobytes: the pipes never fill while we poll.
    while child.try_wait().expect("wait for anyvip").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("reap anyvip");
            panic!("{what}: no answer within {limit:?}: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect anyvip's output")
}

/// Wait until the daemon has closed `stream` (a read sees end of file).
fn closed_by_the_daemon<S: std::io::Read>(
    stream: &mut S,
    set_timeout: impl Fn(&S, Duration),
    deadline: Instant,
) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    set_timeout(stream, left.max(Duration::from_millis(1)));
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Ok(0))
}

#[test]
fn idle_connections_do_not_keep_status_or_metrics_waiting() {
    let scratch = Scratch::new("idle");
    let mut setup = Setup::new(&scratch.0);
    setup.always = true;
    let d = Daemon::start(&setup);

    // The case was 100 idle clients; 300 is more than the daemon
    // keeps open (128), so the oldest are closed to make room as well.
    const IDLE: usize = 300;
    let mut idle: Vec<std::os::unix::net::UnixStream> = (0..IDLE)
        .map(|i| {
            std::os::unix::net::UnixStream::connect(setup.socket())
                .unwrap_or_else(|e| panic!("idle connection {i}: {e}\n{}", d.log_text()))
        })
        .collect();
    let mut idle_scrapers: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(("127.0.0.1", setup.metrics_port)).expect("metrics"))
        .collect();

    // Generous: before, the 101st client waited for six rounds of 16
    // connections timing out after 10 s each (about a minute).
    let generous = Duration::from_secs(20);
    let out = output_within(
        Command::new(BIN)
            .args(["status", "--json", "-s"])
            .arg(setup.socket())
            .env_remove("ANYVIP_SOCKET"),
        generous,
        "anyvip status behind idle connections",
    );
    assert!(out.status.success(), "{out:?}\nlog: {}", d.log_text());
    let status: Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    assert_eq!(vip(&status)["prefix"], VIP);
    // The metrics endpoint has the same rules (`scrape` waits 15 s at most).
    let (_, body) = d.scrape(None);
    assert!(body.contains("anyvip_build_info"), "{body}");
    assert!(
        d.log_text()
            .contains("control API: at its connection limit"),
        "the cap was reached and said so: {}",
        d.log_text()
    );

    // Idle connections do not live on: the daemon closes every one (those
    // it made room with at once, the others at their header timeout).
    let deadline = Instant::now() + generous;
    for (i, s) in idle.iter_mut().enumerate() {
        assert!(
            closed_by_the_daemon(s, |s, t| s.set_read_timeout(Some(t)).unwrap(), deadline),
            "idle control connection {i} still open after {generous:?}"
        );
    }
    for (i, s) in idle_scrapers.iter_mut().enumerate() {
        assert!(
            closed_by_the_daemon(s, |s, t| s.set_read_timeout(Some(t)).unwrap(), deadline),
            "idle metrics connection {i} still open after {generous:?}"
        );
    }
    d.ok(&["status"]);
}

/// Run the CLI copied to `dir` (so its path is reachable whatever the
/// checkout's permissions) as nobody:nogroup.
fn as_nobody(dir: &Path, args: &[&str], socket: &Path) -> Output {
    use std::os::unix::process::CommandExt;
    let cli = dir.join("anyvip-cli");
    if !cli.exists() {
        std::fs::copy(BIN, &cli).expect("copy the CLI");
        std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut cmd = Command::new(&cli);
    cmd.args(args)
        .arg("-s")
        .arg(socket)
        .env_remove("ANYVIP_SOCKET")
        .uid(NOBODY)
        .gid(NOGROUP);
    output_within(&mut cmd, WAIT, "anyvip as nobody")
}

const NOBODY: u32 = 65534;
const NOGROUP: u32 = 65534;

#[test]
fn a_user_without_access_to_the_socket_is_told_permission_denied_and_why() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "\n!!!!!!!! SKIPPED a_user_without_access_to_the_socket_is_told_permission_denied_and_why: \
             running the CLI as another user needs root (CI is root). !!!!!!!!\n"
        );
        return;
    }
    let scratch = Scratch::new("denied");
    std::fs::set_permissions(&scratch.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut setup = Setup::new(&scratch.0);
    setup.always = true;
    let d = Daemon::start(&setup);
    let socket = setup.socket();

    // Mode 0660, root:root: nobody may not connect, and is told so.
    let out = as_nobody(&scratch.0, &["status"], &socket);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        stderr.contains(&format!(
            "permission denied: {} (mode 0660, owner root, group root)",
            socket.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("is anyvip running"), "{stderr}");

    // A directory on the way that nobody may search: said as such.
    let run = socket.parent().unwrap();
    std::fs::set_permissions(run, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = as_nobody(&scratch.0, &["status"], &socket);
    std::fs::set_permissions(run, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        stderr.contains(&format!("permission denied: {}", socket.display()))
            && stderr.contains("a directory on its path may not be searched"),
        "{stderr}"
    );

    // What the message points at works: the socket's group is the access.
    std::os::unix::fs::chown(&socket, None, Some(NOGROUP)).unwrap();
    let out = as_nobody(&scratch.0, &["status"], &socket);
    assert!(out.status.success(), "{out:?}\nlog: {}", d.log_text());
    assert!(text(&out.stdout).contains(VIP), "{out:?}");
}
