//! `anyvip check-config` as an operator runs it: every problem listed with
//! its key, its value and what is allowed, exit 2; a PEM file that is not
//! there yet (before `kubeadm init`) is a warning, exit 0.

use std::path::Path;
use std::process::Output;

fn check_config(dir: &Path, text: &str) -> Output {
    let path = dir.join("anyvip.toml");
    std::fs::write(&path, text).expect("write the configuration");
    std::process::Command::new(env!("CARGO_BIN_EXE_anyvip"))
        .args(["check-config", "-c"])
        .arg(&path)
        .output()
        .expect("run anyvip check-config")
}

const SPEAKER_AND_PEER: &str = r#"
[speaker]
asn = 65001
router_id = "192.0.2.11"

[[peer]]
address = "192.0.2.1"
asn = 65000
"#;

#[test]
fn every_problem_is_listed_with_key_value_and_bounds_and_the_exit_code_is_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!(
        r#"{SPEAKER_AND_PEER}
connect_retry = "100000000s"

[[peer]]
address = "300.1.1.1"
asn = 65000

[check.apiserver]
tcp = "127.0.0.1:6443"
interval = "-1s"
rise = 4294967295

[[vip]]
prefix = "2001:db8::100/128"
checks = ["apiserver"]

[[vip]]
prefix = "192.0.2.100/33"
always = true

[drain]
delay = "1000000000s"
"#
    );
    let out = check_config(dir.path(), &text);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for needle in [
        "6 error(s)",
        "peer[0].connect_retry: \"100000000s\" is too long (allowed: 1s to 10m)",
        "peer[1].address: \"300.1.1.1\" is not an IP address",
        "check.apiserver.interval: \"-1s\" is negative",
        "(allowed: 50ms to 5m)",
        "check.apiserver.rise: 4294967295 is out of range (allowed: 1 to 100)",
        "vip[1].prefix: \"192.0.2.100/33\": the prefix length \"33\" is not 0 to 32",
        "drain.delay: \"1000000000s\" is too long (allowed: 0s to 10m)",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in\n{stderr}");
    }
    assert!(!stderr.contains("expected number at"), "{stderr}");
    // The IPv6 VIP is named once every peer is valid.
    let fixed = text
        .replace("300.1.1.1", "192.0.2.2")
        .replace("\"100000000s\"", "\"5s\"")
        .replace("\"-1s\"", "\"1s\"")
        .replace("4294967295", "3")
        .replace("/33", "/32")
        .replace("\"1000000000s\"", "\"5s\"");
    let out = check_config(dir.path(), &fixed);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("1 error(s)")
            && stderr.contains(
                "vip[0].prefix: 2001:db8::100/128 is an IPv6 VIP, but no peer carries ipv6"
            ),
        "{stderr}"
    );
}

#[test]
fn a_ca_file_not_written_yet_is_a_warning_and_the_exit_code_is_0() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("pki/ca.crt");
    let text = format!(
        r#"{SPEAKER_AND_PEER}
[check.apiserver]
https = "https://127.0.0.1:6443/readyz"
ca_file = "{}"
server_name = "kubernetes"

[[vip]]
prefix = "192.0.2.100/32"
checks = ["apiserver"]
"#,
        ca.display()
    );
    let out = check_config(dir.path(), &text);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: check.apiserver.ca_file: cannot read {}",
            ca.display()
        )),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok ("));
    // With another problem, the warning is listed with the error.
    let out = check_config(dir.path(), &text.replace("asn = 65000", "asn = 0"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("peer[0].asn: 0 is reserved")
            && stderr.contains("warning: check.apiserver.ca_file"),
        "{stderr}"
    );
}

#[test]
fn an_auto_router_id_is_derived_and_said_and_one_that_cannot_be_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = r#"
[speaker]
asn = 65001
router_id = "auto"

[[peer]]
address = "127.0.0.2"
asn = 65000

[[vip]]
prefix = "192.0.2.100/32"
always = true
"#;
    let out = check_config(dir.path(), text);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.starts_with("router_id: auto -> 127.0.0.1 (source address toward peer 127.0.0.2)\n"),
        "{stdout}"
    );
    // Left out: the same.
    let out = check_config(dir.path(), &text.replace("router_id = \"auto\"\n", ""));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("router_id: auto -> 127.0.0.1"),
        "{out:?}"
    );
    // Written: nothing to say.
    let out = check_config(dir.path(), &text.replace("\"auto\"", "\"192.0.2.11\""));
    assert!(out.status.success(), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("router_id"));
    // A source that cannot be had (a local_address that is not the
    // node's: RFC 5737 TEST-NET-3) is an error with the key, exit 2.
    let out = check_config(
        dir.path(),
        &text.replace(
            "asn = 65000",
            "asn = 65000\nlocal_address = \"203.0.113.254\"",
        ),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("speaker.router_id: auto: no IPv4 source address toward peer 127.0.0.2"),
        "{stderr}"
    );
}
