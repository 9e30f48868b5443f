//! An `https` check configured before its files exist (before `kubeadm
//! init` writes the CA): the probe fails naming the file, then passes once
//! the file is there and the apiserver is up, and keeps the TLS setup it
//! built. The configuration goes through `config::parse_with_warnings`, as
//! `anyvip run` loads it.

use std::path::Path;
use std::time::Duration;

use anyvip_lab::{server_config, Apiserver, Mode, Pki};
use tokio::time::Instant;

use super::HttpProbe;
use crate::config::{self, CheckKind};

/// Generous: a probe that finishes returns at once.
const TIMEOUT: Duration = Duration::from_secs(5);

async fn probe(p: &HttpProbe) -> super::Outcome {
    p.run(Instant::now() + TIMEOUT, TIMEOUT).await
}

#[tokio::test]
async fn a_missing_ca_file_fails_the_probe_naming_it_until_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("pki").join("ca.crt");
    let pki = Pki::generate(&["kubernetes".to_string()]).unwrap();
    // Its port now; nothing listens on it until the CA is written.
    let tls = server_config(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).unwrap();
    let server = Apiserver::start("127.0.0.1:0".parse().unwrap(), "n1", Some(tls), Mode::Down)
        .await
        .unwrap();
    assert!(server.apply(Mode::Down).await);
    let text = format!(
        r#"
[speaker]
asn = 65001
router_id = "192.0.2.11"

[[peer]]
address = "192.0.2.1"
asn = 65000

[check.apiserver]
https = "https://{}/readyz"
ca_file = "{}"
server_name = "kubernetes"

[[vip]]
prefix = "192.0.2.100/32"
checks = ["apiserver"]
"#,
        server.local_addr(),
        ca_file.display()
    );
    let (c, warnings) = config::parse_with_warnings(&text, Path::new(".")).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].key, "check.apiserver.ca_file");
    let CheckKind::Http(h) = &c.checks[0].kind else {
        panic!("{:?}", c.checks[0]);
    };
    // The check starts (no error), and each probe says which file is missing.
    let p = HttpProbe::new(h).unwrap();
    for _ in 0..2 {
        let o = probe(&p).await;
        assert!(!o.pass, "{o:?}");
        assert!(
            o.reason.starts_with(&format!(
                "TLS setup: ca_file: cannot read {}: No such file",
                ca_file.display()
            )),
            "{o:?}"
        );
    }
    // Half-written or wrong: still failing, saying what is wrong with it.
    std::fs::create_dir_all(ca_file.parent().unwrap()).unwrap();
    std::fs::write(&ca_file, "not yet\n").unwrap();
    let o = probe(&p).await;
    assert!(
        !o.pass && o.reason.contains("no CERTIFICATE in it"),
        "{o:?}"
    );
    assert_eq!(server.requests(), 0, "no connection without a TLS setup");

    // kubeadm init: the CA is written, the apiserver comes up.
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    assert!(server.apply(Mode::Ok).await);
    let o = probe(&p).await;
    assert!(o.pass, "{o:?}");
    assert_eq!(server.requests(), 1);

    // Built once and kept: the file is not read again.
    std::fs::remove_file(&ca_file).unwrap();
    let o = probe(&p).await;
    assert!(o.pass, "the TLS setup is reused: {o:?}");
}
