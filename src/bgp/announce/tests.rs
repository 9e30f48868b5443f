use super::*;
use anyvip_proto::{Context, Message};

fn route() -> Route {
    Route {
        med: Some(10),
        local_pref: 200,
        prepend: 0,
        communities: vec![Community::new(65000, 100)],
        large_communities: vec![],
        extended_communities: vec![],
    }
}

fn ebgp() -> SessionView {
    SessionView {
        local_asn: Asn(65001),
        internal: false,
        four_octet_as: true,
        families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        local_address: "192.0.2.11".parse().unwrap(),
        next_hop_v4: None,
        next_hop_v6: Some("2001:db8::b".parse().unwrap()),
    }
}

fn vip4() -> IpNet {
    "192.0.2.100/32".parse().unwrap()
}

fn vip6() -> IpNet {
    "2001:db8::100/128".parse().unwrap()
}

fn hex(u: &Update, ctx: &Context) -> String {
    Message::Update(u.clone())
        .to_bytes(ctx)
        .unwrap()
        .iter()
        .skip(19)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn ebgp_ipv4_announcement_has_our_as_the_session_next_hop_med_and_communities() {
    let u = ebgp().announce(&vip4(), &route()).unwrap();
    // ORIGIN IGP, AS_PATH [65001], NEXT_HOP 192.0.2.11, MED 10,
    // COMMUNITIES 65000:100, NLRI 192.0.2.100/32.
    assert_eq!(
        hex(&u, &Context::FOUR_OCTET_AS),
        "0000\
         0022\
         40010100\
         4002060201 0000fde9\
         400304c000020b\
         8004040000000a\
         c00804fde80064\
         20c0000264"
            .replace(' ', "")
    );
}

#[test]
fn prepend_repeats_our_as_on_ebgp() {
    let mut r = route();
    r.prepend = 2;
    let u = ebgp().announce(&vip4(), &r).unwrap();
    assert_eq!(
        u.as_path().unwrap().asns().collect::<Vec<_>>(),
        vec![65001; 3]
    );
}

#[test]
fn ibgp_announcement_has_an_empty_as_path_and_local_pref() {
    let s = SessionView {
        internal: true,
        ..ebgp()
    };
    let u = s.announce(&vip4(), &route()).unwrap();
    assert_eq!(u.as_path().unwrap().segments.len(), 0);
    assert_eq!(u.local_pref(), Some(200));
    assert_eq!(
        ebgp().announce(&vip4(), &route()).unwrap().local_pref(),
        None
    );
}

#[test]
fn two_octet_peer_gets_as_trans_and_as4_path_for_a_four_octet_asn() {
    let s = SessionView {
        local_asn: Asn(4_200_000_001),
        four_octet_as: false,
        ..ebgp()
    };
    let u = s.announce(&vip4(), &route()).unwrap();
    assert_eq!(u.as_path().unwrap().asns().collect::<Vec<_>>(), vec![23456]);
    assert_eq!(
        u.as4_path().unwrap().asns().collect::<Vec<_>>(),
        vec![4_200_000_001]
    );
    // …and it encodes with two-octet widths.
    Message::Update(u).to_bytes(&Context::TWO_OCTET_AS).unwrap();
}

#[test]
fn two_octet_peer_with_a_two_octet_asn_gets_no_as4_path() {
    let s = SessionView {
        four_octet_as: false,
        ..ebgp()
    };
    let u = s.announce(&vip4(), &route()).unwrap();
    assert!(u.as4_path().is_none());
}

#[test]
fn ipv6_vip_goes_in_mp_reach_with_the_configured_global_next_hop() {
    let u = ebgp().announce(&vip6(), &route()).unwrap();
    let reach = u.mp_reach().unwrap();
    assert_eq!(reach.family, Family::IPV6_UNICAST);
    assert_eq!(
        reach.next_hop,
        MpNextHop::Ipv6 {
            global: "2001:db8::b".parse().unwrap(),
            link_local: None
        }
    );
    assert!(u.nlri.is_empty() && u.next_hop().is_none());
}

#[test]
fn ipv6_session_uses_its_own_address_as_next_hop() {
    let s = SessionView {
        local_address: "2001:db8::11".parse().unwrap(),
        next_hop_v6: None,
        families: vec![Family::IPV6_UNICAST],
        ..ebgp()
    };
    let u = s.announce(&vip6(), &route()).unwrap();
    assert!(matches!(
        u.mp_reach().unwrap().next_hop,
        MpNextHop::Ipv6 { global, .. } if global == "2001:db8::11".parse::<Ipv6Addr>().unwrap()
    ));
    // No IPv4 next hop on an IPv6-only session: IPv4 is not carried.
    assert!(s.announce(&vip4(), &route()).is_none());
}

#[test]
fn family_not_negotiated_is_neither_announced_nor_withdrawn() {
    let s = SessionView {
        families: vec![Family::IPV4_UNICAST],
        ..ebgp()
    };
    assert!(s.announce(&vip6(), &route()).is_none());
    assert!(s.withdraw(&vip6()).is_none());
}

#[test]
fn converge_sends_withdrawals_before_announcements_and_nothing_twice() {
    let s = ebgp();
    let mut sent = Sent::default();
    let mut desired = Desired::new();
    desired.insert(vip4(), route());
    assert_eq!(sent.converge(&s, &desired).len(), 1);
    assert!(
        sent.converge(&s, &desired).is_empty(),
        "unchanged: nothing to send"
    );

    let mut next = Desired::new();
    next.insert(vip6(), route());
    let updates = sent.converge(&s, &next);
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[0].withdrawn_routes().count(), 1, "withdrawal first");
    assert_eq!(updates[1].announced().count(), 1);
    assert_eq!(sent.replay(&s).len(), 1);
}

#[test]
fn changed_attributes_are_re_announced() {
    let s = ebgp();
    let mut sent = Sent::default();
    let mut desired = Desired::new();
    desired.insert(vip4(), route());
    sent.converge(&s, &desired);
    desired
        .get_mut(&vip4())
        .unwrap()
        .communities
        .push(Community::GRACEFUL_SHUTDOWN);
    let updates = sent.converge(&s, &desired);
    assert_eq!(updates.len(), 1);
    assert!(updates[0]
        .communities()
        .contains(&Community::GRACEFUL_SHUTDOWN));
}

#[test]
fn ipv6_withdrawal_uses_mp_unreach() {
    let u = ebgp().withdraw(&vip6()).unwrap();
    assert_eq!(u.mp_unreach().unwrap().withdrawn.len(), 1);
}
