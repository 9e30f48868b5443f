//! Our own (bytes, value) vectors for each message and attribute kind,
//! checked in both directions with a hex diff on failure.
//!
//! Provenance: every vector here was written by hand from the RFC figures
//! (RFC 4271 §4, RFC 4760 §3-4, RFC 5492 §4, RFC 6793, RFC 1997, RFC 4360,
//! RFC 8092, RFC 2918, RFC 9003, RFC 4724 §2); they are independent of the
//! codec's tables, which is the point: a table that is wrong on both sides
//! round-trips but fails here.

mod support;

use std::net::{Ipv4Addr, Ipv6Addr};

use anyvip_proto::attribute::{
    flags, Aggregator, AsPath, Community, ExtendedCommunity, LargeCommunity, MpNextHop, MpReach,
    MpUnreach, Origin, Segment, SegmentType,
};
use anyvip_proto::capability::{AddPathFamily, GracefulRestart, Role};
use anyvip_proto::notification::cease;
use anyvip_proto::{
    Afi, Asn, Attribute, AttributeValue, Capability, Context, ErrorCode, Family, HoldTime, Message,
    Nlri, Notification, Open, OptionalParameter, RouteRefresh, RouteRefreshSubtype, Update,
};
use support::{assert_bytes_eq, unhex};

const HEADER: &str = "ffffffffffffffffffffffffffffffff";

/// Decode `hex` and compare with `value`; encode `value` and compare with
/// `hex`.
#[track_caller]
fn both_ways(hex: &str, value: &Message, ctx: &Context) {
    let bytes = unhex(hex);
    let (decoded, used) = Message::decode_from(&bytes, ctx)
        .unwrap_or_else(|e| panic!("decode failed: {e}"))
        .expect("a complete message");
    assert_eq!(used, bytes.len(), "decode used a different length");
    assert_eq!(&decoded, value, "decoded value differs");
    let encoded = value.to_bytes(ctx).expect("encodes");
    assert_bytes_eq(&bytes, &encoded, "encoded bytes");
}

fn v4net(s: &str) -> Nlri {
    Nlri::new(s.parse().unwrap())
}

fn update_with(attributes: Vec<AttributeValue>, nlri: &[&str]) -> Message {
    Message::Update(Update {
        attributes: attributes.into_iter().map(Attribute::new).collect(),
        nlri: nlri.iter().map(|s| v4net(s)).collect(),
        ..Update::default()
    })
}

#[test]
fn keepalive_is_a_bare_nineteen_octet_header() {
    both_ways(
        &format!("{HEADER}001304"),
        &Message::Keepalive,
        &Context::FOUR_OCTET_AS,
    );
}

#[test]
fn open_with_multiprotocol_route_refresh_and_four_octet_as() {
    let hex = format!(
        "{HEADER}0033 01 04 fde9 005a c000020b 16 02 14 \
         010400010001 010400020001 0200 41040000fde9"
    );
    let open = Open::new(
        Asn(65001),
        HoldTime::new(90).unwrap(),
        Ipv4Addr::new(192, 0, 2, 11),
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
        ],
    );
    both_ways(&hex, &Message::Open(open.clone()), &Context::FOUR_OCTET_AS);
    assert_eq!(open.asn(), Asn(65001));
}

#[test]
fn open_for_a_four_octet_asn_carries_as_trans_in_my_as() {
    // 4200000001 = 0xfa56ea01; My AS must be AS_TRANS 23456 = 0x5ba0.
    let hex = format!("{HEADER}0025 01 04 5ba0 0000 c000020b 08 02 06 4104fa56ea01");
    let open = Open::new(
        Asn(4_200_000_001),
        HoldTime::DISABLED,
        Ipv4Addr::new(192, 0, 2, 11),
        vec![],
    );
    assert_eq!(open.my_as, 23456);
    both_ways(&hex, &Message::Open(open.clone()), &Context::FOUR_OCTET_AS);
    assert_eq!(open.asn(), Asn(4_200_000_001));
}

#[test]
fn open_for_a_two_octet_asn_never_uses_as_trans() {
    let open = Open::new(
        Asn(65535),
        HoldTime::DISABLED,
        Ipv4Addr::new(192, 0, 2, 1),
        vec![],
    );
    assert_eq!(open.my_as, 65535);
}

#[test]
fn open_with_every_capability_kind_and_an_unknown_parameter() {
    // Capabilities in separate parameters, as OpenBGPD and FRR send them,
    // plus an unknown parameter type 9 that must survive.
    let hex = format!(
        "{HEADER}006b 01 04 fde9 00b4 0a000001 4e \
         02 06 010400020001 \
         02 02 0200 \
         02 02 4600 \
         02 02 0600 \
         02 03 0901 03 \
         02 08 4006 8078 00010180 \
         02 06 4504 00010103 \
         02 08 0506 0001 0001 0002 \
         02 0c 490a 06 726f75746572 02 6c 61 \
         02 05 8003 abcdef \
         09 02 1234"
    );
    let caps = |c: Vec<Capability>| OptionalParameter::Capabilities(c);
    let open = Open {
        version: 4,
        my_as: 65001,
        hold_time: 180,
        bgp_identifier: Ipv4Addr::new(10, 0, 0, 1),
        parameters: vec![
            caps(vec![Capability::Multiprotocol(Family::IPV6_UNICAST)]),
            caps(vec![Capability::RouteRefresh]),
            caps(vec![Capability::EnhancedRouteRefresh]),
            caps(vec![Capability::ExtendedMessage]),
            caps(vec![Capability::Role(Role::Customer)]),
            caps(vec![Capability::GracefulRestart(GracefulRestart {
                flags: 0x8,
                restart_time: 120,
                families: vec![(Family::IPV4_UNICAST, 0x80)],
            })]),
            caps(vec![Capability::AddPath(vec![AddPathFamily {
                family: Family::IPV4_UNICAST,
                send_receive: 3,
            }])]),
            caps(vec![Capability::ExtendedNextHop(vec![
                anyvip_proto::capability::ExtendedNextHop {
                    afi: Afi::Ipv4,
                    safi: 1,
                    next_hop_afi: Afi::Ipv6,
                },
            ])]),
            caps(vec![Capability::Fqdn {
                hostname: "router".into(),
                domain: "la".into(),
            }]),
            caps(vec![Capability::Unknown {
                code: 0x80,
                value: vec![0xab, 0xcd, 0xef].into(),
            }]),
            OptionalParameter::Unknown {
                param_type: 9,
                value: vec![0x12, 0x34].into(),
            },
        ],
        extended_parameters: false,
    };
    both_ways(&hex, &Message::Open(open), &Context::FOUR_OCTET_AS);
}

#[test]
fn open_with_rfc9072_extended_optional_parameters() {
    // Non-extended length 255 and type 255, then a two-octet length, and
    // two-octet parameter lengths.
    let hex = format!("{HEADER}0023 01 04 fde9 005a c000020b ff ff 0003 02 0000");
    let open = Open {
        version: 4,
        my_as: 65001,
        hold_time: 90,
        bgp_identifier: Ipv4Addr::new(192, 0, 2, 11),
        parameters: vec![OptionalParameter::Capabilities(vec![])],
        extended_parameters: true,
    };
    both_ways(&hex, &Message::Open(open), &Context::FOUR_OCTET_AS);
}

#[test]
fn update_announcing_the_vip_with_every_attribute_we_send() {
    let hex = format!(
        "{HEADER}004d 02 0000 0031 \
         40010100 \
         400206 0201 0000fde9 \
         400304 c000020b \
         800404 0000000a \
         c00804 fde80064 \
         c0200c 0000fde9 00000001 00000002 \
         20 c0000264"
    );
    let msg = update_with(
        vec![
            AttributeValue::Origin(Origin::Igp),
            AttributeValue::AsPath(AsPath::sequence([65001])),
            AttributeValue::NextHop(Ipv4Addr::new(192, 0, 2, 11)),
            AttributeValue::MultiExitDisc(10),
            AttributeValue::Communities(vec![Community::new(65000, 100)]),
            AttributeValue::LargeCommunities(vec![LargeCommunity {
                global: 65001,
                local1: 1,
                local2: 2,
            }]),
        ],
        &["192.0.2.100/32"],
    );
    both_ways(&hex, &msg, &Context::FOUR_OCTET_AS);
}

#[test]
fn ibgp_update_with_local_pref_and_an_empty_as_path() {
    let hex = format!(
        "{HEADER}0031 02 0000 0015 40010100 400200 400304 c000020b 400504 00000064 \
         20 c0000264"
    );
    let msg = update_with(
        vec![
            AttributeValue::Origin(Origin::Igp),
            AttributeValue::AsPath(AsPath::default()),
            AttributeValue::NextHop(Ipv4Addr::new(192, 0, 2, 11)),
            AttributeValue::LocalPref(100),
        ],
        &["192.0.2.100/32"],
    );
    both_ways(&hex, &msg, &Context::FOUR_OCTET_AS);
}

#[test]
fn ipv6_update_uses_mp_reach_with_a_global_next_hop() {
    let reach = MpReach {
        family: Family::IPV6_UNICAST,
        next_hop: MpNextHop::Ipv6 {
            global: "2001:db8::b".parse().unwrap(),
            link_local: None,
        },
        nlri: vec![Nlri::new("2001:db8::64/128".parse().unwrap())],
    };
    let hex = format!(
        "{HEADER}004d 02 0000 0036 40010100 400206 0201 0000fde9 \
         800e26 0002 01 10 20010db800000000000000000000000b 00 \
         80 20010db8000000000000000000000064"
    );
    let msg = update_with(
        vec![
            AttributeValue::Origin(Origin::Igp),
            AttributeValue::AsPath(AsPath::sequence([65001])),
            AttributeValue::MpReach(reach),
        ],
        &[],
    );
    both_ways(&hex, &msg, &Context::FOUR_OCTET_AS);
}

#[test]
fn ipv6_next_hop_with_link_local_is_the_thirty_two_octet_form() {
    let hex = format!(
        "{HEADER}0048 02 0000 0031 \
         800e2e 0002 01 20 20010db800000000000000000000000b fe800000000000000000000000000001 00 \
         40 20010db800000000"
    );
    let msg = update_with(
        vec![AttributeValue::MpReach(MpReach {
            family: Family::IPV6_UNICAST,
            next_hop: MpNextHop::Ipv6 {
                global: "2001:db8::b".parse().unwrap(),
                link_local: Some("fe80::1".parse::<Ipv6Addr>().unwrap()),
            },
            nlri: vec![Nlri::new("2001:db8::/64".parse().unwrap())],
        })],
        &[],
    );
    // No ORIGIN / AS_PATH: RFC 7606 §3(d) treat-as-withdraw, recorded on
    // decode; compare the parts that are values.
    let bytes = unhex(&hex);
    let (decoded, _) = Message::decode_from(&bytes, &Context::FOUR_OCTET_AS)
        .unwrap()
        .unwrap();
    let (Message::Update(d), Message::Update(m)) = (&decoded, &msg) else {
        panic!()
    };
    assert_eq!(d.attributes, m.attributes);
    assert_eq!(
        d.treatment(),
        Some(anyvip_proto::Treatment::TreatAsWithdraw)
    );
    assert_bytes_eq(
        &bytes,
        &msg.to_bytes(&Context::FOUR_OCTET_AS).unwrap(),
        "encoded",
    );
}

#[test]
fn withdrawal_of_the_ipv4_vip_uses_the_withdrawn_routes_field() {
    let hex = format!("{HEADER}001c 02 0005 20c0000264 0000");
    let msg = Message::Update(Update {
        withdrawn: vec![v4net("192.0.2.100/32")],
        ..Update::default()
    });
    both_ways(&hex, &msg, &Context::FOUR_OCTET_AS);
}

#[test]
fn withdrawal_of_the_ipv6_vip_uses_mp_unreach() {
    let hex =
        format!("{HEADER}002e 02 0000 0017 800f14 0002 01 80 20010db8000000000000000000000064");
    let msg = update_with(
        vec![AttributeValue::MpUnreach(MpUnreach {
            family: Family::IPV6_UNICAST,
            withdrawn: vec![Nlri::new("2001:db8::64/128".parse().unwrap())],
        })],
        &[],
    );
    both_ways(&hex, &msg, &Context::FOUR_OCTET_AS);
}

#[test]
fn end_of_rib_markers_for_ipv4_and_ipv6() {
    let v4 = Message::Update(Update::end_of_rib(Family::IPV4_UNICAST));
    both_ways(
        &format!("{HEADER}0017 02 0000 0000"),
        &v4,
        &Context::FOUR_OCTET_AS,
    );
    let v6 = Message::Update(Update::end_of_rib(Family::IPV6_UNICAST));
    both_ways(
        &format!("{HEADER}001d 02 0000 0006 800f03 000201"),
        &v6,
        &Context::FOUR_OCTET_AS,
    );
    for (msg, family) in [(v4, Family::IPV4_UNICAST), (v6, Family::IPV6_UNICAST)] {
        let Message::Update(u) = msg else {
            unreachable!()
        };
        assert_eq!(u.end_of_rib_family(), Some(family));
    }
}

#[test]
fn two_octet_session_attributes_use_two_octet_asns() {
    // AS_PATH [65001 23456] with AS4_PATH [65001 4200000001], AGGREGATOR in
    // its six-octet form, AS4_AGGREGATOR.
    let hex = format!(
        "{HEADER}0051 02 0000 0035 40010100 400206 0202 fde9 5ba0 400304 c000020b \
         c0110a 0202 0000fde9 fa56ea01 c00706 5ba0 c000020b c01208 fa56ea01 c000020b \
         20 c0000264"
    );
    let full = AsPath::sequence([65001, 4_200_000_001]);
    let (two, four) = full.for_two_octet_peer();
    assert_eq!(two, AsPath::sequence([65001, 23456]));
    let msg = update_with(
        vec![
            AttributeValue::Origin(Origin::Igp),
            AttributeValue::AsPath(two.clone()),
            AttributeValue::NextHop(Ipv4Addr::new(192, 0, 2, 11)),
            AttributeValue::As4Path(four.clone().unwrap()),
            AttributeValue::Aggregator(Aggregator {
                asn: 23456,
                address: Ipv4Addr::new(192, 0, 2, 11),
            }),
            AttributeValue::As4Aggregator(Aggregator {
                asn: 4_200_000_001,
                address: Ipv4Addr::new(192, 0, 2, 11),
            }),
        ],
        &["192.0.2.100/32"],
    );
    both_ways(&hex, &msg, &Context::TWO_OCTET_AS);
    assert_eq!(two.merge_as4(&four.unwrap()), full);
}

#[test]
fn as_path_sets_and_confederation_segments() {
    let hex = format!(
        "{HEADER}0036 02 0000 001f 40021c 0301 0000fde8 0401 0000fde7 0201 0000fde9 0102 00000001 00000002"
    );
    let path = AsPath {
        segments: vec![
            Segment {
                kind: SegmentType::ConfedSequence,
                asns: vec![65000],
            },
            Segment {
                kind: SegmentType::ConfedSet,
                asns: vec![64999],
            },
            Segment {
                kind: SegmentType::Sequence,
                asns: vec![65001],
            },
            Segment {
                kind: SegmentType::Set,
                asns: vec![1, 2],
            },
        ],
    };
    assert_eq!(path.route_length(), 2);
    assert_eq!(path.to_string(), "(65000) [64999] 65001 {1,2}");
    both_ways(
        &hex,
        &update_with(vec![AttributeValue::AsPath(path)], &[]),
        &Context::FOUR_OCTET_AS,
    );
}

#[test]
fn reflection_and_community_attributes() {
    let hex = format!(
        "{HEADER}004e 02 0000 0037 \
         400600 \
         800904 c0000201 \
         800a08 c0000202 c0000203 \
         c0080c ffff0000 ffffff01 fde80064 \
         c01010 0002fde800000064 4300000000000000"
    );
    let msg = update_with(
        vec![
            AttributeValue::AtomicAggregate,
            AttributeValue::OriginatorId(Ipv4Addr::new(192, 0, 2, 1)),
            AttributeValue::ClusterList(vec![
                Ipv4Addr::new(192, 0, 2, 2),
                Ipv4Addr::new(192, 0, 2, 3),
            ]),
            AttributeValue::Communities(vec![
                Community::GRACEFUL_SHUTDOWN,
                Community::NO_EXPORT,
                Community::new(65000, 100),
            ]),
            AttributeValue::ExtendedCommunities(vec![
                ExtendedCommunity::route_target(65000, 100),
                ExtendedCommunity([0x43, 0, 0, 0, 0, 0, 0, 0]),
            ]),
        ],
        &[],
    );
    both_ways(&hex, &msg, &Context::FOUR_OCTET_AS);
    assert_eq!(Community::GRACEFUL_SHUTDOWN.to_string(), "65535:0");
    assert_eq!(
        "graceful-shutdown".parse::<Community>().unwrap(),
        Community::GRACEFUL_SHUTDOWN
    );
    assert_eq!(
        ExtendedCommunity::route_target(65000, 100).to_string(),
        "rt:65000:100"
    );
}

#[test]
fn unknown_attribute_keeps_its_flags_and_bytes() {
    // Optional transitive partial (0xe0), type 99.
    let hex = format!("{HEADER}001c 02 0000 0005 e06302abcd");
    let msg = Message::Update(Update {
        attributes: vec![Attribute {
            flags: flags::OPTIONAL | flags::TRANSITIVE | flags::PARTIAL,
            value: AttributeValue::Unknown {
                type_code: 99,
                value: vec![0xab, 0xcd].into(),
            },
        }],
        ..Update::default()
    });
    both_ways(&hex, &msg, &Context::FOUR_OCTET_AS);
}

#[test]
fn extended_length_flag_follows_the_real_length() {
    // 100 four-octet ASes: 2 + 400 octets of AS_PATH needs two length octets.
    let path = AsPath::sequence(1..=100);
    let msg = update_with(vec![AttributeValue::AsPath(path)], &[]);
    let bytes = msg.to_bytes(&Context::FOUR_OCTET_AS).unwrap();
    // header 19, withdrawn len 2, attr len 2, then flags.
    assert_eq!(bytes[23], flags::WELL_KNOWN | flags::EXTENDED_LENGTH);
    assert_eq!(u16::from_be_bytes([bytes[25], bytes[26]]), 402);
    // …and a short one keeps one length octet even if asked for two.
    let short = Message::Update(Update {
        attributes: vec![Attribute {
            flags: flags::WELL_KNOWN | flags::EXTENDED_LENGTH,
            value: AttributeValue::Origin(Origin::Egp),
        }],
        ..Update::default()
    });
    both_ways(
        &format!("{HEADER}001c 02 0000 0005 5001000101"),
        &short,
        &Context::FOUR_OCTET_AS,
    );
}

#[test]
fn notification_cease_administrative_shutdown_carries_the_rfc9003_text() {
    let hex = format!("{HEADER}0021 03 06 02 0b 6d61696e74656e616e6365");
    let n =
        Notification::cease_with_message(cease::ADMINISTRATIVE_SHUTDOWN, "maintenance").unwrap();
    both_ways(
        &hex,
        &Message::Notification(n.clone()),
        &Context::FOUR_OCTET_AS,
    );
    assert_eq!(n.shutdown_communication(), Some(Ok("maintenance")));
    assert_eq!(
        n.to_string(),
        "Cease / Administrative Shutdown (6/2): \"maintenance\""
    );
}

#[test]
fn notification_keeps_data_of_any_length() {
    let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let n = Notification::new(ErrorCode::Update, 1, data.clone());
    let hex = format!("{HEADER}{:04x} 03 03 01 {}", 21 + 1000, support::hex(&data));
    both_ways(&hex, &Message::Notification(n), &Context::FOUR_OCTET_AS);
}

#[test]
fn hold_timer_expired_notification_has_no_data() {
    both_ways(
        &format!("{HEADER}0015 03 04 00"),
        &Message::Notification(Notification::hold_timer_expired()),
        &Context::FOUR_OCTET_AS,
    );
}

#[test]
fn route_refresh_and_enhanced_route_refresh_subtypes() {
    both_ways(
        &format!("{HEADER}0017 05 0001 00 01"),
        &Message::RouteRefresh(RouteRefresh::new(Family::IPV4_UNICAST)),
        &Context::FOUR_OCTET_AS,
    );
    both_ways(
        &format!("{HEADER}0017 05 0002 02 01"),
        &Message::RouteRefresh(RouteRefresh {
            family: Family::IPV6_UNICAST,
            subtype: RouteRefreshSubtype::EndOfRefresh,
        }),
        &Context::FOUR_OCTET_AS,
    );
}

#[test]
fn add_path_prefixes_carry_a_path_identifier() {
    let ctx = Context {
        add_path: anyvip_proto::AddPath {
            ipv4_unicast: true,
            ipv6_unicast: false,
        },
        ..Context::FOUR_OCTET_AS
    };
    let hex = format!("{HEADER}0020 02 0009 00000007 20c0000264 0000");
    let msg = Message::Update(Update {
        withdrawn: vec![Nlri {
            path_id: Some(7),
            prefix: "192.0.2.100/32".parse().unwrap(),
        }],
        ..Update::default()
    });
    both_ways(&hex, &msg, &ctx);
}

#[test]
fn prefixes_of_every_length_use_the_minimum_octets() {
    for (prefix, hex) in [
        ("0.0.0.0/0", "00"),
        ("10.0.0.0/8", "080a"),
        ("10.128.0.0/9", "090a80"),
        ("192.0.2.0/24", "18c00002"),
        ("192.0.2.128/25", "19c0000280"),
    ] {
        let msg = Message::Update(Update {
            withdrawn: vec![v4net(prefix)],
            ..Update::default()
        });
        let len = hex.len() / 2;
        let full = format!("{HEADER}{:04x} 02 {:04x} {hex} 0000", 23 + len, len);
        both_ways(&full, &msg, &Context::FOUR_OCTET_AS);
    }
}
