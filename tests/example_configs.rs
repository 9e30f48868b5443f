//! The example configurations in `config/` pass `anyvip check-config`, and
//! explain every key; the router snippets in `docs/routers.md` parse in the
//! routers they are written for.
//!
//! The examples name real paths (`/etc/kubernetes/pki/ca.crt`,
//! `/etc/anyvip/tor.key`, ...), which `check-config` reads. The test copies
//! each example to a temporary directory, creates those files under it
//! (certificates and keys made with rcgen, keys for TCP MD5) and points the
//! copy at them: the only change to the example is that path prefix.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CONFIG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
const ROUTERS_MD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/routers.md");

/// The examples the documentation promises.
const EXAMPLES: [&str; 4] = [
    "anyvip.toml",
    "dual-stack.toml",
    "ibgp.toml",
    "local-frr.toml",
];

fn examples() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(CONFIG_DIR)
        .expect("config/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    found.sort();
    let names: BTreeSet<String> = found
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for e in EXAMPLES {
        assert!(names.contains(e), "config/{e} is missing");
    }
    found
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What a file-valued key must hold for `check-config` to accept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Needs {
    CaCert,
    ClientCert,
    ClientKey,
    Md5Key,
}

/// Every `(key, path)` of a file-valued key in the parsed example.
fn file_keys(value: &toml::Value, out: &mut Vec<(Needs, String)>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let needs = match k.as_str() {
                    "ca_file" => Some(Needs::CaCert),
                    "client_cert" => Some(Needs::ClientCert),
                    "client_key" => Some(Needs::ClientKey),
                    "password_file" => Some(Needs::Md5Key),
                    _ => None,
                };
                match (needs, v.as_str()) {
                    (Some(n), Some(path)) => out.push((n, path.to_string())),
                    _ => file_keys(v, out),
                }
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|v| file_keys(v, out)),
        _ => {}
    }
}

struct Pem {
    ca: String,
    client_cert: String,
    client_key: String,
}

fn pem() -> Pem {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).expect("CA");
    let client_key = rcgen::KeyPair::generate().expect("client key");
    let client = rcgen::CertificateParams::new(vec!["anyvip".to_string()])
        .expect("client params")
        .self_signed(&client_key)
        .expect("client certificate");
    Pem {
        ca: ca.pem(),
        client_cert: client.pem(),
        client_key: client_key.serialize_pem(),
    }
}

/// The example, in `dir`, with every file it names created under `dir`.
fn staged(example: &Path, dir: &Path) -> PathBuf {
    let original = std::fs::read_to_string(example).expect("read the example");
    let parsed: toml::Value = toml::from_str(&original)
        .unwrap_or_else(|e| panic!("{}: not TOML: {e}", example.display()));
    let mut files = Vec::new();
    file_keys(&parsed, &mut files);
    // The same file may serve several keys (one MD5 key for both ToRs).
    let files: BTreeSet<(Needs, String)> = files.into_iter().collect();
    let pem = pem();
    let mut copy = original.clone();
    for (needs, path) in files {
        assert!(
            path.starts_with('/'),
            "{}: {path}: examples name absolute paths, as installed",
            example.display()
        );
        let target = dir.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().expect("a parent")).expect("mkdir");
        let body = match needs {
            Needs::CaCert => pem.ca.clone(),
            Needs::ClientCert => pem.client_cert.clone(),
            Needs::ClientKey => pem.client_key.clone(),
            Needs::Md5Key => "example-md5-key\n".to_string(),
        };
        std::fs::write(&target, body).expect("write a stand-in file");
        let quoted = format!("\"{path}\"");
        assert!(
            copy.contains(&quoted),
            "{path} is not written as \"{path}\""
        );
        copy = copy.replace(&quoted, &format!("\"{}\"", target.display()));
    }
    let staged = dir.join(example.file_name().expect("a file name"));
    std::fs::write(&staged, copy).expect("write the copy");
    staged
}

#[test]
fn every_example_passes_check_config() {
    for example in examples() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = staged(&example, dir.path());
        let out = Command::new(env!("CARGO_BIN_EXE_anyvip"))
            .args(["check-config", "-c"])
            .arg(&config)
            .output()
            .expect("run anyvip check-config");
        assert!(
            out.status.success(),
            "{} fails check-config:\n{}",
            example.display(),
            text(&out)
        );
    }
}

/// Every table header and every key is explained: the line before it is a
/// comment (examples are documentation first).
#[test]
fn every_key_in_the_examples_has_a_comment() {
    for example in examples() {
        let body = std::fs::read_to_string(&example).expect("read");
        let mut previous = "";
        for (n, line) in body.lines().enumerate() {
            let line = line.trim();
            let is_key = line.starts_with('[')
                || line.split_once('=').is_some_and(|(k, _)| {
                    !k.trim().is_empty() && !k.contains('#') && !k.contains('"')
                });
            if is_key && !line.starts_with('#') {
                assert!(
                    previous.starts_with('#'),
                    "{}:{}: `{line}` has no comment above it",
                    example.display(),
                    n + 1
                );
            }
            previous = line;
        }
    }
}

/// The fenced code blocks of `docs/routers.md` whose info string is `lang`.
fn snippets(lang: &str) -> Vec<(usize, String)> {
    let md = std::fs::read_to_string(ROUTERS_MD).expect("docs/routers.md");
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in md.lines().enumerate() {
        match (&mut current, line.trim_end()) {
            (None, l) if l == format!("```{lang}") => current = Some((n + 2, String::new())),
            (Some(_), "```") => out.extend(current.take()),
            (Some((_, body)), l) => {
                body.push_str(l);
                body.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

fn check_snippets(lang: &str, file: &str, checker: impl Fn(&Path) -> Command) -> usize {
    let found = snippets(lang);
    for (line, body) in &found {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(file);
        std::fs::write(&path, body).expect("write the snippet");
        let mut cmd = checker(&path);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "docs/routers.md:{line}: the {lang} snippet does not parse:\n{}",
            text(&out)
        );
    }
    found.len()
}

#[test]
fn frr_snippets_parse() {
    // vtysh's dry run checks every line against FRR's command tree, without
    // running daemons (scripts/test installs FRR).
    let n = check_snippets("frr", "frr.conf", |p| {
        let mut c = Command::new("vtysh");
        c.arg("--dryrun").arg("-f").arg(p);
        c
    });
    assert!(n >= 2, "docs/routers.md should have FRR snippets");
}

#[test]
fn bird_snippets_parse() {
    let n = check_snippets("bird", "bird.conf", |p| {
        let mut c = Command::new("bird");
        c.arg("-p").arg("-c").arg(p);
        c
    });
    assert!(n >= 2, "docs/routers.md should have BIRD snippets");
}

#[test]
fn openbgpd_snippets_parse_where_openbgpd_is_installed() {
    let bgpd = Path::new("/usr/sbin/bgpd");
    if !bgpd.exists() {
        eprintln!(
            "OpenBGPD is not installed (apt-get install openbgpd): its snippets are not checked"
        );
        return;
    }
    let n = check_snippets("openbgpd", "bgpd.conf", |p| {
        let mut c = Command::new(bgpd);
        c.arg("-n").arg("-f").arg(p);
        c
    });
    assert!(n >= 1, "docs/routers.md should have an OpenBGPD snippet");
}

/// docs/kubernetes.md: every anyvip file in it (a `toml` block with a
/// `[speaker]`) is valid as written, and every other `toml` block (a part
/// of one) is TOML. Validated by the library, not `check-config`: its
/// `router_id = "auto"` would be derived toward routers this machine has
/// no route to.
#[test]
fn the_kubernetes_guide_configurations_are_valid() {
    let guide = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/kubernetes.md");
    let md = std::fs::read_to_string(guide).expect("docs/kubernetes.md");
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in md.lines().enumerate() {
        match (&mut current, line.trim_end()) {
            (None, "```toml") => current = Some((n + 2, String::new())),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some((_, body)), l) => {
                body.push_str(l);
                body.push('\n');
            }
            (None, _) => {}
        }
    }
    let mut complete = 0;
    for (line, body) in &blocks {
        if let Err(e) = body.parse::<toml::Table>() {
            panic!("docs/kubernetes.md:{line}: not TOML: {e}");
        }
        if body.contains("[speaker]") {
            complete += 1;
            // The CA is not on this machine: a warning, as before kubeadm init.
            let parsed = anyvip::config::parse_with_warnings(body, Path::new("/nonexistent"));
            assert!(parsed.is_ok(), "docs/kubernetes.md:{line}: {parsed:?}");
        }
    }
    assert!(
        complete >= 1,
        "docs/kubernetes.md has no complete configuration"
    );
}
