//! Hold time, keepalive, families and route refresh as negotiated.

use anyvip_proto::{Capability, Family, Message, RouteRefresh, RouteRefreshSubtype};

use super::*;
use crate::{check_open, local_open};

fn with_hold(seconds: u16) -> Open {
    let mut open = peer_open();
    open.hold_time = seconds;
    open
}

#[test]
fn hold_time_zero_negotiates_no_timers() {
    // Zero from the peer ...
    let mut s = Session::new(config());
    let (id, negotiated) = s.establish(with_hold(0));
    assert_eq!(negotiated.hold_time, None);
    assert_eq!(negotiated.keepalive, None);
    assert_eq!(s.fsm.poll_timeout(), None);
    // A day of silence changes nothing and sends nothing.
    assert_eq!(s.advance(secs(86_400)), []);
    assert_eq!(s.fsm.state(), State::Established);
    assert_eq!(s.receive(id, Message::Keepalive), []);
    assert_eq!(s.fsm.poll_timeout(), None);

    // ... or from us.
    let mut c = config();
    c.hold_time = HoldTime::DISABLED;
    let mut s = Session::new(c);
    let (_, negotiated) = s.establish(peer_open());
    assert_eq!(negotiated.hold_time, None);
    assert_eq!(s.fsm.poll_timeout(), None);
}

#[test]
fn hold_time_zero_still_bounds_open_confirm_by_the_open_sent_hold_timer() {
    let mut s = Session::new(config());
    s.open_confirm(with_hold(0));
    let deadline = s.fsm.poll_timeout().expect("a hold timer in OpenConfirm");
    assert_eq!(deadline - s.t0, crate::OPEN_SENT_HOLD_TIME);
}

#[test]
fn hold_time_negotiation_takes_the_minimum() {
    // Peer lower than us.
    let (_, negotiated) = Session::new(config()).establish(with_hold(30));
    assert_eq!(negotiated.hold_time, Some(secs(30)));
    // Us lower than the peer.
    let mut c = config();
    c.hold_time = hold(9);
    let (_, negotiated) = Session::new(c).establish(with_hold(240));
    assert_eq!(negotiated.hold_time, Some(secs(9)));
}

#[test]
fn the_hold_timer_runs_for_the_negotiated_minimum() {
    let mut s = Session::new(config());
    s.establish(with_hold(30));
    let established_at = s.now;
    // Keepalives go out (every 0.75 × 10 s) until the hold timer fires.
    loop {
        let actions = s.advance_to_timeout();
        if sent(&actions).contains(&&Message::Keepalive) {
            continue;
        }
        assert_eq!(error(&actions), (4, 0));
        break;
    }
    assert_eq!(s.now - established_at, secs(30));
}

#[test]
fn keepalive_interval_is_a_third_of_the_hold_time() {
    for (seconds, keepalive) in [
        (90, secs(30)),
        (9, secs(3)),
        (10, millis(3333) + Duration::from_nanos(333_333)),
    ] {
        let (_, negotiated) = Session::new(config()).establish(with_hold(seconds));
        assert_eq!(negotiated.keepalive, Some(keepalive), "hold {seconds}");
    }
}

#[test]
fn configured_keepalive_is_used_but_never_above_a_third_of_the_hold_time() {
    let mut c = config();
    c.keepalive = Some(secs(5));
    assert_eq!(
        check_open(&c, &peer_open()).unwrap().keepalive,
        Some(secs(5))
    );
    c.keepalive = Some(secs(60));
    assert_eq!(
        check_open(&c, &peer_open()).unwrap().keepalive,
        Some(secs(30))
    );
}

#[test]
fn peer_sending_only_ipv6_multiprotocol_does_not_get_implicit_ipv4() {
    let open = Open::new(
        PEER_ASN,
        hold(90),
        PEER_ID,
        vec![Capability::Multiprotocol(Family::IPV6_UNICAST)],
    );
    let (_, negotiated) = Session::new(config()).establish(open);
    assert_eq!(negotiated.families, [Family::IPV6_UNICAST]);
}

#[test]
fn peer_sending_no_multiprotocol_capability_gets_ipv4_unicast_implied() {
    let open = Open::new(PEER_ASN, hold(90), PEER_ID, Vec::new());
    let (_, negotiated) = Session::new(config()).establish(open);
    assert_eq!(negotiated.families, [Family::IPV4_UNICAST]);
}

#[test]
fn families_are_the_intersection_of_both_sides() {
    let mut c = config();
    c.families = vec![Family::IPV4_UNICAST];
    let negotiated = check_open(&c, &peer_open()).unwrap();
    assert_eq!(negotiated.families, [Family::IPV4_UNICAST]);
}

#[test]
fn no_common_family_is_rejected_with_2_7_listing_our_multiprotocol_capabilities() {
    let mut c = config();
    c.families = vec![Family::IPV6_UNICAST];
    // No MP capability from the peer: IPv4 unicast only.
    let open = Open::new(PEER_ASN, hold(90), PEER_ID, Vec::new());
    let n = check_open(&c, &open).unwrap_err();
    assert_eq!((u8::from(n.code), n.subcode), (2, 7));
    assert_eq!(&n.data[..], &[1, 4, 0, 2, 0, 1]);
}

#[test]
fn our_open_offers_our_families_route_refresh_and_four_octet_as() {
    let open = local_open(&config());
    let caps: Vec<&Capability> = open.capabilities().collect();
    assert_eq!(
        caps,
        [
            &Capability::Multiprotocol(Family::IPV4_UNICAST),
            &Capability::Multiprotocol(Family::IPV6_UNICAST),
            &Capability::RouteRefresh,
            &Capability::FourOctetAs(LOCAL_ASN.0),
        ]
    );
    assert_eq!(open.hold_time, 90);
    assert_eq!(open.my_as, 65001);
    assert_eq!(open.bgp_identifier, LOCAL_ID);

    let mut c = config();
    c.route_refresh = false;
    assert!(!local_open(&c).has_capability(2));
}

#[test]
fn route_refresh_is_passed_on_for_negotiated_families_only() {
    let open = Open::new(
        PEER_ASN,
        hold(90),
        PEER_ID,
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::RouteRefresh,
        ],
    );
    let mut s = Session::new(config());
    let (id, negotiated) = s.establish(open);
    assert!(negotiated.peer_route_refresh);
    let v4 = RouteRefresh::new(Family::IPV4_UNICAST);
    assert_eq!(
        s.receive(id, Message::RouteRefresh(v4)),
        [Action::RouteRefreshRequested(v4)]
    );
    // RFC 2918 §4: a family not negotiated is ignored, as is a subtype that
    // only enhanced route refresh (not offered) gives meaning to.
    assert_eq!(
        s.receive(
            id,
            Message::RouteRefresh(RouteRefresh::new(Family::IPV6_UNICAST))
        ),
        []
    );
    let borr = RouteRefresh {
        family: Family::IPV4_UNICAST,
        subtype: RouteRefreshSubtype::BeginningOfRefresh,
    };
    assert_eq!(s.receive(id, Message::RouteRefresh(borr)), []);
    assert_eq!(s.fsm.state(), State::Established);
}
