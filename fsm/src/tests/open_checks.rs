//! RFC 4271 §6.2 OPEN checks, in order, and RFC 6793 four-octet AS.

use bytes::Bytes;

use anyvip_proto::{
    Asn, Capability, Context, DecodeError, Family, Open, OptionalParameter, AS_TRANS,
};

use super::*;
use crate::check_open;

#[test]
fn open_with_hold_time_one_or_two_is_rejected_with_2_6() {
    for seconds in [1, 2] {
        let mut open = peer_open();
        open.hold_time = seconds;
        assert_eq!(rejected_with(open), (2, 6), "hold time {seconds}");
    }
}

#[test]
fn open_with_hold_time_three_is_accepted() {
    let mut open = peer_open();
    open.hold_time = 3;
    let (_, negotiated) = Session::new(config()).establish(open);
    assert_eq!(negotiated.hold_time, Some(secs(3)));
}

#[test]
fn open_with_wrong_peer_as_is_rejected_with_2_2() {
    let open = Open::new(Asn(65099), hold(90), PEER_ID, Vec::new());
    assert_eq!(rejected_with(open), (2, 2));
}

#[test]
fn open_checks_run_in_rfc_4271_order() {
    // Wrong AS, hold time 1, identifier 0 and an unknown parameter: the AS
    // is reported; then each fix reveals the next error.
    let mut open = Open::new(Asn(65099), hold(90), Ipv4Addr::UNSPECIFIED, Vec::new());
    open.hold_time = 1;
    open.parameters.push(OptionalParameter::Unknown {
        param_type: 3,
        value: Bytes::from_static(&[0]),
    });
    assert_eq!(rejected_with(open.clone()), (2, 2));
    open.my_as = 65000;
    open.parameters = vec![
        OptionalParameter::Capabilities(vec![Capability::FourOctetAs(65000)]),
        OptionalParameter::Unknown {
            param_type: 3,
            value: Bytes::from_static(&[0]),
        },
    ];
    assert_eq!(rejected_with(open.clone()), (2, 6));
    open.hold_time = 90;
    assert_eq!(rejected_with(open.clone()), (2, 3));
    open.bgp_identifier = PEER_ID;
    assert_eq!(rejected_with(open), (2, 4));
}

#[test]
fn four_octet_peer_asn_via_capability_with_as_trans_is_accepted() {
    let mut c = config();
    c.peer_asn = Asn(4_200_000_001);
    let open = Open::new(Asn(4_200_000_001), hold(90), PEER_ID, Vec::new());
    assert_eq!(open.my_as, AS_TRANS);
    let (_, negotiated) = Session::new(c).establish(open);
    assert_eq!(negotiated.peer_asn, Asn(4_200_000_001));
    assert_eq!(negotiated.context, Context::FOUR_OCTET_AS);
    assert!(negotiated.context.four_octet_as);
}

#[test]
fn four_octet_capability_that_contradicts_my_as_is_rejected_with_2_2() {
    // A four-octet AS that does not fit needs AS_TRANS in My AS ...
    let mut c = config();
    c.peer_asn = Asn(4_200_000_001);
    let mut open = Open::new(Asn(4_200_000_001), hold(90), PEER_ID, Vec::new());
    open.my_as = 65000;
    assert_eq!(check_open(&c, &open).unwrap_err().subcode, 2);
    // ... and one that fits must be in My AS itself, not AS_TRANS.
    let mut open = peer_open();
    open.my_as = AS_TRANS;
    assert_eq!(rejected_with(open), (2, 2));
}

#[test]
fn peer_as_zero_is_rejected_with_2_2_per_rfc_7607() {
    let mut c = config();
    c.peer_asn = Asn(0);
    let open = two_octet_open(0, Vec::new());
    let n = check_open(&c, &open).unwrap_err();
    assert_eq!((u8::from(n.code), n.subcode), (2, 2));
}

#[test]
fn two_octet_peer_without_capability_works_with_a_two_octet_context() {
    let open = two_octet_open(65000, vec![Capability::Multiprotocol(Family::IPV4_UNICAST)]);
    assert!(open.four_octet_as().is_none());
    let (_, negotiated) = Session::new(config()).establish(open);
    assert_eq!(negotiated.peer_asn, PEER_ASN);
    assert!(!negotiated.context.four_octet_as);
    assert_eq!(negotiated.context, Context::TWO_OCTET_AS);
}

#[test]
fn router_id_zero_is_rejected_with_2_3() {
    let open = Open::new(PEER_ASN, hold(90), Ipv4Addr::UNSPECIFIED, Vec::new());
    assert_eq!(rejected_with(open), (2, 3));
}

#[test]
fn ibgp_peer_with_our_router_id_is_rejected_with_2_3_but_ebgp_peer_is_not() {
    let mut ibgp = config();
    ibgp.peer_asn = LOCAL_ASN;
    let open = Open::new(LOCAL_ASN, hold(90), LOCAL_ID, Vec::new());
    let n = check_open(&ibgp, &open).unwrap_err();
    assert_eq!((u8::from(n.code), n.subcode), (2, 3));
    // RFC 6286 §2.2 only forbids it within an AS.
    let open = Open::new(PEER_ASN, hold(90), LOCAL_ID, Vec::new());
    assert!(check_open(&config(), &open).is_ok());
}

#[test]
fn unsupported_optional_parameter_is_rejected_with_2_4() {
    let mut open = peer_open();
    open.parameters.push(OptionalParameter::Unknown {
        param_type: 1, // the deprecated Authentication parameter
        value: Bytes::from_static(&[0]),
    });
    assert_eq!(rejected_with(open), (2, 4));
}

#[test]
fn unknown_capabilities_are_ignored() {
    let open = Open::new(
        PEER_ASN,
        hold(90),
        PEER_ID,
        vec![Capability::Unknown {
            code: 200,
            value: Bytes::from_static(b"x"),
        }],
    );
    let (_, negotiated) = Session::new(config()).establish(open);
    assert!(negotiated.peer_capabilities.iter().any(|c| c.code() == 200));
}

#[test]
fn a_decode_error_sends_its_notification_and_closes() {
    let mut s = Session::new(config());
    let id = s.connect();
    let actions = s.handle(Event::DecodeError {
        connection: id,
        error: DecodeError::UnsupportedVersion { version: 3 },
    });
    let n = notification(&actions);
    assert_eq!((u8::from(n.code), n.subcode), (2, 1));
    assert_eq!(&n.data[..], &[0, 4]);
    assert!(closes(&actions, id));
    assert_eq!(s.fsm.state(), State::Idle);
    assert!(matches!(
        down_reason(&actions),
        Some(DownReason::NotificationSent(_))
    ));
}

#[test]
fn a_version_other_than_four_is_rejected_with_2_1() {
    let mut open = peer_open();
    open.version = 3;
    assert_eq!(rejected_with(open), (2, 1));
}

#[test]
fn malformed_update_in_established_sends_3_x_and_closes() {
    let mut s = Session::new(config());
    let (id, _) = s.establish(peer_open());
    let actions = s.handle(Event::DecodeError {
        connection: id,
        error: DecodeError::MalformedAsPath { reason: "test" },
    });
    assert_eq!(error(&actions), (3, 11));
    assert!(closes(&actions, id));
    assert_eq!(s.fsm.state(), State::Idle);
}
