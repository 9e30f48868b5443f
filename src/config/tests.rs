use super::*;

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
        "peer[1].multihop: must be 1..=255",
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
fn vip_without_checks_must_say_always() {
    let e = errors(&MINIMAL.replace("always = true", ""));
    assert!(e[0].starts_with("vip[0].always:"), "{e:?}");
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
    let text = MINIMAL.replace("192.0.2.1\"", "2001:db8::1\"");
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
