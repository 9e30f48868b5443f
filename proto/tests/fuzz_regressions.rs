//! Inputs that broke an invariant of the `decode` fuzz target
//! (proto/fuzz/fuzz_targets/decode.rs), each kept as the bytes that did it.
//!
//! The fuzz input's first octet is the session context (0x01 four-octet AS,
//! 0x02/0x04 add-path IPv4/IPv6, 0x08 extended messages); the rest is the
//! stream. Each test below starts from those bytes.

use anyvip_proto::notification::route_refresh;
use anyvip_proto::{AddPath, Context, DecodeError, ErrorCode, Message, MAX_LEN};

/// Bytes from hex (whitespace ignored).
fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("not hex: {c}"),
        })
        .collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits");
    digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect()
}

/// The session context the fuzz target derives from the first input octet.
fn context(flags: u8) -> Context {
    Context {
        four_octet_as: flags & 0x01 != 0,
        add_path: AddPath {
            ipv4_unicast: flags & 0x02 != 0,
            ipv6_unicast: flags & 0x04 != 0,
        },
        extended_message: flags & 0x08 != 0,
    }
}

/// What was wrong: the NOTIFICATION for a ROUTE-REFRESH of the wrong length
/// carried the whole offending message as its data (RFC 7313 §5). A
/// ROUTE-REFRESH may be as long as any message, 4096 octets, so the
/// NOTIFICATION (21 octets more) could be longer than a session allows and
/// `Message::to_bytes` refused it: the error could never be reported to the
/// peer. Smallest such input: a 4076-octet ROUTE-REFRESH (NOTIFICATION of
/// 4097). Now the data is cut to the 4075 octets that always fit.
///
/// Crash input: context 00, then a ROUTE-REFRESH header of length 0x0fec
/// and 4057 zero octets of body (written below as hex plus a repeat, the
/// only way to keep 8 KB of zeros readable). Since RFC 7313 §5 is applied
/// to subtypes 1 and 2 only (subtype 0 may carry RFC 5291 ORF entries), the
/// all-zero body is a valid subtype-0 refresh: the input keeps its length
/// with subtype 1 (BoRR) in the third body octet.
#[test]
fn an_overlong_route_refresh_gets_a_notification_that_can_still_be_sent() {
    let input = unhex(&format!(
        "00 ffffffffffffffffffffffffffffffff 0fec 05 0000 01 {}",
        "00".repeat(4054)
    ));
    let (&flags, stream) = input.split_first().unwrap();
    let ctx = context(flags);
    assert_eq!(stream.len(), 4076);

    let error = match Message::decode_from(stream, &ctx) {
        Err(e @ DecodeError::RouteRefreshLength { .. }) => e,
        other => panic!("expected a ROUTE-REFRESH length error, got {other:?}"),
    };
    let notification = error.notification();
    assert_eq!(notification.code, ErrorCode::RouteRefresh);
    assert_eq!(notification.subcode, route_refresh::INVALID_MESSAGE_LENGTH);
    // As much of the message as fits, from its start.
    assert_eq!(notification.data.len(), MAX_LEN - 21);
    assert_eq!(notification.data[..], stream[..MAX_LEN - 21]);

    let sent = Message::Notification(notification)
        .to_bytes(&ctx)
        .expect("the NOTIFICATION fits a session without extended messages");
    assert_eq!(sent.len(), MAX_LEN);
    assert!(matches!(
        Message::decode_from(&sent, &ctx),
        Ok(Some((Message::Notification(_), MAX_LEN)))
    ));
}
