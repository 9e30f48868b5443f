use super::*;

use anyvip_proto::attribute::{Community, ExtendedCommunity};
use anyvip_proto::Family;
use std::time::Duration;

const MINIMAL: &str = r#"
[speaker]
asn = 65001
router_id = "192.0.2.11"

[[peer]]
address = "192.0.2.1"
asn = 65000

[[vip]]
prefix = "192.0.2.100/32"
always = true
"#;

fn errors(text: &str) -> Vec<String> {
    parse(text, Path::new("."))
        .expect_err("config should be rejected")
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn minimal_config_gets_the_documented_defaults() {
    let c = parse(MINIMAL, Path::new(".")).unwrap();
    let p = &c.peers[0];
    assert_eq!(p.name, "192.0.2.1");
    assert_eq!(p.port, 179);
    assert_eq!(p.hold_time.seconds(), 9);
    assert_eq!(p.ttl, Ttl::Send(1));
    assert_eq!(p.families, vec![Family::IPV4_UNICAST]);
    assert!(!p.passive);
    assert!(c.speaker.listen.is_empty());
    assert_eq!(c.vips[0].local_pref, 100);
}

#[test]
fn unknown_key_is_rejected_with_its_path() {
    let text = MINIMAL.replace("asn = 65000", "asn = 65000\nholdtime = \"3s\"");
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("peer[0]"), "{e:?}");
    assert!(e[0].contains("holdtime"), "{e:?}");
}

#[test]
fn wrong_type_names_the_key_and_line() {
    let e = errors(&MINIMAL.replace("asn = 65000", "asn = \"65000\""));
    assert!(e[0].starts_with("peer[0].asn:"), "{e:?}");
    assert!(e[0].contains("line 8"), "{e:?}");
}

#[test]
fn every_semantic_error_is_reported_at_once() {
    let text = r#"
[speaker]
asn = 65001
router_id = "0.0.0.0"

[[peer]]
address = "192.0.2.1"
asn = 65000
hold_time = "2s"

[[peer]]
address = "192.0.2.1"
asn = 65000
multihop = 0

[[vip]]
prefix = "192.0.2.0/24"
always = true
communities = ["65000:100", "70000:1"]
"#;
    let e = errors(text).join("\n");
    for needle in [
        "speaker.router_id: must not be 0.0.0.0",
        "peer[0].hold_time: \"2s\": the hold time must be 0 or at least 3 seconds",
        "peer[1].multihop: 0 is out of range (allowed: 1 to 255",
        "vip[0].prefix: 192.0.2.0/24 is not a host route",
        "vip[0].communities[1]: \"70000\" in \"70000:1\" is not a number",
    ] {
        assert!(e.contains(needle), "missing {needle:?} in\n{e}");
    }
}

#[test]
fn duplicate_peer_address_is_an_error() {
    let text = format!("{MINIMAL}\n[[peer]]\naddress = \"192.0.2.1\"\nasn = 65002\n");
    let e = errors(&text);
    assert_eq!(e, vec!["peer[1].address: 192.0.2.1 is already peer[0]"]);
}

#[test]
fn hold_time_zero_disables_timers_and_sub_second_hold_is_rejected() {
    let c = parse(
        &MINIMAL.replace("asn = 65000", "asn = 65000\nhold_time = \"0s\""),
        Path::new("."),
    )
    .unwrap();
    assert_eq!(c.peers[0].hold_time.duration(), None);
    let e = errors(&MINIMAL.replace("asn = 65000", "asn = 65000\nhold_time = \"3500ms\""));
    assert!(e[0].contains("whole number of seconds"), "{e:?}");
}

#[test]
fn ibgp_peer_defaults_to_ttl_64_and_gtsm_excludes_multihop() {
    let c = parse(
        &MINIMAL.replace("asn = 65000", "asn = 65001"),
        Path::new("."),
    )
    .unwrap();
    assert_eq!(c.peers[0].ttl, Ttl::Send(64));
    assert!(c.peers[0].is_internal(&c.speaker));
    let e = errors(&MINIMAL.replace(
        "asn = 65000",
        "asn = 65000\nttl_security = true\nmultihop = 2",
    ));
    assert!(e[0].starts_with("peer[0].ttl_security:"), "{e:?}");
}

#[test]
fn password_is_read_from_its_file_without_the_trailing_newline() {
    let dir = std::env::temp_dir().join(format!("anyvip-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tor1.key"), "s3cret\n").unwrap();
    let text = MINIMAL.replace("asn = 65000", "asn = 65000\npassword_file = \"tor1.key\"");
    let c = parse(&text, &dir).unwrap();
    assert_eq!(c.peers[0].password.as_deref(), Some(&b"s3cret"[..]));
    let e = parse(&text.replace("tor1.key", "missing.key"), &dir).unwrap_err();
    assert!(
        e[0].to_string()
            .starts_with("peer[0].password_file: cannot read"),
        "{e:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ipv6_over_an_ipv4_session_needs_an_ipv6_next_hop() {
    let text = MINIMAL.replace(
        "asn = 65000",
        "asn = 65000\nfamilies = [\"ipv4\", \"ipv6\"]",
    );
    let e = errors(&text);
    assert!(e[0].starts_with("peer[0].next_hop_v6:"), "{e:?}");
    let ok = text.replace("families", "next_hop_v6 = \"2001:db8::b\"\nfamilies");
    assert_eq!(
        parse(&ok, Path::new(".")).unwrap().peers[0].families.len(),
        2
    );
}

#[test]
fn ipv6_peer_defaults_to_the_ipv6_family() {
    let text = MINIMAL
        .replace("192.0.2.1\"", "2001:db8::1\"")
        .replace("192.0.2.100/32", "2001:db8::100/128");
    let c = parse(&text, Path::new(".")).unwrap();
    assert_eq!(c.peers[0].families, vec![Family::IPV6_UNICAST]);
}

#[test]
fn passive_peer_makes_the_speaker_listen_on_179() {
    let c = parse(
        &MINIMAL.replace("asn = 65000", "asn = 65000\npassive = true"),
        Path::new("."),
    )
    .unwrap();
    assert_eq!(c.speaker.listen.len(), 2);
    assert!(c.speaker.listen.iter().all(|a| a.port() == 179));
}

#[test]
fn communities_of_every_kind_parse() {
    let text = MINIMAL.replace(
        "always = true",
        "always = true\ncommunities = [\"65000:100\", \"no-export\"]\nlarge_communities = [\"4200000001:1:2\"]\nextended_communities = [\"rt:65000:7\", \"0x0003fde800000001\"]",
    );
    let c = parse(&text, Path::new(".")).unwrap();
    let v = &c.vips[0];
    assert_eq!(
        v.communities,
        vec![Community::new(65000, 100), Community::NO_EXPORT]
    );
    assert_eq!(v.large_communities[0].global, 4_200_000_001);
    assert_eq!(
        v.extended_communities[0],
        ExtendedCommunity::route_target(65000, 7)
    );
    assert_eq!(v.extended_communities[1].subtype(), 3);
}

/// MINIMAL with its VIP following `checks` instead of `always`, plus the
/// given check tables.
fn with_checks(vip_checks: &str, tables: &str) -> String {
    format!(
        "{}\n{tables}\n",
        MINIMAL.replace("always = true", &format!("checks = {vip_checks}"))
    )
}

const APISERVER_TCP: &str = "[check.apiserver]\ntcp = \"127.0.0.1:6443\"\n";

#[test]
fn check_gets_the_documented_defaults() {
    let c = parse(
        &with_checks("[\"apiserver\"]", APISERVER_TCP),
        Path::new("."),
    )
    .unwrap();
    assert_eq!(c.vips[0].checks, vec!["apiserver"]);
    assert!(!c.vips[0].always);
    let k = &c.checks[0];
    assert_eq!(k.name, "apiserver");
    assert_eq!(k.kind, CheckKind::Tcp("127.0.0.1:6443".into()));
    assert_eq!(k.interval, Duration::from_secs(1));
    assert_eq!(k.timeout, Duration::from_millis(800), "4/5 of the interval");
    assert_eq!((k.rise, k.fall), (3, 2));
}

#[test]
fn default_timeout_follows_a_sub_second_interval() {
    let text = with_checks(
        "[\"apiserver\"]",
        &format!("{APISERVER_TCP}interval = \"250ms\"\nrise = 1\nfall = 5\n"),
    );
    let k = &parse(&text, Path::new(".")).unwrap().checks[0];
    assert_eq!(k.interval, Duration::from_millis(250));
    assert_eq!(k.timeout, Duration::from_millis(200));
    assert_eq!((k.rise, k.fall), (1, 5));
}

#[test]
fn every_check_kind_parses() {
    let tables = r#"
[check.api]
https = "https://127.0.0.1:6443/readyz"
insecure_skip_verify = true
expected_status = [200, 204]
expect_body = "ok"

[check.proxy]
http = "http://[::1]:10256/healthz"

[check.port]
tcp = "localhost:6443"

[check.script]
exec = ["/usr/local/bin/probe", "--quiet"]

[check.maintenance]
file = "/etc/anyvip/maintenance"
"#;
    let text = with_checks(
        r#"["api", "proxy", "port", "script", "maintenance"]"#,
        tables,
    );
    let c = parse(&text, Path::new(".")).unwrap();
    let kinds: Vec<&str> = c.checks.iter().map(|k| k.kind.name()).collect();
    // Sorted by name.
    assert_eq!(kinds, vec!["https", "file", "tcp", "http", "exec"]);
    let CheckKind::Http(api) = &c.checks[0].kind else {
        panic!("{:?}", c.checks[0]);
    };
    assert_eq!(api.url.path(), "/readyz");
    assert_eq!(api.expected_status, vec![200, 204]);
    assert_eq!(api.expect_body.as_deref(), Some("ok"));
    let tls = api.tls.as_ref().unwrap();
    assert!(tls.insecure_skip_verify && tls.ca.is_none() && tls.client_auth.is_none());
    let CheckKind::Http(proxy) = &c.checks[3].kind else {
        panic!("{:?}", c.checks[3]);
    };
    assert!(proxy.tls.is_none());
    assert_eq!(proxy.expected_status, vec![200]);
    assert_eq!(
        c.checks[4].kind,
        CheckKind::Exec(vec!["/usr/local/bin/probe".into(), "--quiet".into()])
    );
    assert_eq!(
        c.checks[1].kind,
        CheckKind::File("/etc/anyvip/maintenance".into())
    );
}

#[test]
fn https_reads_its_pem_files_relative_to_the_config() {
    let dir = std::env::temp_dir().join(format!("anyvip-config-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client = rcgen::CertificateParams::new(vec!["anyvip".to_string()])
        .unwrap()
        .self_signed(&client_key)
        .unwrap();
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    std::fs::write(dir.join("client.crt"), client.pem()).unwrap();
    std::fs::write(dir.join("client.key"), client_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("garbage.crt"), "not a certificate\n").unwrap();
    let table = r#"[check.apiserver]
https = "https://127.0.0.1:6443/readyz"
ca_file = "ca.crt"
client_cert = "client.crt"
client_key = "client.key"
server_name = "kubernetes"
"#;
    let text = with_checks("[\"apiserver\"]", table);
    let c = parse(&text, &dir).unwrap();
    let CheckKind::Http(h) = &c.checks[0].kind else {
        panic!("{:?}", c.checks[0]);
    };
    let tls = h.tls.as_ref().unwrap();
    assert_eq!(tls.ca.as_ref().unwrap().path, dir.join("ca.crt"));
    assert_eq!(tls.ca.as_ref().unwrap().pem, Some(ca.pem().into_bytes()));
    assert_eq!(tls.server_name.as_deref(), Some("kubernetes"));
    assert!(
        !format!("{tls:?}").contains("PRIVATE KEY"),
        "Debug must not show the key"
    );

    let bad = parse(
        &text
            .replace("\"ca.crt\"", "\"garbage.crt\"")
            .replace("\"client.key\"", "\"missing.key\""),
        &dir,
    )
    .unwrap_err();
    // The key is not there (a warning), the CA is not a certificate (an
    // error, found although the key could not be read).
    let e: Vec<String> = bad.iter().map(|e| e.to_string()).collect();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("check.apiserver.ca_file:") && e[0].contains("no CERTIFICATE"),
        "{e:?}"
    );
    // The key is the certificate's, not a key: the TLS setup says so.
    let e = parse(&text.replace("\"client.key\"", "\"client.crt\""), &dir).unwrap_err();
    assert!(
        e[0].to_string().starts_with("check.apiserver.client_key:"),
        "{e:?}"
    );
    let e = parse(&text.replace("\"ca.crt\"", "\"garbage.crt\""), &dir).unwrap_err();
    assert!(
        e[0].to_string().starts_with("check.apiserver.ca_file:")
            && e[0].to_string().contains("no CERTIFICATE"),
        "{e:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn relative_exec_and_file_paths_resolve_against_the_config_dir() {
    let tables = "[check.script]\nexec = [\"./probe.sh\", \"x\"]\n[check.bare]\nexec = [\"true\"]\n[check.flag]\nfile = \"maintenance\"\n";
    let text = with_checks(r#"["script", "bare", "flag"]"#, tables);
    let c = parse(&text, Path::new("/etc/anyvip")).unwrap();
    let by_name = |n: &str| c.checks.iter().find(|k| k.name == n).unwrap().kind.clone();
    assert_eq!(
        by_name("script"),
        CheckKind::Exec(vec!["/etc/anyvip/./probe.sh".into(), "x".into()])
    );
    assert_eq!(by_name("bare"), CheckKind::Exec(vec!["true".into()]));
    assert_eq!(
        by_name("flag"),
        CheckKind::File("/etc/anyvip/maintenance".into())
    );
}

#[test]
fn a_check_has_exactly_one_kind() {
    let e = errors(&with_checks(
        "[\"apiserver\"]",
        "[check.apiserver]\ninterval = \"1s\"\n",
    ));
    assert_eq!(
        e,
        vec!["check.apiserver: no kind: set exactly one of https, http, tcp, exec, file"]
    );
    let e = errors(&with_checks(
        "[\"apiserver\"]",
        "[check.apiserver]\ntcp = \"127.0.0.1:6443\"\nfile = \"/x\"\n",
    ));
    assert_eq!(
        e,
        vec!["check.apiserver: tcp, file are set: a check has exactly one kind"]
    );
}

#[test]
fn check_errors_name_their_key_and_are_reported_together() {
    let tables = r#"
[check.a]
https = "http://127.0.0.1:6443/readyz"
expected_status = [200, 42]
expect_body = ""

[check.b]
tcp = "127.0.0.1"
interval = "10ms"
rise = 0
fall = 0

[check.c]
exec = []
timeout = "2s"

[check.d]
file = "/x"
expected_status = [200]
ca_file = "ca.crt"

[check.e]
http = "http://127.0.0.1/"
insecure_skip_verify = true

[check.f]
https = "https://127.0.0.1/"
"#;
    let e = errors(&with_checks(r#"["a", "b", "c", "d", "e", "f"]"#, tables)).join("\n");
    for needle in [
        "check.a.https: \"http://127.0.0.1:6443/readyz\" is not a https:// URL",
        "check.a.expected_status[1]: 42 is not an HTTP status code",
        "check.a.expect_body: must not be empty",
        "check.b.tcp: \"127.0.0.1\" is not host:port",
        "check.b.interval: \"10ms\" is too short (allowed: 50ms to 5m)",
        "check.b.rise: 0 is out of range (allowed: 1 to 100)",
        "check.b.fall: 0 is out of range (allowed: 1 to 100)",
        "check.c.exec: must name a program",
        "check.c.timeout: \"2s\" must be more than 0 and less than the interval (1s)",
        "check.d.expected_status: only for http and https checks, this is a file check",
        "check.d.ca_file: only for https checks, this is a file check",
        "check.e.insecure_skip_verify: only for https checks, this is a http check",
        "check.f.ca_file: required for https",
    ] {
        assert!(e.contains(needle), "missing {needle:?} in\n{e}");
    }
}

#[test]
fn ca_file_and_skip_verify_exclude_each_other_and_client_auth_needs_both_files() {
    let e = errors(&with_checks(
        "[\"a\"]",
        "[check.a]\nhttps = \"https://127.0.0.1:6443/\"\ninsecure_skip_verify = true\nca_file = \"/nonexistent/ca.crt\"\nclient_cert = \"c.crt\"\n",
    ))
    .join("\n");
    assert!(
        e.contains("check.a.insecure_skip_verify: cannot be combined with ca_file"),
        "{e}"
    );
    assert!(
        e.contains("check.a.client_key: required with client_cert"),
        "{e}"
    );
}

#[test]
fn unknown_key_in_a_check_is_rejected_with_its_path() {
    let e = errors(&with_checks(
        "[\"apiserver\"]",
        &format!("{APISERVER_TCP}intervall = \"1s\"\n"),
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("check.apiserver"), "{e:?}");
    assert!(e[0].contains("intervall"), "{e:?}");
}

#[test]
fn vip_checks_must_name_defined_checks_once() {
    let e = errors(&with_checks(
        r#"["apiserver", "nope", "apiserver"]"#,
        APISERVER_TCP,
    ));
    assert_eq!(
        e,
        vec![
            "vip[0].checks[1]: no [check.nope] is defined",
            "vip[0].checks[2]: \"apiserver\" is listed twice",
        ]
    );
}

#[test]
fn vip_needs_checks_or_always_but_not_both() {
    let e = errors(&MINIMAL.replace("always = true", ""));
    assert!(e[0].starts_with("vip[0].checks: no health checks"), "{e:?}");
    let e = errors(&MINIMAL.replace("always = true", "checks = []"));
    assert!(e[0].starts_with("vip[0].checks: no health checks"), "{e:?}");
    let e = errors(&format!(
        "{}\n{APISERVER_TCP}",
        MINIMAL.replace("always = true", "always = true\nchecks = [\"apiserver\"]")
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("vip[0].always: cannot be combined with checks"),
        "{e:?}"
    );
}

#[test]
fn an_unused_check_is_an_error() {
    let text = with_checks(
        "[\"apiserver\"]",
        &format!("{APISERVER_TCP}[check.maintenance]\nfile = \"/etc/anyvip/maintenance\"\n"),
    );
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("check.maintenance: no [[vip]] lists this check"),
        "{e:?}"
    );
}

#[test]
fn a_vip_listing_a_broken_check_is_not_told_it_is_undefined() {
    let e = errors(&with_checks(
        "[\"apiserver\"]",
        "[check.apiserver]\ntcp = \"nope\"\n",
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("check.apiserver.tcp:"), "{e:?}");
}

#[test]
fn check_names_are_restricted() {
    let e = errors(&with_checks(
        "[\"a b\"]",
        "[check.\"a b\"]\ntcp = \"127.0.0.1:1\"\n",
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("letters, digits"), "{e:?}");
}

#[test]
fn dataplane_defaults_manage_lo_and_keep_a_dropping_guard() {
    let c = parse(MINIMAL, Path::new(".")).unwrap();
    assert!(c.dataplane.manage);
    assert_eq!(c.dataplane.interface, "lo");
    assert_eq!(c.dataplane.guard.mode, crate::steer::GuardMode::Drop);
    assert!(c.dataplane.guard.keep_on_stop);
}

#[test]
fn dataplane_and_steer_keys_are_validated_with_their_paths() {
    let text = format!(
        "{}\nsteer = {{ port = 6443, to = \"[::1]:6443\" }}\n[dataplane]\nguard = \"bounce\"\ninterface = \"a-very-long-interface-name\"\n",
        MINIMAL.trim_end()
    );
    let e = errors(&text).join("\n");
    for needle in [
        "vip[0].steer.to: must be of the VIP's address family",
        "dataplane.guard: unknown guard mode",
        "dataplane.interface: \"a-very-long-interface-name\" is not a Linux interface name",
    ] {
        assert!(e.contains(needle), "missing {needle:?} in\n{e}");
    }
    let ok = format!(
        "{}\nsteer = {{ port = 6443, to = \"10.0.0.5:6443\" }}\n[dataplane]\nguard = \"reject\"\nkeep_guard_on_stop = false\n",
        MINIMAL.trim_end()
    );
    let c = parse(&ok, Path::new(".")).unwrap();
    assert_eq!(
        c.vips[0].steer.unwrap().to,
        "10.0.0.5:6443".parse().unwrap()
    );
    assert!(!c.dataplane.guard.keep_on_stop);
}

// ---- issue 12 item 3: configuration that cannot work, and what errors say ----

#[test]
fn an_ipv6_vip_without_a_peer_that_carries_ipv6_is_an_error() {
    // An IPv4 peer carries ipv4 only unless told otherwise.
    let text = MINIMAL.replace("192.0.2.100/32", "2001:db8::100/128");
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(
            "vip[0].prefix: 2001:db8::100/128 is an IPv6 VIP, but no peer carries ipv6 (peer[0] 192.0.2.1: ipv4), so it would never be announced"
        ),
        "{e:?}"
    );
    // An IPv6 peer told to carry only ipv4 does not either.
    let v6_peer = text.replace(
        "address = \"192.0.2.1\"",
        "address = \"2001:db8::1\"\nfamilies = [\"ipv4\"]\nnext_hop_v4 = \"192.0.2.11\"",
    );
    let e = errors(&v6_peer);
    assert!(
        e.len() == 1 && e[0].contains("no peer carries ipv6 (peer[0] 2001:db8::1: ipv4)"),
        "{e:?}"
    );
    // One peer that carries it is enough.
    let dual = text.replace(
        "asn = 65000",
        "asn = 65000\nfamilies = [\"ipv4\", \"ipv6\"]\nnext_hop_v6 = \"2001:db8::b\"",
    );
    assert!(parse(&dual, Path::new(".")).is_ok());
    let default_v6 = text.replace("address = \"192.0.2.1\"", "address = \"2001:db8::1\"");
    assert!(parse(&default_v6, Path::new(".")).is_ok());
}

#[test]
fn an_ipv4_vip_with_only_ipv6_peers_is_an_error() {
    let text = MINIMAL.replace("address = \"192.0.2.1\"", "address = \"2001:db8::1\"");
    let e = errors(&text);
    assert_eq!(
        e,
        vec!["vip[0].prefix: 192.0.2.100/32 is an IPv4 VIP, but no peer carries ipv4 (peer[0] 2001:db8::1: ipv6), so it would never be announced: add \"ipv4\" to a peer's families (with next_hop_v4 on an IPv6 session) or add an IPv4 peer"]
    );
}

#[test]
fn a_peer_with_errors_does_not_also_make_the_vip_unannounceable() {
    // The broken peer may be the one meant to carry IPv6: one error only.
    let text = format!(
        "{}\n[[peer]]\naddress = \"2001:db8::1\"\nasn = 0\n",
        MINIMAL.replace("192.0.2.100/32", "2001:db8::100/128")
    );
    let e = errors(&text);
    assert_eq!(e, vec!["peer[1].asn: 0 is reserved (RFC 7607)"]);
}

#[test]
fn type_errors_in_several_tables_are_all_reported() {
    let text = format!(
        "{}\n[[peer]]\naddress = \"192.0.2.2\"\nasn = \"65000\"\n[drain]\nprepend = \"3\"\n{}",
        MINIMAL.replace("asn = 65000", "asn = 65000\nport = 70000"),
        "[check.a]\ntcp = \"127.0.0.1:1\"\nrise = true\n",
    );
    let e = errors(&text);
    assert_eq!(e.len(), 4, "{e:?}");
    for (key, needle) in [
        (
            "peer[0].port:",
            "integer `70000`, expected a whole number from 0 to 65535",
        ),
        (
            "peer[1].asn:",
            "string \"65000\", expected a whole number from 0 to 4294967295",
        ),
        ("drain.prepend:", "expected a whole number from 0 to 255"),
        ("check.a.rise:", "boolean `true`, expected a whole number"),
    ] {
        let found = e.iter().find(|e| e.starts_with(key));
        let found = found.unwrap_or_else(|| panic!("no {key} in {e:?}"));
        assert!(found.contains(needle), "{found}");
        // serde stops at the first problem of a table: say so.
        assert!(found.contains("others in this table may follow"), "{found}");
    }
}

#[test]
fn unknown_or_missing_top_level_tables_are_named() {
    let e = errors(&format!("{MINIMAL}\n[dataplne]\nmanage = false\n"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("dataplne: unknown table; the tables are speaker, peer"),
        "{e:?}"
    );
    let e = errors(&MINIMAL.replace("[speaker]\nasn = 65001\nrouter_id = \"192.0.2.11\"\n", ""));
    assert!(e.iter().any(|e| e.starts_with("speaker: missing")), "{e:?}");
}

#[test]
fn every_syntax_error_is_reported() {
    let e = errors(&format!("{MINIMAL}\nx = = 1\ny = [\n"));
    assert!(e.len() >= 2, "{e:?}");
    assert!(
        e.iter()
            .all(|e| e.starts_with("(syntax):") && e.contains("(line ")),
        "{e:?}"
    );
}

/// `key = value` added to `table` of MINIMAL (or to the check, for
/// `check`), and the one error it must give.
fn one_error(table: &str, line: &str) -> String {
    let text = match table {
        "peer" => MINIMAL.replace("asn = 65000", &format!("asn = 65000\n{line}")),
        "vip" => MINIMAL.replace("always = true", &format!("always = true\n{line}")),
        "check" => with_checks("[\"apiserver\"]", &format!("{APISERVER_TCP}{line}\n")),
        "drain" => format!("{MINIMAL}\n[drain]\n{line}\n"),
        other => panic!("{other}"),
    };
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{line}: {e:?}");
    e.into_iter().next().unwrap_or_default()
}

#[test]
fn every_number_and_duration_has_an_upper_bound_named_in_its_error() {
    for (table, line, expected) in [
        ("check", "rise = 4294967295", "check.apiserver.rise: 4294967295 is out of range (allowed: 1 to 100)"),
        ("check", "fall = 101", "check.apiserver.fall: 101 is out of range (allowed: 1 to 100)"),
        ("check", "interval = \"6m\"", "check.apiserver.interval: \"6m\" is too long (allowed: 50ms to 5m)"),
        ("check", "interval = \"1000000000s\"", "check.apiserver.interval: \"1000000000s\" is too long (allowed: 50ms to 5m)"),
        ("check", "timeout = \"10m\"", "check.apiserver.timeout: \"10m\" is too long (allowed: 0s to 5m)"),
        ("drain", "delay = \"1000000000s\"", "drain.delay: \"1000000000s\" is too long (allowed: 0s to 10m)"),
        ("drain", "prepend = 11", "drain.prepend: 11 is out of range (allowed: 0 to 10)"),
        ("vip", "prepend = 255", "vip[0].prepend: 255 is out of range (allowed: 0 to 10)"),
        ("peer", "connect_retry = \"100000000s\"", "peer[0].connect_retry: \"100000000s\" is too long (allowed: 1s to 10m)"),
        ("peer", "connect_retry = \"500ms\"", "peer[0].connect_retry: \"500ms\" is too short (allowed: 1s to 10m)"),
        ("peer", "hold_time = \"65535s\"", "peer[0].hold_time: \"65535s\" is too long (allowed: 0 (no keepalives) or 3s to 1h (RFC 4271))"),
        ("peer", "hold_time = \"2s\"", "peer[0].hold_time: \"2s\": the hold time must be 0 or at least 3 seconds (allowed: 0 (no keepalives) or 3s to 1h (RFC 4271))"),
        ("peer", "keepalive = \"21m\"", "peer[0].keepalive: \"21m\" is too long (allowed: 0s to 20m)"),
        ("peer", "keepalive = \"9s\"", "peer[0].keepalive: \"9s\" must be more than 0 and less than hold_time (9s)"),
        ("peer", "port = 0", "peer[0].port: 0 is out of range (allowed: 1 to 65535)"),
        ("peer", "multihop = 256", "peer[0].multihop: invalid value: integer `256`, expected a whole number from 0 to 255"),
    ] {
        let e = one_error(table, line);
        assert!(e.starts_with(expected), "{line}:\n got  {e}\n want {expected}");
    }
}

#[test]
fn errors_name_the_key_the_value_and_what_is_allowed() {
    for (table, line, expected) in [
        // Not humantime's "expected number at 0".
        ("check", "interval = \"-1s\"", "check.apiserver.interval: \"-1s\" is negative: write a duration like \"300ms\", \"9s\" or \"2m\" (allowed: 50ms to 5m)"),
        ("check", "timeout = \"1x\"", "check.apiserver.timeout: \"1x\" has an unknown unit \"x\""),
        ("drain", "delay = \"5\"", "drain.delay: \"5\" has no unit"),
        ("peer", "local_address = \"192.0.2.300\"", "peer[0].local_address: \"192.0.2.300\" is not an IP address"),
        ("peer", "next_hop_v6 = \"192.0.2.1\"", "peer[0].next_hop_v6: \"192.0.2.1\" is not an IPv6 address"),
    ] {
        let e = one_error(table, line);
        assert!(e.starts_with(expected), "{line}:\n got  {e}\n want {expected}");
    }
    let e = errors(&MINIMAL.replace("192.0.2.1\"", "300.1.1.1\""));
    assert_eq!(
        e,
        vec!["peer[0].address: \"300.1.1.1\" is not an IP address (e.g. \"192.0.2.1\" or \"2001:db8::1\")"]
    );
    let e = errors(&MINIMAL.replace("192.0.2.100/32", "192.0.2.100/33"));
    assert_eq!(
        e,
        vec!["vip[0].prefix: \"192.0.2.100/33\": the prefix length \"33\" is not 0 to 32 (an IPv4 prefix)"]
    );
    let e = errors(&MINIMAL.replace("192.0.2.11", "192.0.2.256"));
    assert!(
        e[0].starts_with("speaker.router_id: \"192.0.2.256\" is not an IPv4 address"),
        "{e:?}"
    );
}

#[test]
fn the_largest_values_allowed_are_accepted() {
    let text = with_checks(
        "[\"apiserver\"]",
        &format!("{APISERVER_TCP}interval = \"5m\"\nrise = 100\nfall = 100\n"),
    )
    .replace(
        "asn = 65000",
        "asn = 65000\nhold_time = \"1h\"\nkeepalive = \"20m\"\nconnect_retry = \"10m\"",
    );
    let text = format!("{text}\n[drain]\ndelay = \"10m\"\nprepend = 10\n");
    let c = parse(&text, Path::new(".")).unwrap();
    assert_eq!(c.checks[0].rise, 100);
    assert_eq!(c.peers[0].hold_time.seconds(), 3600);
    assert_eq!(c.drain.delay, Duration::from_secs(600));
}

// ---- issue 12 item 2: PEM files that are not there yet ----

#[test]
fn an_https_check_whose_files_cannot_be_read_yet_is_a_warning_not_an_error() {
    let table = "[check.apiserver]\nhttps = \"https://127.0.0.1:6443/readyz\"\nca_file = \"/nonexistent/anyvip-test/ca.crt\"\nclient_cert = \"/nonexistent/anyvip-test/c.crt\"\nclient_key = \"/nonexistent/anyvip-test/c.key\"\n";
    let text = with_checks("[\"apiserver\"]", table);
    let (c, warnings) = parse_with_warnings(&text, Path::new(".")).unwrap();
    let w: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(
        w[0].starts_with(
            "check.apiserver.ca_file: cannot read /nonexistent/anyvip-test/ca.crt: No such file"
        ) && w[0].contains("reads it again at each probe"),
        "{w:?}"
    );
    assert!(
        w[1].starts_with("check.apiserver.client_cert: cannot read"),
        "{w:?}"
    );
    assert!(
        w[2].starts_with("check.apiserver.client_key: cannot read"),
        "{w:?}"
    );
    let CheckKind::Http(h) = &c.checks[0].kind else {
        panic!("{:?}", c.checks[0]);
    };
    let tls = h.tls.as_ref().unwrap();
    assert!(!tls.all_read());
    assert_eq!(tls.ca.as_ref().unwrap().pem, None);
    // The same file with other problems: the warning comes with the errors.
    let broken = text
        .replace("rise", "x")
        .replace("[check.apiserver]", "[check.apiserver]\nfall = 0");
    let p = parse_with_warnings(&broken, Path::new(".")).unwrap_err();
    assert_eq!((p.errors.len(), p.warnings.len()), (1, 3), "{p:?}");
}

#[test]
fn bfd_true_gets_frr_defaults_and_a_table_sets_the_timers() {
    let with = |line: &str| {
        parse(
            &MINIMAL.replace("asn = 65000", &format!("asn = 65000\n{line}")),
            Path::new("."),
        )
        .unwrap()
        .peers[0]
            .bfd
    };
    assert_eq!(with(""), None);
    assert_eq!(with("bfd = false"), None);
    let on = with("bfd = true").unwrap();
    assert_eq!(on.interval, Duration::from_millis(300));
    assert_eq!(on.multiplier, 3);
    assert!(!on.multihop);
    let fast = with("bfd = { interval = \"100ms\", multiplier = 5 }").unwrap();
    assert_eq!(fast.interval, Duration::from_millis(100));
    assert_eq!(fast.multiplier, 5);
    let multihop = with("multihop = 2\nbfd = { interval = \"1s\" }").unwrap();
    assert!(multihop.multihop);
    assert_eq!(multihop.multiplier, 3);
    assert!(fast.session_config().is_some());
}

#[test]
fn bfd_errors_name_the_key_the_value_and_the_range() {
    for (line, expected) in [
        (
            "bfd = { interval = \"10ms\" }",
            "peer[0].bfd.interval: \"10ms\" is too short (allowed: 50ms to 10s)",
        ),
        (
            "bfd = { interval = \"11s\" }",
            "peer[0].bfd.interval: \"11s\" is too long (allowed: 50ms to 10s)",
        ),
        (
            "bfd = { multiplier = 0 }",
            "peer[0].bfd.multiplier: 0 is out of range (allowed: 1 to 255)",
        ),
        (
            "bfd = { multiplier = 256 }",
            "peer[0].bfd.multiplier: 256 is out of range (allowed: 1 to 255)",
        ),
        ("bfd = \"yes\"", "peer[0].bfd: "),
        ("bfd = { intervall = \"1s\" }", "peer[0].bfd: "),
    ] {
        let e = one_error("peer", line);
        assert!(
            e.starts_with(expected),
            "{line}:\n got  {e}\n want {expected}"
        );
    }
    let e = one_error("peer", "bfd = { intervall = \"1s\" }");
    assert!(e.contains("interval, multiplier"), "{e}");
}

#[test]
fn peers_that_differ_only_in_bfd_are_the_same_session() {
    let c = parse(
        &MINIMAL.replace("asn = 65000", "asn = 65000\nbfd = true"),
        Path::new("."),
    )
    .unwrap();
    let a = &c.peers[0];
    let mut b = a.clone();
    b.bfd = None;
    assert!(a.same_but_bfd(&b));
    assert_ne!(a, &b);
    b.hold_time = anyvip_proto::HoldTime::new(3).unwrap();
    assert!(!a.same_but_bfd(&b));
}
