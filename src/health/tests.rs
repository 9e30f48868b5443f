//! Every check kind against real local servers (127.0.0.1, ports bound to
//! 0), the runner's hysteresis and isolation, and the VIP combiner.
//! Timing: short intervals, generous deadlines, polling; no tight
//! wall-clock asserts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyvip_lab::{server_config, Apiserver, Mode, Pki};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio::sync::watch;
use tokio::time::Instant;

use super::*;
use crate::config::{HttpCheck, PemFile, Tls};

/// Generous: only a broken implementation waits this long.
const PATIENCE: Duration = Duration::from_secs(15);

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("anyvip-health-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn pem(name: &str, text: &str) -> PemFile {
    PemFile {
        path: PathBuf::from(name),
        pem: Some(text.as_bytes().to_vec()),
    }
}

fn pki(sans: &[&str]) -> Pki {
    Pki::generate(&sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
}

/// A stand-in apiserver on 127.0.0.1 over TLS with `pki`'s certificate.
async fn apiserver(pki: &Pki, mode: Mode) -> Apiserver {
    let tls = server_config(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).unwrap();
    Apiserver::start("127.0.0.1:0".parse().unwrap(), "n1", Some(tls), mode)
        .await
        .unwrap()
}

fn tls_with_ca(ca_pem: &str) -> Tls {
    Tls {
        ca: Some(pem("ca.crt", ca_pem)),
        client_auth: None,
        insecure_skip_verify: false,
        server_name: None,
    }
}

fn http_kind(url: String, tls: Option<Tls>) -> HttpCheck {
    HttpCheck {
        url: url.parse().unwrap(),
        tls,
        expected_status: vec![200],
        expect_body: None,
    }
}

async fn probe_http(h: HttpCheck, timeout: Duration) -> Outcome {
    probe(&CheckKind::Http(Box::new(h)), timeout).await
}

/// One probe of `kind`, as the runner does it.
async fn probe(kind: &CheckKind, timeout: Duration) -> Outcome {
    let prober = Prober::new(kind).unwrap();
    prober.run(Instant::now() + timeout, timeout).await
}

fn check(name: &str, kind: CheckKind, interval_ms: u64, timeout_ms: u64) -> Check {
    Check {
        name: name.to_string(),
        kind,
        interval: Duration::from_millis(interval_ms),
        timeout: Duration::from_millis(timeout_ms),
        rise: 3,
        fall: 2,
    }
}

async fn wait_for(
    rx: &mut watch::Receiver<CheckState>,
    what: &str,
    f: impl FnMut(&CheckState) -> bool,
) -> CheckState {
    let found = match tokio::time::timeout(PATIENCE, rx.wait_for(f)).await {
        Ok(Ok(s)) => Some(s.clone()),
        _ => None,
    };
    found.unwrap_or_else(|| panic!("no {what} within {PATIENCE:?}: {:?}", *rx.borrow()))
}

/// The timeout of probes expected to finish: generous, since a probe that
/// finishes returns at once.
const SECOND: Duration = Duration::from_secs(5);

// ---- https / http ----

#[tokio::test]
async fn https_with_the_right_ca_passes_over_http1_even_when_the_server_offers_h2() {
    let pki = pki(&["127.0.0.1"]);
    let server = apiserver(&pki, Mode::Ok).await;
    let url = format!("https://{}/readyz", server.local_addr());
    let o = probe_http(http_kind(url, Some(tls_with_ca(&pki.ca_pem))), SECOND).await;
    assert!(o.pass, "{o:?}");
    // As kubelet's probes: ALPN offers only http/1.1 (the lab server offers
    // h2 first).
    assert_eq!(o.reason, "HTTP/1.1 200");
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn https_speaks_http1_when_the_server_offers_only_that() {
    let pki = pki(&["127.0.0.1"]);
    let mut config =
        (*server_config(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).unwrap()).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let server = Apiserver::start(
        "127.0.0.1:0".parse().unwrap(),
        "n1",
        Some(Arc::new(config)),
        Mode::Ok,
    )
    .await
    .unwrap();
    let url = format!("https://{}/livez", server.local_addr());
    let o = probe_http(http_kind(url, Some(tls_with_ca(&pki.ca_pem))), SECOND).await;
    assert!(o.pass, "{o:?}");
    assert_eq!(o.reason, "HTTP/1.1 200");
}

#[tokio::test]
async fn https_with_the_wrong_ca_fails_in_the_handshake() {
    let pki_server = pki(&["127.0.0.1"]);
    let other = pki(&["127.0.0.1"]);
    let server = apiserver(&pki_server, Mode::Ok).await;
    let url = format!("https://{}/readyz", server.local_addr());
    let o = probe_http(http_kind(url, Some(tls_with_ca(&other.ca_pem))), SECOND).await;
    assert!(!o.pass, "{o:?}");
    assert!(o.reason.starts_with("TLS handshake:"), "{o:?}");
    // Both CAs are named alike, so rustls finds the issuer by name and
    // then the signature does not verify.
    assert!(o.reason.contains("invalid peer certificate"), "{o:?}");
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn insecure_skip_verify_passes_without_the_ca() {
    let pki = pki(&["some-other-name"]);
    let server = apiserver(&pki, Mode::Ok).await;
    let url = format!("https://{}/readyz", server.local_addr());
    let tls = Tls {
        ca: None,
        client_auth: None,
        insecure_skip_verify: true,
        server_name: None,
    };
    let o = probe_http(http_kind(url, Some(tls)), SECOND).await;
    assert!(o.pass, "{o:?}");
}

#[tokio::test]
async fn server_name_verifies_a_certificate_without_the_url_host() {
    // kubeadm's apiserver certificate names "kubernetes", not 127.0.0.1.
    let pki = pki(&["kubernetes"]);
    let server = apiserver(&pki, Mode::Ok).await;
    let url = format!("https://{}/readyz", server.local_addr());
    let o = probe_http(
        http_kind(url.clone(), Some(tls_with_ca(&pki.ca_pem))),
        SECOND,
    )
    .await;
    assert!(!o.pass, "the name does not match: {o:?}");
    assert!(o.reason.contains("not valid for name"), "{o:?}");
    let mut tls = tls_with_ca(&pki.ca_pem);
    tls.server_name = Some("kubernetes".into());
    let o = probe_http(http_kind(url, Some(tls)), SECOND).await;
    assert!(o.pass, "{o:?}");
}

#[tokio::test]
async fn a_status_not_expected_fails_with_the_body_in_the_detail() {
    let pki = pki(&["127.0.0.1"]);
    let server = apiserver(&pki, Mode::Fail).await;
    let url = format!("https://{}/readyz", server.local_addr());
    let mut h = http_kind(url, Some(tls_with_ca(&pki.ca_pem)));
    let o = probe_http(h.clone(), SECOND).await;
    assert!(!o.pass, "{o:?}");
    assert_eq!(o.reason, "HTTP/1.1 500 (expected 200)");
    let detail = o.detail.unwrap_or_default();
    assert!(detail.contains("[-]anyvip-lab failed"), "{detail:?}");
    h.expected_status = vec![200, 500];
    assert!(probe_http(h, SECOND).await.pass);
}

#[tokio::test]
async fn expect_body_looks_for_a_substring() {
    let pki = pki(&["127.0.0.1"]);
    let server = apiserver(&pki, Mode::Ok).await;
    let mut h = http_kind(
        format!("https://{}/", server.local_addr()),
        Some(tls_with_ca(&pki.ca_pem)),
    );
    h.expect_body = Some("served-by n1".into());
    assert!(probe_http(h.clone(), SECOND).await.pass);
    h.expect_body = Some("served-by n2".into());
    let o = probe_http(h, SECOND).await;
    assert!(!o.pass, "{o:?}");
    assert_eq!(
        o.reason,
        "HTTP/1.1 200, body does not contain \"served-by n2\""
    );
    assert_eq!(o.detail.as_deref(), Some("served-by n1"));
}

#[tokio::test]
async fn plain_http_passes_and_fails_on_status() {
    let server = Apiserver::start("127.0.0.1:0".parse().unwrap(), "n1", None, Mode::Ok)
        .await
        .unwrap();
    let ok = http_kind(format!("http://{}/readyz", server.local_addr()), None);
    let o = probe_http(ok, SECOND).await;
    assert!(o.pass, "{o:?}");
    assert_eq!(o.reason, "HTTP/1.1 200");
    let missing = http_kind(format!("http://{}/nope", server.local_addr()), None);
    let o = probe_http(missing, SECOND).await;
    assert_eq!(o.reason, "HTTP/1.1 404 (expected 200)");
}

#[tokio::test]
async fn https_presents_the_client_certificate() {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa,
        KeyPair,
    };
    // A CA for clients, and a client certificate it signed.
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let client_ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let mut leaf = CertificateParams::new(vec!["anyvip".to_string()]).unwrap();
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().unwrap();
    let client_cert = leaf.signed_by(&client_key, &client_ca).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(client_ca.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let pki = pki(&["127.0.0.1"]);
    let chain = CertificateDer::pem_slice_iter(pki.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let server = Apiserver::start(
        "127.0.0.1:0".parse().unwrap(),
        "n1",
        Some(Arc::new(config)),
        Mode::Ok,
    )
    .await
    .unwrap();
    let url = format!("https://{}/readyz", server.local_addr());

    let o = probe_http(
        http_kind(url.clone(), Some(tls_with_ca(&pki.ca_pem))),
        SECOND,
    )
    .await;
    assert!(!o.pass, "no client certificate: {o:?}");
    let mut tls = tls_with_ca(&pki.ca_pem);
    tls.client_auth = Some((
        pem("client.crt", &client_cert.pem()),
        pem("client.key", &client_key.serialize_pem()),
    ));
    let o = probe_http(http_kind(url, Some(tls)), SECOND).await;
    assert!(o.pass, "{o:?}");
}

#[tokio::test]
async fn a_server_that_accepts_and_never_answers_times_out() {
    let pki = pki(&["127.0.0.1"]);
    let server = apiserver(&pki, Mode::Hang).await;
    let url = format!("https://{}/readyz", server.local_addr());
    let o = probe_http(
        http_kind(url, Some(tls_with_ca(&pki.ca_pem))),
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(o.reason, "timed out after 300ms (TLS handshake)");
    // Plain HTTP: the request is sent, the answer never comes.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/readyz", silent.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let o = probe_http(http_kind(url, None), Duration::from_millis(300)).await;
    assert_eq!(o.reason, "timed out after 300ms (waiting for the response)");
    hold.abort();
}

// ---- tcp ----

#[tokio::test]
async fn tcp_passes_when_open_and_fails_when_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let o = probe(&CheckKind::Tcp(addr.clone()), SECOND).await;
    assert!(o.pass, "{o:?}");
    drop(listener);
    let o = probe(&CheckKind::Tcp(addr), SECOND).await;
    assert!(!o.pass, "{o:?}");
    assert!(o.reason.starts_with("connect: Connection refused"), "{o:?}");
}

// ---- exec ----

fn sh(script: &str) -> CheckKind {
    CheckKind::Exec(vec!["/bin/sh".into(), "-c".into(), script.into()])
}

#[tokio::test]
async fn exec_exit_0_passes_and_exit_1_fails_with_its_output() {
    let o = probe(&sh("echo fine"), SECOND).await;
    assert!(o.pass, "{o:?}");
    assert_eq!(o.reason, "exit 0");
    let o = probe(
        &sh("echo partial; echo 'etcd unreachable' >&2; exit 1"),
        SECOND,
    )
    .await;
    assert!(!o.pass, "{o:?}");
    assert_eq!(o.reason, "exit 1");
    assert_eq!(
        o.detail.as_deref(),
        Some("stdout: partial; stderr: etcd unreachable")
    );
}

#[tokio::test]
async fn exec_of_a_missing_program_fails() {
    let o = probe(
        &CheckKind::Exec(vec!["/nonexistent/anyvip-probe".into()]),
        SECOND,
    )
    .await;
    assert!(!o.pass, "{o:?}");
    assert!(
        o.reason
            .starts_with("cannot start /nonexistent/anyvip-probe:"),
        "{o:?}"
    );
}

#[tokio::test]
async fn exec_output_is_captured_bounded() {
    // 1 MB of output: read to the end (the program never blocks on a full
    // pipe), only the start kept.
    let o = probe(
        &sh("head -c 1000000 /dev/zero | tr '\\0' x; exit 2"),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(o.reason, "exit 2", "{o:?}");
    let detail = o.detail.unwrap();
    assert!(detail.starts_with("stdout: xxxx"), "{detail:.40}");
    assert!(detail.len() < 1024, "{}", detail.len());
}

/// Whether `pid` is gone (or a zombie nobody reaped yet: dead either way).
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(false),
    }
}

fn read_pid(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn exec_timeout_kills_the_whole_process_group() {
    let dir = temp_dir("exec-timeout");
    let script = format!(
        "echo $$ > {d}/sh.pid; sleep 60 & echo $! > {d}/sleep.pid; echo started; wait",
        d = dir.display()
    );
    let o = probe(&sh(&script), Duration::from_secs(2)).await;
    assert!(!o.pass, "{o:?}");
    assert_eq!(o.reason, "timed out after 2s (process group killed)");
    assert_eq!(o.detail.as_deref(), Some("stdout: started"));
    let pids = [
        read_pid(&dir.join("sh.pid")),
        read_pid(&dir.join("sleep.pid")),
    ];
    let give_up = std::time::Instant::now() + PATIENCE;
    while !pids.iter().all(|p| dead(*p)) {
        assert!(
            std::time::Instant::now() < give_up,
            "still alive: {:?}",
            pids.iter().filter(|p| !dead(**p)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- file ----

#[tokio::test]
async fn file_check_fails_while_the_flag_exists() {
    let dir = temp_dir("file");
    let flag = dir.join("maintenance");
    let kind = CheckKind::File(flag.clone());
    let o = probe(&kind, SECOND).await;
    assert!(o.pass, "{o:?}");
    std::fs::write(&flag, "").unwrap();
    let o = probe(&kind, SECOND).await;
    assert!(!o.pass, "{o:?}");
    assert!(
        o.reason.ends_with("maintenance exists (maintenance)"),
        "{o:?}"
    );
    std::fs::remove_file(&flag).unwrap();
    // A dangling symlink is still a flag.
    std::os::unix::fs::symlink(dir.join("nowhere"), &flag).unwrap();
    assert!(!probe(&kind, SECOND).await.pass);
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- the runner ----

#[tokio::test]
async fn a_check_starts_down_rises_falls_and_rises_again() {
    let dir = temp_dir("runner");
    let flag = dir.join("maintenance");
    let c = check("flag", CheckKind::File(flag.clone()), 100, 80);
    let checks = Checks::spawn(std::slice::from_ref(&c)).unwrap();
    let mut rx = checks.state("flag").unwrap();
    assert_eq!(rx.borrow().health, Health::Down, "unknown is down");
    assert!(rx.borrow().last.is_none());

    let up = wait_for(&mut rx, "up", |s| s.health.is_up()).await;
    assert!(up.probes >= 3, "up only after rise = 3 passes: {up:?}");
    assert_eq!(up.transitions, 1);
    assert!(up.last.as_ref().unwrap().outcome.pass);

    std::fs::write(&flag, "").unwrap();
    let down = wait_for(&mut rx, "down", |s| !s.health.is_up()).await;
    assert_eq!(down.transitions, 2);
    assert!(down.consecutive >= 2, "fall = 2: {down:?}");
    assert!(down.last_error.as_deref().unwrap().contains("exists"));

    std::fs::remove_file(&flag).unwrap();
    let again = wait_for(&mut rx, "up again", |s| s.health.is_up()).await;
    assert_eq!(again.transitions, 3);
    assert!(again.consecutive >= 3, "rise = 3: {again:?}");
    assert!(
        again.last_error.is_some(),
        "the last error is kept after recovery"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_hung_check_does_not_delay_another_check() {
    let pki = pki(&["127.0.0.1"]);
    let server = apiserver(&pki, Mode::Hang).await;
    let dir = temp_dir("hung");
    let hung = check(
        "hung",
        CheckKind::Http(Box::new(http_kind(
            format!("https://{}/readyz", server.local_addr()),
            Some(tls_with_ca(&pki.ca_pem)),
        ))),
        4000,
        3000,
    );
    let fast = check("fast", CheckKind::File(dir.join("absent")), 50, 40);
    let checks = Checks::spawn(&[hung, fast]).unwrap();
    let hung_rx = checks.state("hung").unwrap();
    let mut fast_rx = checks.state("fast").unwrap();

    // While the hung probe is still waiting (it has no result yet), the
    // fast check keeps producing results, and comes up.
    let start = fast_rx.borrow().probes;
    let fast = wait_for(&mut fast_rx, "fast results", |s| {
        s.probes >= start + 5 && s.health.is_up()
    })
    .await;
    assert!(fast.health.is_up(), "{fast:?}");
    assert!(
        hung_rx.borrow().last.is_none(),
        "the hung probe has not finished yet (its timeout is 3s)"
    );

    // Then it times out and says so.
    let mut hung_rx = hung_rx;
    let hung = wait_for(&mut hung_rx, "the hung probe's result", |s| {
        s.last.is_some()
    })
    .await;
    let outcome = &hung.last.as_ref().unwrap().outcome;
    assert_eq!(outcome.reason, "timed out after 3s (TLS handshake)");
    assert_eq!(hung.health, Health::Down);
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- the VIP combiner ----

fn state(name: &str, health: Health, last: Option<Outcome>) -> CheckState {
    CheckState {
        name: Arc::from(name),
        kind: "file",
        health,
        since: std::time::SystemTime::now(),
        last: last.map(|outcome| Probe {
            outcome,
            latency: Duration::ZERO,
            at: std::time::SystemTime::now(),
        }),
        consecutive: 1,
        progress: (0, 1),
        last_error: None,
        probes: 1,
        failures: 0,
        transitions: 0,
        latency: Default::default(),
    }
}

#[test]
fn a_vip_is_up_only_when_all_its_checks_are_up() {
    let up = |n| state(n, Health::Up, Some(Outcome::pass("HTTP/1.1 200")));
    assert_eq!(
        combine(&[up("api"), up("flag")]),
        (true, "all checks up (api, flag)".to_string())
    );
    let failing = state(
        "api",
        Health::Down,
        Some(Outcome::fail("HTTP/1.1 500 (expected 200)")),
    );
    assert_eq!(
        combine(&[up("flag"), failing]),
        (
            false,
            "check api is down: HTTP/1.1 500 (expected 200)".to_string()
        )
    );
    let unknown = state("api", Health::Down, None);
    assert_eq!(
        combine(&[unknown]),
        (false, "check api is down: no result yet".to_string())
    );
    assert!(!combine(&[]).0, "no checks is down");
}

/// Wait until the VIPs' levels satisfy `done` (checks run on their own
/// schedule; the combiner is asked whenever one of them says it changed).
async fn levels_until(
    checks: &Checks,
    vips: &[crate::config::Vip],
    done: impl Fn(&[VipLevel]) -> bool,
) -> Vec<VipLevel> {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let levels = checks.levels(vips);
            if done(&levels) {
                return levels;
            }
            checks.changed().await;
        }
    })
    .await
    .expect("the VIP levels expected")
}

fn level<'a>(levels: &'a [VipLevel], prefix: &str) -> &'a VipLevel {
    let p: ipnet::IpNet = prefix.parse().unwrap();
    levels.iter().find(|l| l.prefix == p).unwrap()
}

fn vip(prefix: &str, checks: &[&str]) -> crate::config::Vip {
    crate::config::Vip {
        prefix: prefix.parse().unwrap(),
        always: checks.is_empty(),
        checks: checks.iter().map(|s| s.to_string()).collect(),
        med: None,
        local_pref: 100,
        prepend: 0,
        communities: vec![],
        large_communities: vec![],
        extended_communities: vec![],
        steer: None,
    }
}

#[tokio::test]
async fn vip_levels_follow_their_checks_and_vips_are_independent() {
    let dir = temp_dir("combiner");
    let (a, b) = (dir.join("a"), dir.join("b"));
    std::fs::write(&b, "").unwrap(); // b starts failing
    let checks = Checks::spawn(&[
        check("a", CheckKind::File(a.clone()), 100, 80),
        check("b", CheckKind::File(b.clone()), 100, 80),
    ])
    .unwrap();
    let vips = [
        vip("192.0.2.100/32", &["a"]),
        vip("2001:db8::100/128", &["a", "b"]),
        vip("198.51.100.1/32", &[]),
    ];
    // Fail closed: nothing with checks is up before they have passed;
    // `always` is up from the start.
    let first = checks.levels(&vips);
    assert!(!level(&first, "192.0.2.100/32").up && !level(&first, "2001:db8::100/128").up);
    assert!(level(&first, "198.51.100.1/32").up);

    // a passes: the /32 comes up. The /128's only failing check is a
    // `file` check (b, the maintenance flag): it is in maintenance, which
    // the lifecycle turns into a drain rather than a plain withdrawal.
    let levels = levels_until(&checks, &vips, |l| {
        level(l, "192.0.2.100/32").up && level(l, "2001:db8::100/128").maintenance
    })
    .await;
    assert_eq!(level(&levels, "192.0.2.100/32").reason, "all checks up (a)");
    assert!(!level(&levels, "2001:db8::100/128").up, "b is still down");

    std::fs::remove_file(&b).unwrap();
    let levels = levels_until(&checks, &vips, |l| level(l, "2001:db8::100/128").up).await;
    assert_eq!(
        level(&levels, "2001:db8::100/128"),
        &VipLevel {
            prefix: "2001:db8::100/128".parse().unwrap(),
            up: true,
            maintenance: false,
            reason: "all checks up (a, b)".into(),
        }
    );

    // a fails: both VIPs go down.
    std::fs::write(&a, "").unwrap();
    let levels = levels_until(&checks, &vips, |l| {
        !level(l, "192.0.2.100/32").up && !level(l, "2001:db8::100/128").up
    })
    .await;
    let v4 = level(&levels, "192.0.2.100/32");
    assert!(
        v4.maintenance
            && v4.reason.starts_with("maintenance: check a is down:")
            && v4.reason.ends_with("exists (maintenance)"),
        "{levels:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_reload_keeps_unchanged_checks_running_and_restarts_changed_ones_down() {
    let dir = temp_dir("reconfigure");
    let a = check("a", CheckKind::File(dir.join("a")), 50, 40);
    let b = check("b", CheckKind::File(dir.join("b")), 50, 40);
    let mut checks = Checks::spawn(&[a.clone(), b.clone()]).unwrap();
    let vips = [vip("192.0.2.100/32", &["a"]), vip("192.0.2.101/32", &["b"])];
    levels_until(&checks, &vips, |l| l.iter().all(|l| l.up)).await;
    let probes_before = checks.state("a").unwrap().borrow().probes;

    // b changes (a new interval); a does not.
    let mut b2 = b.clone();
    b2.interval = std::time::Duration::from_millis(60);
    let restarted = checks.reconfigure(&[a.clone(), b2]).unwrap();
    assert_eq!(restarted, vec!["b".to_string()]);
    let levels = checks.levels(&vips);
    assert!(level(&levels, "192.0.2.100/32").up, "a kept its state");
    assert!(
        !level(&levels, "192.0.2.101/32").up,
        "the changed check starts down (fail closed)"
    );
    assert!(
        checks.state("a").unwrap().borrow().probes >= probes_before,
        "a kept its counters"
    );
    // A check that is gone makes its VIPs down, never up with fewer checks.
    checks.reconfigure(std::slice::from_ref(&a)).unwrap();
    assert!(!level(&checks.levels(&vips), "192.0.2.101/32").up);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_lifecycle_gets_a_vip_only_after_rise_passes_and_drains_on_the_flag() {
    let dir = temp_dir("announcer");
    let flag = dir.join("maintenance");
    let mut c = check("apiserver", CheckKind::File(flag.clone()), 100, 80);
    c.rise = 4;
    let checks = Checks::spawn(&[c]).unwrap();
    let v = vip("192.0.2.100/32", &["apiserver"]);
    let prefix = v.prefix;
    let drain = crate::config::Drain {
        delay: std::time::Duration::from_millis(200),
        prepend: 0,
        med: None,
    };
    let config = crate::config::Config {
        speaker: crate::config::Speaker {
            asn: anyvip_proto::Asn(65001),
            router_id: "192.0.2.1".parse().unwrap(),
            listen: vec![],
        },
        peers: vec![],
        vips: vec![v.clone()],
        checks: vec![],
        dataplane: crate::config::Dataplane {
            manage: false,
            interface: "lo".to_string(),
            guard: crate::steer::GuardConfig::default(),
            reconcile_interval: crate::config::DEFAULT_RECONCILE_INTERVAL,
        },
        drain,
        api: crate::config::Api::default(),
    };
    let mut lifecycle = crate::vip::Lifecycle::new(&config);
    let desired = lifecycle.routes();
    let vips = [v];
    let state = checks.state("apiserver").unwrap();

    // Exactly as the daemon's loop does it.
    let levels = levels_until(&checks, &vips, |l| l.iter().all(|l| l.up)).await;
    lifecycle.health(&levels, std::time::Instant::now());
    assert!(desired.borrow().routes.contains_key(&prefix));
    let s = state.borrow().clone();
    assert!(
        s.probes >= 4 && s.health.is_up(),
        "announced before rise: {s:?}"
    );
    assert_eq!(
        s.latency.count(),
        s.probes,
        "every probe is in the histogram"
    );

    // The maintenance flag drains (design section 5): first the route
    // with GRACEFUL_SHUTDOWN, then, after the drain delay, the withdrawal.
    std::fs::write(&flag, "").unwrap();
    let levels = levels_until(&checks, &vips, |l| l.iter().all(|l| l.maintenance)).await;
    let now = std::time::Instant::now();
    lifecycle.health(&levels, now);
    assert!(!state.borrow().health.is_up());
    assert!(
        desired.borrow().routes[&prefix]
            .communities
            .contains(&anyvip_proto::attribute::Community::GRACEFUL_SHUTDOWN),
        "draining"
    );
    lifecycle.tick(now + std::time::Duration::from_millis(250));
    assert!(
        desired.borrow().routes.is_empty(),
        "withdrawn after the drain delay"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
