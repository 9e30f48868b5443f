//! Property tests: decode(encode(x)) == x for every message kind, and no
//! input makes the decoder panic.

use std::net::{Ipv4Addr, Ipv6Addr};

use anyvip_proto::attribute::{
    flags, Aggregator, AsPath, Community, ExtendedCommunity, LargeCommunity, MpNextHop, MpReach,
    MpUnreach, Origin, Segment, SegmentType,
};
use anyvip_proto::capability::{AddPathFamily, GracefulRestart, Role};
use anyvip_proto::{
    frame, Attribute, AttributeValue, Capability, Context, ErrorCode, Family, Message, Nlri,
    Notification, Open, OptionalParameter, RouteRefresh, RouteRefreshSubtype, Update,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

fn v4_prefix() -> impl Strategy<Value = Nlri> {
    (any::<u32>(), 0..=32u8).prop_map(|(a, l)| {
        Nlri::new(IpNet::V4(
            Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc(),
        ))
    })
}

fn v6_prefix() -> impl Strategy<Value = Nlri> {
    (any::<u128>(), 0..=128u8).prop_map(|(a, l)| {
        Nlri::new(IpNet::V6(
            Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc(),
        ))
    })
}

fn asn(four_octet: bool) -> BoxedStrategy<u32> {
    if four_octet {
        any::<u32>().boxed()
    } else {
        (0..=u32::from(u16::MAX)).boxed()
    }
}

fn as_path(four_octet: bool) -> impl Strategy<Value = AsPath> {
    let kind = prop_oneof![
        Just(SegmentType::Set),
        Just(SegmentType::Sequence),
        Just(SegmentType::ConfedSequence),
        Just(SegmentType::ConfedSet),
    ];
    vec(
        (kind, vec(asn(four_octet), 1..8)).prop_map(|(kind, asns)| Segment { kind, asns }),
        0..4,
    )
    .prop_map(|segments| AsPath { segments })
}

/// Flags as the attribute's category prescribes, with the bits a sender may
/// vary: partial on optional transitive attributes, extended length always.
fn with_flags(value: AttributeValue) -> impl Strategy<Value = Attribute> {
    (any::<bool>(), any::<bool>()).prop_map(move |(partial, extended)| {
        let mut a = Attribute::new(value.clone());
        // The encoder must set extended length for a long value: expect it.
        let long = matches!(&value, AttributeValue::Unknown { value, .. } if value.len() > 255);
        if extended || long {
            a.flags |= flags::EXTENDED_LENGTH;
        }
        if partial && a.flags & flags::OPTIONAL_TRANSITIVE == flags::OPTIONAL_TRANSITIVE {
            a.flags |= flags::PARTIAL;
        }
        a
    })
}

fn optional_attributes(four_octet: bool) -> impl Strategy<Value = Vec<AttributeValue>> {
    let addr = any::<u32>().prop_map(Ipv4Addr::from);
    (
        (
            option::of(any::<u32>().prop_map(AttributeValue::MultiExitDisc)),
            option::of(any::<u32>().prop_map(AttributeValue::LocalPref)),
            option::of(Just(AttributeValue::AtomicAggregate)),
            option::of((asn(four_octet), addr.clone()).prop_map(|(asn, address)| {
                AttributeValue::Aggregator(Aggregator { asn, address })
            })),
            option::of(
                vec(any::<u32>().prop_map(Community), 1..6).prop_map(AttributeValue::Communities),
            ),
            option::of(addr.clone().prop_map(AttributeValue::OriginatorId)),
            option::of(vec(addr.clone(), 1..4).prop_map(AttributeValue::ClusterList)),
        ),
        (
            option::of(
                (
                    vec(v6_prefix(), 0..4),
                    any::<u128>(),
                    option::of(any::<u128>()),
                )
                    .prop_map(|(nlri, g, l)| {
                        AttributeValue::MpReach(MpReach {
                            family: Family::IPV6_UNICAST,
                            next_hop: MpNextHop::Ipv6 {
                                global: Ipv6Addr::from(g),
                                link_local: l.map(Ipv6Addr::from),
                            },
                            nlri,
                        })
                    }),
            ),
            option::of(vec(v6_prefix(), 0..4).prop_map(|withdrawn| {
                AttributeValue::MpUnreach(MpUnreach {
                    family: Family::IPV6_UNICAST,
                    withdrawn,
                })
            })),
            option::of(
                vec(any::<[u8; 8]>().prop_map(ExtendedCommunity), 1..4)
                    .prop_map(AttributeValue::ExtendedCommunities),
            ),
            option::of(as_path(true).prop_map(AttributeValue::As4Path)),
            option::of((any::<u32>(), addr).prop_map(|(asn, address)| {
                AttributeValue::As4Aggregator(Aggregator { asn, address })
            })),
            option::of(
                vec(
                    (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(
                        |(global, local1, local2)| LargeCommunity {
                            global,
                            local1,
                            local2,
                        },
                    ),
                    1..4,
                )
                .prop_map(AttributeValue::LargeCommunities),
            ),
            option::of(
                (100..=250u8, vec(any::<u8>(), 0..300)).prop_map(|(type_code, value)| {
                    AttributeValue::Unknown {
                        type_code,
                        value: value.into(),
                    }
                }),
            ),
        ),
    )
        .prop_map(|(a, b)| {
            let (a1, a2, a3, a4, a5, a6, a7) = a;
            let (b1, b2, b3, b4, b5, b6, b7) = b;
            [a1, a2, a3, a4, a5, a6, a7, b1, b2, b3, b4, b5, b6, b7]
                .into_iter()
                .flatten()
                .collect()
        })
}

fn update(four_octet: bool) -> impl Strategy<Value = Update> {
    let origin = prop_oneof![
        Just(Origin::Igp),
        Just(Origin::Egp),
        Just(Origin::Incomplete)
    ];
    (
        vec(v4_prefix(), 0..6),
        vec(v4_prefix(), 0..6),
        origin,
        as_path(four_octet),
        any::<u32>(),
        optional_attributes(four_octet),
    )
        .prop_flat_map(|(withdrawn, nlri, origin, path, nh, optional)| {
            let mut values = vec![
                AttributeValue::Origin(origin),
                AttributeValue::AsPath(path),
                AttributeValue::NextHop(Ipv4Addr::from(nh)),
            ];
            values.extend(optional);
            (
                Just(withdrawn),
                Just(nlri),
                values.into_iter().map(with_flags).collect::<Vec<_>>(),
            )
        })
        .prop_map(|(withdrawn, nlri, attributes)| Update {
            withdrawn,
            attributes,
            nlri,
            errors: Vec::new(),
        })
}

fn family() -> impl Strategy<Value = Family> {
    (any::<u16>(), any::<u8>()).prop_map(|(a, s)| Family::new(a, s))
}

fn capability() -> impl Strategy<Value = Capability> {
    prop_oneof![
        family().prop_map(Capability::Multiprotocol),
        Just(Capability::RouteRefresh),
        Just(Capability::EnhancedRouteRefresh),
        Just(Capability::ExtendedMessage),
        any::<u8>().prop_map(|r| Capability::Role(Role::from(r))),
        any::<u32>().prop_map(Capability::FourOctetAs),
        (0..16u8, 0..4096u16, vec((family(), any::<u8>()), 0..4)).prop_map(
            |(flags, restart_time, families)| {
                Capability::GracefulRestart(GracefulRestart {
                    flags,
                    restart_time,
                    families,
                })
            }
        ),
        vec((family(), any::<u8>()), 0..4).prop_map(|f| Capability::AddPath(
            f.into_iter()
                .map(|(family, send_receive)| AddPathFamily {
                    family,
                    send_receive
                })
                .collect()
        )),
        (vec(any::<u8>(), 0..20), vec(any::<u8>(), 0..20)).prop_map(|(h, d)| Capability::Fqdn {
            hostname: h.into(),
            domain: d.into(),
        }),
        (128..=254u8, vec(any::<u8>(), 0..20)).prop_map(|(code, value)| Capability::Unknown {
            code,
            value: value.into(),
        }),
    ]
}

fn open() -> impl Strategy<Value = Open> {
    (
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        vec(
            prop_oneof![
                vec(capability(), 0..5).prop_map(OptionalParameter::Capabilities),
                (3..=254u8, vec(any::<u8>(), 0..10)).prop_map(|(param_type, value)| {
                    OptionalParameter::Unknown {
                        param_type,
                        value: value.into(),
                    }
                }),
            ],
            0..4,
        ),
        any::<bool>(),
    )
        .prop_map(
            |(my_as, hold_time, id, parameters, extended_parameters)| Open {
                version: 4,
                my_as,
                hold_time,
                bgp_identifier: Ipv4Addr::from(id),
                parameters,
                extended_parameters,
            },
        )
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(Message::Keepalive),
        open().prop_map(Message::Open),
        update(true).prop_map(Message::Update),
        (any::<u8>(), any::<u8>(), vec(any::<u8>(), 0..300)).prop_map(|(c, s, d)| {
            Message::Notification(Notification::new(ErrorCode::from(c), s, d))
        }),
        (family(), any::<u8>()).prop_map(|(family, s)| Message::RouteRefresh(RouteRefresh {
            family,
            subtype: RouteRefreshSubtype::from(s),
        })),
    ]
}

fn roundtrip(msg: &Message, ctx: &Context) -> Result<(), TestCaseError> {
    let bytes = match msg.to_bytes(ctx) {
        Ok(b) => b,
        // Too large for one message: nothing to round-trip.
        Err(_) => return Ok(()),
    };
    let (decoded, used) = Message::decode_from(&bytes, ctx)
        .map_err(|e| TestCaseError::fail(format!("{e}")))?
        .ok_or_else(|| TestCaseError::fail("incomplete"))?;
    prop_assert_eq!(used, bytes.len());
    prop_assert_eq!(&decoded, msg);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_message_survives_encode_then_decode(msg in message()) {
        roundtrip(&msg, &Context::FOUR_OCTET_AS)?;
    }

    #[test]
    fn updates_on_two_octet_sessions_survive_encode_then_decode(u in update(false)) {
        roundtrip(&Message::Update(u), &Context::TWO_OCTET_AS)?;
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_header_never_panic(
        kind in 1..=5u8,
        body in vec(any::<u8>(), 0..600),
        four_octet in any::<bool>(),
    ) {
        let mut bytes = vec![0xff; 16];
        bytes.extend_from_slice(&u16::try_from(19 + body.len()).unwrap().to_be_bytes());
        bytes.push(kind);
        bytes.extend_from_slice(&body);
        let ctx = if four_octet { Context::FOUR_OCTET_AS } else { Context::TWO_OCTET_AS };
        if let Ok(Some(f)) = frame(&bytes, &ctx) {
            match Message::decode(&f, &ctx) {
                Ok(m) => { let _ = m.to_bytes(&ctx); }
                Err(e) => { let _ = e.notification(); }
            }
        }
    }
}
