//! Whole BGP sessions as BIRD, BIRD (IPv6), OpenBGPD and Quagga recorded
//! them (MRT BGP4MP, from mrtparse's samples): every message must decode
//! without error, UPDATEs without any RFC 7606 error, and re-encode to the
//! bytes that were on the wire; then a few facts the daemon configurations
//! beside the dumps make checkable.
//!
//! Session context. Each message is decoded with what its session
//! negotiated, taken from the peer's OPEN earlier in the same dump and the
//! recording daemon's configuration (the daemons' own OPENs are not in the
//! dumps):
//! - four-octet AS: every peer OPEN advertises it and all four daemons do
//!   (`enable as4 on` in BIRD, the default in Quagga and OpenBGPD); the MRT
//!   subtype (4, MESSAGE_AS4) of every UPDATE record agrees, and that is
//!   asserted.
//! - add-path (RFC 7911): where the peer advertises "send" for a family and
//!   the daemon receives: BIRD has `add paths on` (receive and send), Quagga
//!   and OpenBGPD configure nothing. The MRT subtypes are the plain ones (not
//!   the RFC 8050 add-path ones) even in BIRD's dump, whose UPDATEs do carry
//!   path identifiers: the MRT header cannot be trusted for this.

mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyvip_proto::attribute::{AttributeValue, LargeCommunity, MpNextHop};
use anyvip_proto::capability::{self, Capability};
use anyvip_proto::notification::cease;
use anyvip_proto::{
    AddPath, Context, ErrorCode, Family, Message, Open, RouteRefresh, RouteRefreshSubtype, Safi,
    Update,
};
use support::mrt::Record;

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    open: usize,
    /// UPDATEs other than End-of-RIB markers.
    update: usize,
    end_of_rib: usize,
    notification: usize,
    keepalive: usize,
    route_refresh: usize,
}

/// Everything decoded from one dump.
struct Dump {
    counts: Counts,
    opens: Vec<Open>,
    /// (record, update) for every UPDATE, End-of-RIB markers included.
    updates: Vec<(Record, Update)>,
    end_of_rib: Vec<Family>,
    notifications: Vec<anyvip_proto::Notification>,
    route_refreshes: Vec<RouteRefresh>,
}

/// The context of a session whose peer sent `open`, decoded by a daemon that
/// receives add-path NLRI when `local_add_path_receive` (see the module
/// comment).
fn session_context(open: &Open, local_add_path_receive: bool) -> Context {
    let peer_sends = |family: Family| {
        open.capabilities().any(|c| match c {
            // RFC 7911 §4: Send/Receive 2 = send, 3 = both.
            Capability::AddPath(fams) => fams
                .iter()
                .any(|f| f.family == family && f.send_receive & 2 != 0),
            _ => false,
        })
    };
    Context {
        four_octet_as: open.four_octet_as().is_some(),
        add_path: AddPath {
            ipv4_unicast: local_add_path_receive && peer_sends(Family::IPV4_UNICAST),
            ipv6_unicast: local_add_path_receive && peer_sends(Family::IPV6_UNICAST),
        },
        extended_message: false,
    }
}

/// Decode, check and re-encode every message in `mrt/<name>`.
fn dump(name: &str, local_add_path_receive: bool) -> Option<Dump> {
    let dir = support::testdata_dir()?;
    let records = support::mrt::read(&dir.join("mrt").join(name));
    assert!(!records.is_empty(), "{name}: no BGP4MP messages");
    let mut sessions: BTreeMap<(IpAddr, IpAddr), Context> = BTreeMap::new();
    let mut out = Dump {
        counts: Counts::default(),
        opens: Vec::new(),
        updates: Vec::new(),
        end_of_rib: Vec::new(),
        notifications: Vec::new(),
        route_refreshes: Vec::new(),
    };
    for (i, r) in records.into_iter().enumerate() {
        let what = format!("{name} message {i} ({} -> {})", r.peer_ip, r.local_ip);
        let session = (r.peer_ip, r.local_ip);
        // An OPEN decodes the same in any context.
        let ctx = sessions
            .get(&session)
            .copied()
            .unwrap_or(Context::FOUR_OCTET_AS);
        let (message, used) = Message::decode_from(&r.message, &ctx)
            .unwrap_or_else(|e| panic!("{what}: {e}"))
            .unwrap_or_else(|| panic!("{what}: incomplete"));
        assert_eq!(used, r.message.len(), "{what}: trailing bytes");

        let encoded = message
            .to_bytes(&ctx)
            .unwrap_or_else(|e| panic!("{what}: re-encoding failed: {e}"));
        support::assert_bytes_eq(&r.message, &encoded, &what);
        let (again, _) = Message::decode_from(&encoded, &ctx)
            .unwrap_or_else(|e| panic!("{what}: re-encoded bytes do not decode: {e}"))
            .unwrap_or_else(|| panic!("{what}: incomplete"));
        assert_eq!(again, message, "{what}: decode(encode(m)) != m");

        match message {
            Message::Open(open) => {
                sessions.insert(session, session_context(&open, local_add_path_receive));
                out.counts.open += 1;
                out.opens.push(open);
            }
            Message::Update(update) => {
                assert!(
                    sessions.contains_key(&session),
                    "{what}: UPDATE before the session's OPEN"
                );
                assert_eq!(
                    r.four_octet_as, ctx.four_octet_as,
                    "{what}: MRT subtype and negotiated AS width disagree"
                );
                assert!(
                    update.errors.is_empty(),
                    "{what}: RFC 7606 errors {:?}",
                    update.errors
                );
                match update.end_of_rib_family() {
                    Some(family) => {
                        out.counts.end_of_rib += 1;
                        out.end_of_rib.push(family);
                    }
                    None => out.counts.update += 1,
                }
                out.updates.push((r, update));
            }
            Message::Notification(n) => {
                out.counts.notification += 1;
                out.notifications.push(n);
            }
            Message::Keepalive => out.counts.keepalive += 1,
            Message::RouteRefresh(rr) => {
                out.counts.route_refresh += 1;
                out.route_refreshes.push(rr);
            }
        }
    }
    println!("{name}: {:?}", out.counts);
    Some(out)
}

/// The UPDATE announcing `prefix`, and the NLRI itself.
fn announcement<'a>(d: &'a Dump, prefix: &str) -> (&'a Update, anyvip_proto::Nlri) {
    let prefix: ipnet::IpNet = prefix.parse().expect("prefix");
    d.updates
        .iter()
        .find_map(|(_, u)| u.announced().find(|n| n.prefix == prefix).map(|n| (u, *n)))
        .unwrap_or_else(|| panic!("no announcement of {prefix}"))
}

fn large(global: u32, local1: u32, local2: u32) -> LargeCommunity {
    LargeCommunity {
        global,
        local1,
        local2,
    }
}

/// What every peer OPEN in these dumps says: the peer is AS 65000, as each
/// configuration expects (`neighbor … as 65000`, `remote-as 65000`), and
/// advertises four-octet AS support with the same ASN. The hold time is the
/// peer's own offer (the configurations only set the daemon's side).
fn assert_peer_opens(d: &Dump, name: &str, hold_time: u16) {
    assert!(!d.opens.is_empty());
    for open in &d.opens {
        assert_eq!(open.my_as, 65000, "{name}");
        assert_eq!(open.four_octet_as(), Some(65000), "{name}");
        assert_eq!(open.asn().0, 65000, "{name}");
        assert_eq!(open.hold_time, hold_time, "{name}");
        assert!(
            open.has_capability(capability::code::ROUTE_REFRESH),
            "{name}"
        );
    }
}

/// Cease / Administrative Reset (RFC 4486), how each daemon ended the
/// recorded sessions.
fn assert_all_cease_reset(d: &Dump) {
    for n in &d.notifications {
        assert_eq!(
            (n.code, n.subcode),
            (ErrorCode::Cease, cease::ADMINISTRATIVE_RESET)
        );
        assert!(n.data.is_empty());
    }
}

/// BIRD's `ibgp_out` filter tags its static route with three large
/// communities; the peer (a route reflector: ORIGINATOR_ID is BIRD's router
/// id 192.168.0.16) sends it back with them.
fn assert_bird_reflected_static(d: &Dump, prefix: &str) {
    let (u, nlri) = announcement(d, prefix);
    assert_eq!(
        u.large_communities(),
        [
            large(65000, 4294967295, 100),
            large(65000, 4294967295, 200),
            large(65000, 4294967295, 300)
        ]
    );
    assert_eq!(
        u.attribute(anyvip_proto::attribute::type_code::ORIGINATOR_ID),
        Some(&AttributeValue::OriginatorId(Ipv4Addr::new(
            192, 168, 0, 16
        )))
    );
    assert!(
        nlri.path_id.is_some(),
        "add paths on: {prefix} has no path id"
    );
}

/// Both BIRD sessions carry AS_PATHs of four-octet ASNs that do not fit two
/// octets (4200000000, 4294967194): only right with four-octet decoding.
fn assert_four_octet_paths(d: &Dump) {
    let paths: Vec<Vec<u32>> = d
        .updates
        .iter()
        .filter_map(|(_, u)| u.as_path())
        .map(|p| p.asns().collect())
        .filter(|p: &Vec<u32>| !p.is_empty())
        .collect();
    assert!(paths.contains(&vec![
        4200000000, 4200000000, 4200000000, 64512, 64512, 64512
    ]));
    assert!(paths.contains(&vec![
        4294967194, 4294967194, 4294967194, 65534, 65534, 65534
    ]));
}

#[test]
fn every_message_of_birds_ipv4_session_round_trips_with_add_path_and_large_communities() {
    let Some(d) = dump("bird_bgp", true) else {
        return;
    };
    assert_eq!(
        d.counts,
        Counts {
            open: 2,
            update: 6,
            end_of_rib: 2,
            notification: 1,
            keepalive: 5,
            route_refresh: 1
        }
    );
    // bird.conf: `neighbor 192.168.0.10 as 65000`, `add paths on`,
    // `graceful restart on`; the peer offers the same hold time, 90.
    assert_peer_opens(&d, "bird_bgp", 90);
    for open in &d.opens {
        assert!(open.has_capability(capability::code::GRACEFUL_RESTART));
        assert!(open
            .capabilities()
            .any(|c| matches!(c, Capability::AddPath(f)
            if f.iter().any(|f| f.family == Family::IPV4_UNICAST && f.send_receive == 3))));
    }
    assert!(d
        .updates
        .iter()
        .all(|(r, _)| r.peer_ip == IpAddr::V4(Ipv4Addr::new(192, 168, 0, 10))));
    assert_eq!(d.end_of_rib, [Family::IPV4_UNICAST, Family::IPV4_UNICAST]);
    // bird.conf: `route 192.168.16.0/24 unreachable`, exported with
    // bgp_large_community (65000,4294967295,100|200|300).
    assert_bird_reflected_static(&d, "192.168.16.0/24");
    assert_four_octet_paths(&d);
    // Every IPv4 prefix carries a path identifier on this session.
    assert!(d
        .updates
        .iter()
        .flat_map(|(_, u)| u.announced())
        .all(|n| n.path_id.is_some()));
    assert_eq!(
        d.route_refreshes,
        [RouteRefresh {
            family: Family::IPV4_UNICAST,
            subtype: RouteRefreshSubtype::Normal
        }]
    );
    assert_all_cease_reset(&d);
}

#[test]
fn every_message_of_birds_ipv6_session_round_trips_with_mp_reach_and_link_local_next_hop() {
    let Some(d) = dump("bird6_bgp", true) else {
        return;
    };
    assert_eq!(
        d.counts,
        Counts {
            open: 2,
            update: 6,
            end_of_rib: 2,
            notification: 1,
            keepalive: 5,
            route_refresh: 1
        }
    );
    // bird6.conf: `neighbor fd02::10 as 65000`, `add paths on`.
    assert_peer_opens(&d, "bird6_bgp", 90);
    for open in &d.opens {
        assert_eq!(
            open.multiprotocol_families().collect::<Vec<_>>(),
            [Family::IPV6_UNICAST, Family::new(2u16, 2u8)]
        );
        assert!(open
            .capabilities()
            .any(|c| matches!(c, Capability::AddPath(f)
            if f.iter().any(|f| f.family == Family::IPV6_UNICAST && f.send_receive == 3))));
    }
    let peer: IpAddr = "fd02::10".parse().expect("ip");
    assert!(d.updates.iter().all(|(r, _)| r.peer_ip == peer));
    assert_eq!(d.end_of_rib, [Family::IPV6_UNICAST, Family::IPV6_UNICAST]);
    // bird6.conf: `route fd02:17::/64 unreachable`, with the same large
    // communities.
    assert_bird_reflected_static(&d, "fd02:17::/64");
    assert_four_octet_paths(&d);
    // RFC 2545 §3: a global and a link-local next hop (32 octets).
    let (u, _) = announcement(&d, "fd02:17::/64");
    assert_eq!(
        u.mp_reach().map(|r| &r.next_hop),
        Some(&MpNextHop::Ipv6 {
            global: "fd02::10".parse().expect("ip"),
            link_local: Some("fe80::206:aff:fe0e:fff0".parse().expect("ip")),
        })
    );
    assert_eq!(
        d.route_refreshes,
        [RouteRefresh {
            family: Family::IPV6_UNICAST,
            subtype: RouteRefreshSubtype::Normal
        }]
    );
    assert_all_cease_reset(&d);
}

#[test]
fn every_message_of_openbgpds_sessions_round_trips_including_opaque_vpn_routes() {
    let Some(d) = dump("openbgpd_bgp", false) else {
        return;
    };
    assert_eq!(
        d.counts,
        Counts {
            open: 4,
            update: 48,
            end_of_rib: 0,
            notification: 2,
            keepalive: 13,
            route_refresh: 4
        }
    );
    // openbgpd.conf: `remote-as 65000`; the peer offers hold time 180.
    assert_peer_opens(&d, "openbgpd_bgp", 180);
    // openbgpd.conf announces IPv4 unicast, IPv4 vpn and IPv6 unicast: the
    // IPv4 session's peer offers all three; the IPv6 session only IPv6.
    let vpn = Family::new(1u16, 128u8);
    let families: Vec<Vec<Family>> = d
        .opens
        .iter()
        .map(|o| o.multiprotocol_families().collect())
        .collect();
    assert!(families.iter().any(|f| f.contains(&Family::IPV4_UNICAST)
        && f.contains(&vpn)
        && f.contains(&Family::IPV6_UNICAST)));
    assert!(families.contains(&vec![Family::IPV6_UNICAST]));
    // VPNv4 routes are carried opaquely, and still round-trip (above).
    let opaque_vpn = d
        .updates
        .iter()
        .filter(|(_, u)| {
            matches!(u.attribute(anyvip_proto::attribute::type_code::MP_REACH_NLRI),
                Some(AttributeValue::Unknown { value, .. }) if value.starts_with(&[0, 1, 128]))
        })
        .count();
    assert_eq!(opaque_vpn, 6);
    // IPv6 unicast over MP_REACH_NLRI, next hop 2001:db8:0:1::10.
    let (u, nlri) = announcement(&d, "2001:db8:0:6::/64");
    assert_eq!(
        u.mp_reach().map(|r| &r.next_hop),
        Some(&MpNextHop::Ipv6 {
            global: "2001:db8:0:1::10".parse().expect("ip"),
            link_local: None
        })
    );
    assert_eq!(nlri.path_id, None, "no add-path without configuration");
    // A four-octet AGGREGATOR (RFC 6793 §3) of AS 65000.
    assert!(d.updates.iter().any(|(_, u)| matches!(
        u.attribute(anyvip_proto::attribute::type_code::AGGREGATOR),
        Some(AttributeValue::Aggregator(a)) if a.asn == 65000 && a.address == Ipv4Addr::new(192, 168, 0, 15)
    )));
    let refreshed: Vec<Family> = d.route_refreshes.iter().map(|r| r.family).collect();
    assert_eq!(
        refreshed,
        [
            vpn,
            Family::IPV4_UNICAST,
            Family::IPV6_UNICAST,
            Family::IPV6_UNICAST
        ]
    );
    assert_all_cease_reset(&d);
}

#[test]
fn every_message_of_quaggas_sessions_round_trips_with_end_of_rib_for_each_configured_family() {
    let Some(d) = dump("quagga_bgp", false) else {
        return;
    };
    assert_eq!(
        d.counts,
        Counts {
            open: 4,
            update: 10,
            end_of_rib: 14,
            notification: 2,
            keepalive: 10,
            route_refresh: 7
        }
    );
    // quagga.conf: `neighbor 192.168.0.10 remote-as 65000`,
    // `neighbor fd02::10 remote-as 65000`; the peer offers hold time 90.
    assert_peer_opens(&d, "quagga_bgp", 90);
    // `bgp graceful-restart` and the address families activated in
    // quagga.conf (ipv4 unicast, ipv4 multicast, vpnv4, ipv6, ipv6
    // multicast): an End-of-RIB (RFC 4724 §2) for each (the IPv6 session
    // sends only the IPv6 ones).
    let multicast = |afi: u16| Family::new(afi, 2u8);
    let mut families: Vec<Family> = d.end_of_rib.clone();
    families.sort();
    families.dedup();
    assert_eq!(
        families,
        [
            Family::IPV4_UNICAST,
            multicast(1),
            Family::new(1u16, 128u8),
            Family::IPV6_UNICAST,
            multicast(2)
        ]
    );
    // The multicast families are not decoded: their markers are opaque
    // MP_UNREACH_NLRI, still recognised.
    assert!(d.end_of_rib.iter().any(|f| f.safi == Safi::Multicast));
    // IPv6 routes over the IPv4 session carry an IPv4-mapped next hop.
    let mapped: Ipv6Addr = "::ffff:192.168.0.10".parse().expect("ip");
    assert!(d.updates.iter().any(|(r, u)| r.peer_ip.is_ipv4()
        && u.mp_reach().is_some_and(|m| m.next_hop
            == MpNextHop::Ipv6 {
                global: mapped,
                link_local: None
            })));
    assert_four_octet_paths_quagga(&d);
    assert_all_cease_reset(&d);
}

/// Quagga's sessions (from the same peer as BIRD's) carry the same
/// four-octet AS_PATH.
fn assert_four_octet_paths_quagga(d: &Dump) {
    assert!(d.updates.iter().any(|(_, u)| u
        .as_path()
        .is_some_and(|p| p.asns().any(|a| a == 4200000000))));
}
