//! Malformed input: each framing error and each RFC 7606 class, with the
//! NOTIFICATION (code, subcode, data) the RFCs prescribe.

mod support;

use anyvip_proto::notification::{header, open, route_refresh, update};
use anyvip_proto::{
    frame, Context, DecodeError, ErrorCode, Family, Message, Notification, RouteRefresh,
    RouteRefreshSubtype, Treatment, Update,
};
use support::unhex;

const MARKER: &str = "ffffffffffffffffffffffffffffffff";
const CTX: Context = Context::FOUR_OCTET_AS;

fn decode(hex: &str) -> Result<Option<(Message, usize)>, DecodeError> {
    Message::decode_from(&unhex(hex), &CTX)
}

#[track_caller]
fn notification_of(hex: &str) -> Notification {
    match decode(hex) {
        Err(e) => e.notification(),
        Ok(m) => panic!("expected an error, decoded {m:?}"),
    }
}

#[track_caller]
fn assert_notification(n: &Notification, code: ErrorCode, subcode: u8, data: &str) {
    assert_eq!((n.code, n.subcode), (code, subcode), "{n}");
    support::assert_bytes_eq(&unhex(data), &n.data, "NOTIFICATION data");
}

/// An UPDATE whose path attributes are `attrs` (hex) and NLRI `nlri`.
fn update_hex(attrs: &str, nlri: &str) -> String {
    let a = unhex(attrs).len();
    let n = unhex(nlri).len();
    format!("{MARKER}{:04x}02 0000 {a:04x} {attrs} {nlri}", 23 + a + n)
}

#[track_caller]
fn decoded_update(hex: &str) -> Update {
    match decode(hex) {
        Ok(Some((Message::Update(u), _))) => u,
        other => panic!("expected an UPDATE, got {other:?}"),
    }
}

const ORIGIN: &str = "40010100";
const AS_PATH: &str = "400206 0201 0000fde9";
const NEXT_HOP: &str = "400304 c000020b";
const VIP: &str = "20 c0000264";

// ---- framing ---------------------------------------------------------------

#[test]
fn truncated_message_waits_for_more_bytes() {
    let full = unhex(&format!("{MARKER}001304"));
    for len in 0..full.len() {
        assert_eq!(
            frame(&full[..len], &CTX),
            Ok(None),
            "prefix of {len} octets"
        );
    }
    assert!(frame(&full, &CTX).unwrap().is_some());
}

#[test]
fn bad_marker_is_connection_not_synchronized_even_before_the_header_is_complete() {
    let n = notification_of("ffffffff00");
    assert_notification(
        &n,
        ErrorCode::MessageHeader,
        header::CONNECTION_NOT_SYNCHRONIZED,
        "",
    );
}

#[test]
fn length_below_nineteen_is_an_error_not_a_wait() {
    let n = notification_of(&format!("{MARKER}000504"));
    assert_notification(
        &n,
        ErrorCode::MessageHeader,
        header::BAD_MESSAGE_LENGTH,
        "0005",
    );
}

#[test]
fn length_above_4096_is_bad_message_length_with_the_length_as_data() {
    let n = notification_of(&format!("{MARKER}100102"));
    assert_notification(
        &n,
        ErrorCode::MessageHeader,
        header::BAD_MESSAGE_LENGTH,
        "1001",
    );
}

#[test]
fn length_above_4096_is_accepted_with_extended_messages() {
    let ctx = Context {
        extended_message: true,
        ..CTX
    };
    let bytes = unhex(&format!("{MARKER}100102"));
    assert_eq!(frame(&bytes, &ctx), Ok(None));
}

#[test]
fn unknown_message_type_is_bad_message_type_with_the_type_as_data() {
    let n = notification_of(&format!("{MARKER}001309"));
    assert_notification(&n, ErrorCode::MessageHeader, header::BAD_MESSAGE_TYPE, "09");
}

#[test]
fn keepalive_longer_than_nineteen_octets_is_bad_message_length() {
    let n = notification_of(&format!("{MARKER}00140400"));
    assert_notification(
        &n,
        ErrorCode::MessageHeader,
        header::BAD_MESSAGE_LENGTH,
        "0014",
    );
}

#[test]
fn open_update_and_notification_shorter_than_their_minimum_are_bad_message_length() {
    for (len, kind) in [("001c", "01"), ("0016", "02"), ("0014", "03")] {
        let n = notification_of(&format!("{MARKER}{len}{kind}"));
        assert_notification(
            &n,
            ErrorCode::MessageHeader,
            header::BAD_MESSAGE_LENGTH,
            len,
        );
    }
}

#[test]
fn enhanced_route_refresh_markers_of_the_wrong_length_are_a_route_refresh_error_with_the_whole_message(
) {
    // RFC 7313 §5: BoRR (subtype 1) and EoRR (subtype 2) are exactly four
    // octets of body; one octet more is 7/1 with the message as data.
    for subtype in ["01", "02"] {
        let msg = format!("{MARKER}0018 05 0001 {subtype} 01 00");
        let n = notification_of(&msg);
        assert_notification(
            &n,
            ErrorCode::RouteRefresh,
            route_refresh::INVALID_MESSAGE_LENGTH,
            &msg,
        );
    }
}

#[test]
fn route_refresh_too_short_to_name_a_family_is_a_route_refresh_error() {
    let msg = format!("{MARKER}0016 05 0001 00");
    let n = notification_of(&msg);
    assert_notification(
        &n,
        ErrorCode::RouteRefresh,
        route_refresh::INVALID_MESSAGE_LENGTH,
        &msg,
    );
}

/// A subtype-0 ROUTE-REFRESH carrying ORF entries, laid out by hand from
/// RFC 5291 §4 with Address Prefix ORF entries (RFC 5292 §3), as a router
/// with an inbound prefix-list pushed to its peer sends it.
const ROUTE_REFRESH_WITH_ORF: &str = concat!(
    "ffffffffffffffffffffffffffffffff", // marker
    "002e",                             // length: 19 + 27
    "05",                               // type 5: ROUTE-REFRESH
    "0001",                             // AFI 1: IPv4
    "00",                               // subtype 0 (reserved in RFC 5291): normal refresh
    "01",                               // SAFI 1: unicast
    "01",                               // when-to-refresh: 1, IMMEDIATE
    "40",                               // ORF type 64: Address Prefix ORF
    "0013",                             // length of the ORF entries: 19
    // entry 1: action ADD (00), match PERMIT (0), reserved: 0x00
    "00",
    "00000005", // sequence 5
    "18",       // minlen 24
    "20",       // maxlen 32
    "18",       // prefix length 24
    "c00002",   // 192.0.2.0/24
    // entry 2: action ADD (00), match DENY (1): 0x20; 0.0.0.0/0 le 32
    "20",
    "0000000a", // sequence 10
    "00",       // minlen 0
    "20",       // maxlen 32
    "00",       // prefix length 0, no prefix octets
);

#[test]
fn route_refresh_with_orf_entries_is_a_plain_route_refresh_with_the_entries_ignored() {
    let bytes = unhex(ROUTE_REFRESH_WITH_ORF);
    assert_eq!(bytes.len(), 0x2e, "the length field matches the bytes");
    match Message::decode_from(&bytes, &CTX) {
        Ok(Some((Message::RouteRefresh(rr), used))) => {
            assert_eq!(used, bytes.len(), "the whole message, ORF entries too");
            assert_eq!(rr, RouteRefresh::new(Family::IPV4_UNICAST));
        }
        other => panic!("expected a ROUTE-REFRESH, got {other:?}"),
    }
}

#[test]
fn route_refresh_of_a_reserved_subtype_with_trailing_octets_is_decoded_for_the_session_to_ignore() {
    // RFC 7313 §4: subtypes other than 0, 1, 2 are ignored, so their length
    // is not checked either (§5 names subtypes 1 and 2 only).
    let msg = format!("{MARKER}0019 05 0002 07 01 abcd");
    match decode(&msg) {
        Ok(Some((Message::RouteRefresh(rr), 25))) => {
            assert_eq!(rr.subtype, RouteRefreshSubtype::Unknown(7));
            assert_eq!(rr.family, Family::IPV6_UNICAST);
        }
        other => panic!("expected a ROUTE-REFRESH, got {other:?}"),
    }
}

// ---- OPEN --------------------------------------------------------------------

#[test]
fn open_version_three_is_answered_with_the_version_we_support() {
    let n = notification_of(&format!("{MARKER}001d 01 03 fde9 005a c000020b 00"));
    assert_notification(
        &n,
        ErrorCode::Open,
        open::UNSUPPORTED_VERSION_NUMBER,
        "0004",
    );
}

#[test]
fn open_optional_parameter_overrunning_its_length_is_rejected() {
    let n = notification_of(&format!(
        "{MARKER}0020 01 04 fde9 005a c000020b 03 02 05 02"
    ));
    assert_eq!((n.code, n.subcode), (ErrorCode::Open, 0));
}

#[test]
fn open_parameters_length_disagreeing_with_the_message_is_rejected() {
    let n = notification_of(&format!("{MARKER}001f 01 04 fde9 005a c000020b 04 02 00"));
    assert_eq!((n.code, n.subcode), (ErrorCode::Open, 0));
}

#[test]
fn malformed_multiprotocol_capability_is_rejected_with_the_capability_as_data() {
    let n = notification_of(&format!(
        "{MARKER}0022 01 04 fde9 005a c000020b 05 02 03 010100"
    ));
    assert_notification(&n, ErrorCode::Open, 0, "010100");
}

// ---- UPDATE: session reset -----------------------------------------------------

#[test]
fn withdrawn_routes_length_overrunning_the_message_resets_the_session() {
    let n = notification_of(&format!("{MARKER}0017 02 0005 0000"));
    assert_notification(&n, ErrorCode::Update, update::MALFORMED_ATTRIBUTE_LIST, "");
}

#[test]
fn total_attribute_length_overrunning_the_message_resets_the_session() {
    let n = notification_of(&format!("{MARKER}001a 02 0000 0009 400101"));
    assert_notification(&n, ErrorCode::Update, update::MALFORMED_ATTRIBUTE_LIST, "");
}

#[test]
fn duplicate_mp_reach_nlri_resets_the_session() {
    let mp = "800e0e 0001 01 04 c000020b 00 20 c0000264";
    let n = notification_of(&update_hex(&format!("{ORIGIN} {AS_PATH} {mp} {mp}"), ""));
    assert_notification(&n, ErrorCode::Update, update::MALFORMED_ATTRIBUTE_LIST, "");
}

#[test]
fn duplicate_mp_unreach_nlri_resets_the_session() {
    let mp = "800f03 000201";
    let n = notification_of(&update_hex(&format!("{mp} {mp}"), ""));
    assert_notification(&n, ErrorCode::Update, update::MALFORMED_ATTRIBUTE_LIST, "");
}

#[test]
fn nlri_prefix_longer_than_32_bits_resets_the_session() {
    let n = notification_of(&update_hex(
        &format!("{ORIGIN} {AS_PATH} {NEXT_HOP}"),
        "21 c000026400",
    ));
    assert_notification(&n, ErrorCode::Update, update::INVALID_NETWORK_FIELD, "");
}

#[test]
fn nlri_prefix_overrunning_the_message_resets_the_session() {
    let n = notification_of(&update_hex(
        &format!("{ORIGIN} {AS_PATH} {NEXT_HOP}"),
        "20 c00002",
    ));
    assert_notification(&n, ErrorCode::Update, update::INVALID_NETWORK_FIELD, "");
}

#[test]
fn truncated_mp_reach_nlri_resets_the_session_with_the_attribute_as_data() {
    let mp = "800e05 0002 01 10 20";
    let n = notification_of(&update_hex(&format!("{ORIGIN} {AS_PATH} {mp}"), ""));
    assert_notification(&n, ErrorCode::Update, update::OPTIONAL_ATTRIBUTE_ERROR, mp);
}

// RFC 7606 §7.11: the NLRI follow the next hop, so a next-hop length the
// AFI/SAFI does not allow leaves them unlocatable: session reset, with
// UPDATE Message Error / Optional Attribute Error (RFC 4760 §7) and the
// attribute as data.
#[test]
fn mp_reach_with_a_five_octet_next_hop_for_ipv4_resets_the_session() {
    let mp = "800e0f 0001 01 05 c000020b00 00 20 c0000264";
    let n = notification_of(&update_hex(&format!("{ORIGIN} {AS_PATH} {mp}"), ""));
    assert_notification(&n, ErrorCode::Update, update::OPTIONAL_ATTRIBUTE_ERROR, mp);
}

#[test]
fn mp_reach_with_a_four_octet_next_hop_for_ipv6_resets_the_session() {
    // RFC 2545 §3: an IPv6 unicast next hop is 16 or 32 octets.
    let mp = "800e1a 0002 01 04 c000020b 00 80 20010db8000000000000000000000064";
    let n = notification_of(&update_hex(&format!("{ORIGIN} {AS_PATH} {mp}"), ""));
    assert_notification(&n, ErrorCode::Update, update::OPTIONAL_ATTRIBUTE_ERROR, mp);
}

#[test]
fn mp_reach_with_an_empty_next_hop_resets_the_session() {
    let mp = "800e0a 0001 01 00 00 20 c0000264";
    let n = notification_of(&update_hex(&format!("{ORIGIN} {AS_PATH} {mp}"), ""));
    assert_notification(&n, ErrorCode::Update, update::OPTIONAL_ATTRIBUTE_ERROR, mp);
}

#[test]
fn mp_reach_of_ipv4_over_an_ipv6_next_hop_is_accepted() {
    // RFC 8950 §3: IPv4 NLRI with a 16-octet IPv6 next hop is a valid length.
    let mp = "800e1a 0001 01 10 20010db800000000000000000000000b 00 20 c0000264";
    let u = decoded_update(&update_hex(&format!("{ORIGIN} {AS_PATH} {mp}"), ""));
    assert!(u.errors.is_empty(), "{:?}", u.errors);
    assert_eq!(u.announced().count(), 1);
}

#[test]
fn ipv6_prefix_longer_than_128_bits_in_mp_reach_resets_the_session() {
    let mp = "800e1a 0002 01 10 20010db800000000000000000000000b 00 81 00 00";
    let mp_len = unhex(mp).len() - 3;
    let mp = mp.replacen("1a", &format!("{mp_len:02x}"), 1);
    let n = notification_of(&update_hex(&format!("{ORIGIN} {AS_PATH} {mp}"), ""));
    assert_eq!(
        (n.code, n.subcode),
        (ErrorCode::Update, update::OPTIONAL_ATTRIBUTE_ERROR)
    );
}

#[test]
fn unrecognized_well_known_attribute_resets_the_session_with_the_attribute_as_data() {
    let n = notification_of(&update_hex(&format!("{ORIGIN} 406301ff"), ""));
    assert_notification(
        &n,
        ErrorCode::Update,
        update::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
        "406301ff",
    );
}

// ---- UPDATE: treat-as-withdraw -------------------------------------------------

#[track_caller]
fn assert_treated(u: &Update, treatment: Treatment, type_code: u8, n: (u8, &str)) {
    assert_eq!(u.treatment(), Some(treatment), "{:?}", u.errors);
    let e = u
        .errors
        .iter()
        .find(|e| e.type_code == type_code)
        .unwrap_or_else(|| panic!("no error for attribute {type_code}: {:?}", u.errors));
    assert_eq!(e.treatment, treatment);
    assert_notification(&e.error.notification(), ErrorCode::Update, n.0, n.1);
}

#[test]
fn attribute_overrunning_the_attribute_list_is_treat_as_withdraw() {
    // NEXT_HOP claims 8 octets, only 4 remain in the attribute list.
    let u = decoded_update(&update_hex(
        &format!("{ORIGIN} {AS_PATH} 400308 c000020b"),
        VIP,
    ));
    assert_eq!(u.treatment(), Some(Treatment::TreatAsWithdraw));
    // …and the prefix is still known, so it can be withdrawn.
    assert_eq!(u.nlri.len(), 1);
}

#[test]
fn fewer_than_three_octets_left_for_an_attribute_header_is_treat_as_withdraw() {
    let u = decoded_update(&update_hex(
        &format!("{ORIGIN} {AS_PATH} {NEXT_HOP} 4001"),
        VIP,
    ));
    assert_eq!(u.treatment(), Some(Treatment::TreatAsWithdraw));
}

#[test]
fn origin_with_optional_flags_is_treat_as_withdraw_with_flags_error() {
    let u = decoded_update(&update_hex(&format!("c0010100 {AS_PATH} {NEXT_HOP}"), VIP));
    assert_treated(
        &u,
        Treatment::TreatAsWithdraw,
        1,
        (update::ATTRIBUTE_FLAGS_ERROR, "c0010100"),
    );
}

#[test]
fn med_with_well_known_flags_is_treat_as_withdraw() {
    let u = decoded_update(&update_hex(
        &format!("{ORIGIN} {AS_PATH} {NEXT_HOP} 40040400000001"),
        VIP,
    ));
    assert_treated(
        &u,
        Treatment::TreatAsWithdraw,
        4,
        (update::ATTRIBUTE_FLAGS_ERROR, "40040400000001"),
    );
}

#[test]
fn undefined_origin_value_is_treat_as_withdraw() {
    let u = decoded_update(&update_hex(&format!("40010103 {AS_PATH} {NEXT_HOP}"), VIP));
    assert_treated(
        &u,
        Treatment::TreatAsWithdraw,
        1,
        (update::INVALID_ORIGIN_ATTRIBUTE, "40010103"),
    );
}

#[test]
fn origin_of_two_octets_is_treat_as_withdraw_with_length_error() {
    let u = decoded_update(&update_hex(
        &format!("4001020000 {AS_PATH} {NEXT_HOP}"),
        VIP,
    ));
    assert_treated(
        &u,
        Treatment::TreatAsWithdraw,
        1,
        (update::ATTRIBUTE_LENGTH_ERROR, "4001020000"),
    );
}

#[test]
fn next_hop_of_five_octets_is_treat_as_withdraw() {
    let u = decoded_update(&update_hex(
        &format!("{ORIGIN} {AS_PATH} 400305c000020b00"),
        VIP,
    ));
    assert_treated(
        &u,
        Treatment::TreatAsWithdraw,
        3,
        (update::ATTRIBUTE_LENGTH_ERROR, "400305c000020b00"),
    );
}

#[test]
fn missing_next_hop_with_nlri_is_treat_as_withdraw_naming_the_type() {
    let u = decoded_update(&update_hex(&format!("{ORIGIN} {AS_PATH}"), VIP));
    assert_treated(
        &u,
        Treatment::TreatAsWithdraw,
        3,
        (update::MISSING_WELL_KNOWN_ATTRIBUTE, "03"),
    );
}

#[test]
fn missing_mandatory_attributes_without_nlri_are_not_an_error() {
    let u = decoded_update(&update_hex("80040400000001", ""));
    assert_eq!(u.treatment(), None);
}

#[test]
fn as_path_segment_of_length_zero_is_treat_as_withdraw() {
    let u = decoded_update(&update_hex(&format!("{ORIGIN} 4002020200 {NEXT_HOP}"), VIP));
    assert_treated(
        &u,
        Treatment::TreatAsWithdraw,
        2,
        (update::MALFORMED_AS_PATH, ""),
    );
}

#[test]
fn as_path_with_unknown_segment_type_is_treat_as_withdraw() {
    let u = decoded_update(&update_hex(
        &format!("{ORIGIN} 400206 0901 0000fde9 {NEXT_HOP}"),
        VIP,
    ));
    assert_treated(
        &u,
        Treatment::TreatAsWithdraw,
        2,
        (update::MALFORMED_AS_PATH, ""),
    );
}

#[test]
fn as_path_with_trailing_octets_is_treat_as_withdraw() {
    let u = decoded_update(&update_hex(
        &format!("{ORIGIN} 400207 0201 0000fde9 00 {NEXT_HOP}"),
        VIP,
    ));
    assert_treated(
        &u,
        Treatment::TreatAsWithdraw,
        2,
        (update::MALFORMED_AS_PATH, ""),
    );
}

#[test]
fn communities_not_a_multiple_of_four_is_treat_as_withdraw() {
    let u = decoded_update(&update_hex(
        &format!("{ORIGIN} {AS_PATH} {NEXT_HOP} c00803fde800"),
        VIP,
    ));
    assert_treated(
        &u,
        Treatment::TreatAsWithdraw,
        8,
        (update::ATTRIBUTE_LENGTH_ERROR, "c00803fde800"),
    );
}

#[test]
fn empty_large_communities_is_treat_as_withdraw() {
    let u = decoded_update(&update_hex(
        &format!("{ORIGIN} {AS_PATH} {NEXT_HOP} c02000"),
        VIP,
    ));
    assert_treated(
        &u,
        Treatment::TreatAsWithdraw,
        32,
        (update::ATTRIBUTE_LENGTH_ERROR, "c02000"),
    );
}

#[test]
fn mp_reach_with_missing_origin_is_treat_as_withdraw() {
    let mp = "800e0e 0001 01 04 c000020b 00 20 c0000264";
    let u = decoded_update(&update_hex(&format!("{AS_PATH} {mp}"), ""));
    assert_treated(
        &u,
        Treatment::TreatAsWithdraw,
        1,
        (update::MISSING_WELL_KNOWN_ATTRIBUTE, "01"),
    );
}

// ---- UPDATE: attribute discard -------------------------------------------------

#[test]
fn atomic_aggregate_with_a_value_is_discarded() {
    let u = decoded_update(&update_hex(
        &format!("{ORIGIN} {AS_PATH} {NEXT_HOP} 40060101"),
        VIP,
    ));
    assert_treated(
        &u,
        Treatment::AttributeDiscard,
        6,
        (update::ATTRIBUTE_LENGTH_ERROR, "40060101"),
    );
    assert!(u.attribute(6).is_none());
    assert_eq!(u.attributes.len(), 3);
}

#[test]
fn aggregator_of_the_two_octet_size_on_a_four_octet_session_is_discarded() {
    let u = decoded_update(&update_hex(
        &format!("{ORIGIN} {AS_PATH} {NEXT_HOP} c00706fde9c000020b"),
        VIP,
    ));
    assert_treated(
        &u,
        Treatment::AttributeDiscard,
        7,
        (update::ATTRIBUTE_LENGTH_ERROR, "c00706fde9c000020b"),
    );
}

#[test]
fn malformed_as4_path_is_discarded() {
    let u = decoded_update(&update_hex(
        &format!("{ORIGIN} {AS_PATH} {NEXT_HOP} c01103020100"),
        VIP,
    ));
    assert_eq!(u.treatment(), Some(Treatment::AttributeDiscard));
    assert!(u.as4_path().is_none());
}

#[test]
fn repeated_attribute_keeps_the_first_and_discards_the_rest() {
    let u = decoded_update(&update_hex(
        &format!("{ORIGIN} {AS_PATH} {NEXT_HOP} 40010102"),
        VIP,
    ));
    assert_eq!(u.treatment(), Some(Treatment::AttributeDiscard));
    assert_eq!(u.origin(), Some(anyvip_proto::attribute::Origin::Igp));
}

#[test]
fn several_errors_fold_to_the_strongest_treatment() {
    let u = decoded_update(&update_hex(
        &format!("40010103 {AS_PATH} {NEXT_HOP} 40060101"),
        VIP,
    ));
    assert_eq!(u.errors.len(), 2);
    assert_eq!(u.treatment(), Some(Treatment::TreatAsWithdraw));
}

#[test]
fn unknown_optional_attribute_is_kept_not_an_error() {
    let u = decoded_update(&update_hex(
        &format!("{ORIGIN} {AS_PATH} {NEXT_HOP} c06302abcd"),
        VIP,
    ));
    assert_eq!(u.treatment(), None);
    assert_eq!(u.attributes.len(), 4);
}

// ---- NOTIFICATION shutdown communication ---------------------------------------

#[test]
fn shutdown_communication_longer_than_its_data_is_reported_not_trusted() {
    let n = Notification::new(ErrorCode::Cease, 2, unhex("0a 6869"));
    assert!(matches!(n.shutdown_communication(), Some(Err(_))));
    assert!(n.to_string().contains("length octet says 10"));
}

#[test]
fn shutdown_communication_that_is_not_utf8_is_reported() {
    let n = Notification::new(ErrorCode::Cease, 4, unhex("02 c328"));
    assert!(matches!(n.shutdown_communication(), Some(Err(_))));
}

#[test]
fn shutdown_communication_longer_than_255_octets_cannot_be_built() {
    assert!(Notification::cease_with_message(2, &"x".repeat(256)).is_err());
    assert!(Notification::cease_with_message(2, &"x".repeat(255)).is_ok());
}

// ---- encoding limits -----------------------------------------------------------

#[test]
fn four_octet_asn_cannot_be_encoded_on_a_two_octet_session() {
    use anyvip_proto::attribute::AsPath;
    use anyvip_proto::{Attribute, AttributeValue};
    let u = Update {
        attributes: vec![Attribute::new(AttributeValue::AsPath(AsPath::sequence([
            4_200_000_001,
        ])))],
        ..Update::default()
    };
    let err = Message::Update(u)
        .to_bytes(&Context::TWO_OCTET_AS)
        .unwrap_err();
    assert!(err.to_string().contains("AS_TRANS"), "{err}");
}

#[test]
fn message_over_4096_octets_is_refused_and_leaves_the_buffer_unchanged() {
    let n = Notification::new(ErrorCode::Cease, 0, vec![0u8; 4096]);
    let mut out = bytes::BytesMut::from(&b"keep"[..]);
    assert!(Message::Notification(n).encode(&CTX, &mut out).is_err());
    assert_eq!(&out[..], b"keep");
}
