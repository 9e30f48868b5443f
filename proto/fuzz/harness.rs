//! Arbitrary bytes as a peer's TCP stream (a failed check panics).
//!
//! Shared by the cargo-fuzz target (`fuzz_targets/decode.rs`) and the
//! corpus replay test (`../tests/fuzz_corpus.rs`, stable Rust).
//!
//! Input: one context octet, then the stream. The context octet's bits:
//! 0x01 four-octet AS, 0x02 add-path IPv4 unicast, 0x04 add-path IPv6
//! unicast, 0x08 extended messages (the other bits are ignored).
//!
//! The stream is framed and decoded message after message, as a session
//! reads it, until framing fails or more bytes would be needed. A message
//! that fails to decode still has a known length, so the loop goes on past
//! it (a session would close; the fuzzer learns more this way).
//!
//! Checked on the way (a failed check is a crash):
//! - framing: the frame is the start of the buffer, its length in range,
//!   and no shorter prefix of it is already a frame; `Message::decode_from`
//!   agrees with `frame` + `Message::decode`;
//! - every error's NOTIFICATION builds and encodes within the session's
//!   maximum, with the error code of the message type that failed;
//! - every decoded message re-encodes; one without RFC 7606 errors decodes
//!   back to an equal value, and encoding that gives the same bytes again;
//! - UPDATEs: `treatment()` is the strongest of `errors`, none of which is a
//!   session reset; each error's NOTIFICATION builds; the accessors and
//!   AS_PATH helpers do not panic.

use anyvip_proto::attribute::AsPath;
use anyvip_proto::{
    frame, AddPath, AttributeValue, Context, DecodeError, ErrorCode, Frame, Message, MessageType,
    Notification, Treatment, Update, HEADER_LEN,
};

/// Run one input; panics when a check fails.
pub fn run(data: &[u8]) {
    let Some((&flags, stream)) = data.split_first() else {
        return;
    };
    let ctx = Context {
        four_octet_as: flags & 0x01 != 0,
        add_path: AddPath {
            ipv4_unicast: flags & 0x02 != 0,
            ipv6_unicast: flags & 0x04 != 0,
        },
        extended_message: flags & 0x08 != 0,
    };
    read_stream(stream, &ctx);
}

fn read_stream(mut buf: &[u8], ctx: &Context) {
    loop {
        let found = frame(buf, ctx);
        let whole = Message::decode_from(buf, ctx);
        let f = match found {
            Ok(Some(f)) => f,
            Ok(None) => {
                assert_eq!(whole, Ok(None), "decode_from disagrees with frame");
                return;
            }
            Err(e) => {
                assert_eq!(whole, Err(e.clone()), "decode_from disagrees with frame");
                check_error(&e, None, ctx);
                return;
            }
        };
        check_frame(buf, &f, ctx);
        let decoded = Message::decode(&f, ctx);
        match (&decoded, &whole) {
            (Ok(m), Ok(Some((w, used)))) => {
                assert_eq!(m, w, "decode_from decoded differently");
                assert_eq!(*used, f.message.len());
            }
            (Err(e), Err(w)) => assert_eq!(e, w, "decode_from failed differently"),
            _ => panic!("decode_from disagrees with frame + decode: {decoded:?} / {whole:?}"),
        }
        match decoded {
            Ok(message) => check_message(&message, &f, ctx),
            Err(e) => check_error(&e, Some(f.message_type), ctx),
        }
        buf = buf.get(f.message.len()..).unwrap_or_default();
    }
}

fn check_frame(buf: &[u8], f: &Frame<'_>, ctx: &Context) {
    let len = f.message.len();
    assert!((HEADER_LEN..=ctx.max_message_len()).contains(&len));
    assert_eq!(Some(f.message), buf.get(..len));
    assert_eq!(Some(f.body), f.message.get(HEADER_LEN..));
    // Bytes arriving one segment at a time: until the whole message is
    // here, there is nothing to decode yet (and no error either).
    for cut in [0, 1, 16, 17, 18, HEADER_LEN, len - 1] {
        if let Some(part) = buf.get(..cut).filter(|_| cut < len) {
            assert_eq!(
                frame(part, ctx),
                Ok(None),
                "partial message ({cut} of {len})"
            );
        }
    }
}

/// The NOTIFICATION for `e` must build, fit the session and carry the error
/// code of the message type that failed.
fn check_error(e: &DecodeError, message_type: Option<MessageType>, ctx: &Context) {
    let _ = e.to_string();
    let n = e.notification();
    let _ = (n.describe(), n.to_string());
    let expected = match message_type {
        None => ErrorCode::MessageHeader,
        Some(MessageType::Open) => ErrorCode::Open,
        Some(MessageType::Update) => ErrorCode::Update,
        Some(MessageType::RouteRefresh) => ErrorCode::RouteRefresh,
        Some(t) => panic!("{t:?} failed to decode: {e:?}"),
    };
    assert_eq!(n.code, expected, "{e:?}");
    let sent = Message::Notification(n.clone());
    match sent.to_bytes(ctx) {
        Ok(bytes) => assert_eq!(
            Message::decode_from(&bytes, ctx),
            Ok(Some((sent, bytes.len()))),
            "NOTIFICATION for {e:?} does not decode back"
        ),
        Err(err) => panic!("NOTIFICATION for {e:?} cannot be sent: {err}"),
    }
}

fn check_message(message: &Message, f: &Frame<'_>, ctx: &Context) {
    assert_eq!(message.message_type(), f.message_type);
    let clean = match message {
        Message::Update(u) => {
            check_update(u);
            u.errors.is_empty()
        }
        Message::Open(o) => {
            let _ = (o.asn(), o.four_octet_as(), o.has_capability(65));
            let _ = o.multiprotocol_families().count();
            true
        }
        Message::Notification(n) => {
            let _ = (n.describe(), n.to_string(), n.shutdown_communication());
            true
        }
        Message::Keepalive | Message::RouteRefresh(_) => true,
    };
    // Whatever we decoded, we can send again: nothing grows on re-encoding.
    let bytes = match message.to_bytes(ctx) {
        Ok(bytes) => bytes,
        Err(e) => panic!("decoded {message:?} does not re-encode: {e}"),
    };
    assert!(bytes.len() <= f.message.len(), "re-encoding grew");
    let again = Message::decode_from(&bytes, ctx);
    if !clean {
        return;
    }
    match again {
        Ok(Some((m2, used))) => {
            assert_eq!(used, bytes.len());
            assert_eq!(&m2, message, "re-encoded message decodes differently");
            assert_eq!(
                m2.to_bytes(ctx).as_ref(),
                Ok(&bytes),
                "encoding is not stable"
            );
        }
        other => panic!("re-encoded {message:?} does not decode: {other:?}"),
    }
}

fn check_update(u: &Update) {
    assert_eq!(u.treatment(), u.errors.iter().map(|e| e.treatment).max());
    for e in &u.errors {
        assert_ne!(e.treatment, Treatment::SessionReset, "{e:?} kept in errors");
        let n: Notification = e.error.notification();
        assert_eq!(n.code, ErrorCode::Update, "{e:?}");
        let _ = (n.to_string(), e.error.to_string());
    }
    let _ = (u.announced().count(), u.withdrawn_routes().count());
    let _ = (
        u.end_of_rib_family(),
        u.origin(),
        u.next_hop(),
        u.mp_reach(),
    );
    let _ = (u.multi_exit_disc(), u.local_pref(), u.mp_unreach());
    for c in u.communities() {
        let _ = (c.to_string(), c.well_known_name());
    }
    for c in u.large_communities() {
        let _ = c.to_string();
    }
    for a in &u.attributes {
        assert_eq!(a.type_code(), a.value.type_code());
        if let AttributeValue::ExtendedCommunities(cs) = &a.value {
            for c in cs {
                let _ = (c.to_string(), c.type_high(), c.subtype());
            }
        }
    }
    if let Some(path) = u.as_path() {
        exercise_path(path);
        if let Some(as4) = u.as4_path() {
            let merged = path.merge_as4(as4);
            exercise_path(&merged);
        }
    }
    if let Some(as4) = u.as4_path() {
        exercise_path(as4);
    }
}

fn exercise_path(path: &AsPath) {
    let _ = (path.route_length(), path.to_string(), path.asns().count());
    let (two, four) = path.for_two_octet_peer();
    assert!(!two.needs_four_octets());
    assert_eq!(four.is_some(), path.needs_four_octets());
    assert_eq!(two.route_length(), path.route_length());
}
