#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn steer(port: u16, to: &str) -> Option<SteerConfig> {
    Some(SteerConfig {
        port,
        to: to.parse().unwrap(),
    })
}

fn vip(prefix: &str, steer: Option<SteerConfig>) -> VipRule {
    VipRule {
        prefix: net(prefix),
        steer,
    }
}

fn commands(rs: &Ruleset) -> Vec<Value> {
    rs.transaction(&Counters::default())["nftables"]
        .as_array()
        .unwrap()
        .clone()
}

/// The rules of one chain, as their expression lists.
fn rules(rs: &Ruleset, chain: &str) -> Vec<Value> {
    commands(rs)
        .iter()
        .filter_map(|c| c["add"].get("rule"))
        .filter(|r| r["chain"] == chain)
        .map(|r| r["expr"].clone())
        .collect()
}

fn chains(rs: &Ruleset) -> Vec<String> {
    commands(rs)
        .iter()
        .filter_map(|c| c["add"].get("chain"))
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn replaces_the_table_in_one_transaction_and_touches_nothing_else() {
    let rs = Ruleset::new(
        vec![vip("192.0.2.100/32", steer(6443, "127.0.0.1:7443"))],
        GuardMode::Drop,
    )
    .unwrap();
    let cmds = commands(&rs);
    let table = json!({"table": {"family": "inet", "name": "anyvip"}});
    assert_eq!(cmds[0], json!({"add": table}));
    assert_eq!(cmds[1], json!({"delete": table}));
    assert_eq!(cmds[2], json!({"add": table}));
    for c in &cmds[3..] {
        let (verb, obj) = c.as_object().unwrap().iter().next().unwrap();
        assert_eq!(verb, "add", "{c}");
        let (_, body) = obj.as_object().unwrap().iter().next().unwrap();
        assert_eq!(body["family"], "inet", "{c}");
        assert_eq!(body["table"], "anyvip", "{c}");
    }
}

#[test]
fn guard_drops_every_vip_before_routing_and_in_forward() {
    let rs = Ruleset::new(
        vec![vip("192.0.2.100/32", None), vip("2001:db8::100/128", None)],
        GuardMode::default(),
    )
    .unwrap();
    assert_eq!(chains(&rs), ["guard_prerouting", "guard_forward"]);
    assert_eq!(
        rules(&rs, "guard_prerouting"),
        [
            json!([
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "192.0.2.100"}},
                {"match": {"op": "!=", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}},
                {"counter": "guard"},
                {"drop": null}
            ]),
            json!([
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "daddr"}}, "right": "2001:db8::100"}},
                {"match": {"op": "!=", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}},
                {"counter": "guard"},
                {"drop": null}
            ]),
        ]
    );
    assert_eq!(
        rules(&rs, "guard_forward")[2..],
        [
            json!([
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "daddr"}}, "right": "2001:db8::100"}},
                {"counter": "guard"},
                {"drop": null}
            ]),
            json!([
                {"match": {"op": "==", "left": {"ct": {"key": "ip6 daddr", "dir": "original"}}, "right": "2001:db8::100"}},
                {"counter": "guard"},
                {"drop": null}
            ]),
        ]
    );
    let hooks: Vec<_> = commands(&rs)
        .iter()
        .filter_map(|c| c["add"].get("chain"))
        .map(|c| (c["hook"].clone(), c["type"].clone(), c["prio"].clone()))
        .collect();
    assert_eq!(
        hooks,
        [
            (json!("prerouting"), json!("filter"), json!(-300)),
            (json!("forward"), json!("filter"), json!(-300)),
        ]
    );
    assert!(!rs.needs_route_localnet());
}

#[test]
fn a_vip_prefix_is_matched_as_a_prefix() {
    let rs = Ruleset::new(vec![vip("192.0.2.64/26", None)], GuardMode::Drop).unwrap();
    assert_eq!(
        rules(&rs, "guard_forward")[0][0],
        json!({"match": {"op": "==",
            "left": {"payload": {"protocol": "ip", "field": "daddr"}},
            "right": {"prefix": {"addr": "192.0.2.64", "len": 26}}}})
    );
}

#[test]
fn reject_modes() {
    let rs = Ruleset::new(vec![vip("192.0.2.100/32", None)], GuardMode::Reject).unwrap();
    let pre = rules(&rs, "guard_prerouting");
    assert_eq!(pre.len(), 2);
    assert_eq!(
        pre[0].as_array().unwrap()[2..],
        [
            json!({"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}),
            json!({"counter": "guard"}),
            json!({"reject": {"type": "tcp reset"}}),
        ]
    );
    assert_eq!(
        pre[1].as_array().unwrap()[2..],
        [
            json!({"counter": "guard"}),
            json!({"reject": {"type": "icmpx", "expr": "admin-prohibited"}}),
        ]
    );
    assert_eq!(rules(&rs, "guard_forward").len(), 4);

    let rs = Ruleset::new(vec![vip("192.0.2.100/32", None)], GuardMode::Prohibit).unwrap();
    let fwd = rules(&rs, "guard_forward");
    assert_eq!(
        fwd,
        [
            json!([
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "192.0.2.100"}},
                {"counter": "guard"},
                {"reject": {"type": "icmpx", "expr": "admin-prohibited"}}
            ]),
            json!([
                {"match": {"op": "==", "left": {"ct": {"key": "ip daddr", "dir": "original"}}, "right": "192.0.2.100"}},
                {"counter": "guard"},
                {"reject": {"type": "icmpx", "expr": "admin-prohibited"}}
            ])
        ]
    );
}

#[test]
fn dnat_to_loopback_from_network_and_node_with_loopback_guard() {
    let rs = Ruleset::new(
        vec![vip("192.0.2.100/32", steer(6443, "127.0.0.1:7443"))],
        GuardMode::Drop,
    )
    .unwrap();
    assert_eq!(
        chains(&rs),
        [
            "guard_prerouting",
            "guard_forward",
            "steer_prerouting",
            "steer_output",
            "loopback_guard"
        ]
    );
    let dnat = json!([
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "192.0.2.100"}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 6443}},
        {"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}},
        {"counter": "steered"},
        {"dnat": {"family": "ip", "addr": "127.0.0.1", "port": 7443}}
    ]);
    assert_eq!(rules(&rs, "steer_prerouting"), std::slice::from_ref(&dnat));
    assert_eq!(rules(&rs, "steer_output"), [dnat]);
    assert_eq!(
        rules(&rs, "loopback_guard"),
        [json!([
            {"match": {"op": "!=", "left": {"meta": {"key": "iif"}}, "right": "lo"}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": {"prefix": {"addr": "127.0.0.0", "len": 8}}}},
            {"match": {"op": "!=", "left": {"&": [{"ct": {"key": "status"}}, "dnat"]}, "right": "dnat"}},
            {"counter": "loopback_guard"},
            {"drop": null}
        ])]
    );
    assert!(rs.needs_route_localnet());
    let nat: Vec<_> = commands(&rs)
        .iter()
        .filter_map(|c| c["add"].get("chain"))
        .filter(|c| c["type"] == "nat")
        .map(|c| (c["hook"].clone(), c["prio"].clone()))
        .collect();
    assert_eq!(
        nat,
        [
            (json!("prerouting"), json!(-100)),
            (json!("output"), json!(-100))
        ]
    );
}

#[test]
fn dnat_targets() {
    // Unspecified address: keep the VIP, change the port.
    let rs = Ruleset::new(
        vec![vip("2001:db8::100/128", steer(443, "[::]:6443"))],
        GuardMode::Drop,
    )
    .unwrap();
    assert_eq!(
        rules(&rs, "steer_output")[0][4],
        json!({"dnat": {"family": "ip6", "addr": "2001:db8::100", "port": 6443}})
    );
    assert!(!rs.needs_route_localnet());
    assert!(!chains(&rs).contains(&"loopback_guard".to_string()));

    // A node address.
    let rs = Ruleset::new(
        vec![vip("192.0.2.100/32", steer(443, "198.51.100.7:6443"))],
        GuardMode::Drop,
    )
    .unwrap();
    assert_eq!(
        rules(&rs, "steer_prerouting")[0][4],
        json!({"dnat": {"family": "ip", "addr": "198.51.100.7", "port": 6443}})
    );

    // Nothing to do: the VIP and port are the endpoint already.
    for to in ["192.0.2.100:6443", "0.0.0.0:6443"] {
        let rs = Ruleset::new(
            vec![vip("192.0.2.100/32", steer(6443, to))],
            GuardMode::Drop,
        )
        .unwrap();
        assert_eq!(chains(&rs), ["guard_prerouting", "guard_forward"], "{to}");
    }
}

#[test]
fn invalid_steering_is_refused_with_the_vip_named() {
    let cases = [
        (vip("192.0.2.100/32", steer(6443, "[::1]:6443")), "family"),
        (vip("2001:db8::1/128", steer(6443, "[::1]:6443")), "::1"),
        (vip("192.0.2.0/24", steer(6443, "0.0.0.0:7443")), "single"),
        (vip("192.0.2.1/32", steer(0, "127.0.0.1:7443")), "0"),
    ];
    for (v, why) in cases {
        let err = Ruleset::new(vec![v], GuardMode::Drop).unwrap_err();
        assert_eq!(err.prefix, v.prefix);
        assert!(err.to_string().contains(why), "{err}");
    }
    let twice = Ruleset::new(
        vec![vip("192.0.2.1/32", None), vip("192.0.2.1/32", None)],
        GuardMode::Drop,
    )
    .unwrap_err();
    assert!(twice.reason.contains("twice"));
}

#[test]
fn guard_only_keeps_guard_and_loopback_guard_but_no_dnat() {
    let rs = Ruleset::new(
        vec![
            vip("192.0.2.100/32", steer(6443, "127.0.0.1:7443")),
            vip("2001:db8::100/128", None),
        ],
        GuardMode::Reject,
    )
    .unwrap();
    let stop = rs.guard_only();
    assert_eq!(
        chains(&stop),
        ["guard_prerouting", "guard_forward", "loopback_guard"]
    );
    assert_eq!(stop.guard_mode(), GuardMode::Reject);
    assert_eq!(
        rules(&stop, "guard_forward"),
        rules(&rs, "guard_forward"),
        "same guard"
    );
    assert!(!stop.needs_route_localnet());
}

#[test]
fn counters_are_seeded_and_read_back() {
    let rs = Ruleset::new(vec![vip("192.0.2.100/32", None)], GuardMode::Drop).unwrap();
    let seed = Counters {
        guard: Counter {
            packets: 7,
            bytes: 700,
        },
        steered: Counter {
            packets: 1,
            bytes: 60,
        },
        loopback_guard: Counter::default(),
    };
    let guard = commands(&rs.clone())
        .into_iter()
        .chain(
            rs.transaction(&seed)["nftables"]
                .as_array()
                .unwrap()
                .clone(),
        )
        .filter_map(|c| c["add"].get("counter").cloned())
        .filter(|c| c["name"] == "guard")
        .map(|c| (c["packets"].clone(), c["bytes"].clone()))
        .collect::<Vec<_>>();
    assert_eq!(guard, [(json!(0), json!(0)), (json!(7), json!(700))]);

    // As `nft -j list counters table inet anyvip` prints them (nft 1.0.6).
    let listed: Value = serde_json::from_str(
        r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
        {"counter": {"family": "inet", "name": "guard", "table": "anyvip", "handle": 6, "packets": 3, "bytes": 252}},
        {"counter": {"family": "inet", "name": "steered", "table": "anyvip", "handle": 7, "packets": 1, "bytes": 60}},
        {"counter": {"family": "inet", "name": "guard", "table": "other", "handle": 2, "packets": 99, "bytes": 99}}]}"#,
    )
    .unwrap();
    let c = Counters::from_nft_json(&listed);
    assert_eq!(
        c.guard,
        Counter {
            packets: 3,
            bytes: 252
        }
    );
    assert_eq!(
        c.steered,
        Counter {
            packets: 1,
            bytes: 60
        }
    );
    assert_eq!(c.loopback_guard, Counter::default());
    assert_eq!(
        Counters::from_nft_json(&json!({"nftables": []})),
        Counters::default()
    );
}

#[test]
fn guard_options() {
    assert_eq!("drop".parse(), Ok(GuardMode::Drop));
    assert_eq!("reject".parse(), Ok(GuardMode::Reject));
    assert_eq!("prohibit".parse(), Ok(GuardMode::Prohibit));
    assert!("Drop"
        .parse::<GuardMode>()
        .unwrap_err()
        .contains("expected"));
    for mode in [GuardMode::Drop, GuardMode::Reject, GuardMode::Prohibit] {
        assert_eq!(mode.to_string().parse(), Ok(mode));
    }
    let default = GuardConfig::default();
    assert_eq!(default.mode, GuardMode::Drop);
    assert!(default.keep_on_stop);
}
