//! (bytes, value) pairs, checked in both directions with a hex diff.
//!
//! # Provenance of the captured vectors
//! Captured on 2026-12-03 by `bfd/scripts/capture-lab.sh` (tcpdump on the
//! veth between two network namespaces it created), Debian 12:
//! - **FRR 8.4.4 bfdd** (`frr` 8.4.4-1.1~deb12u2), pathspace config:
//!   `bfd / peer 10.203.0.2 local-address 10.203.0.1 interface IF` with
//!   `receive-interval 300`, `transmit-interval 300`, `detect-multiplier 3`
//!   (and the same for fd00:203::2), later `transmit-interval 500` /
//!   `receive-interval 500`, `shutdown`, `no shutdown` on the IPv4 peer.
//!   FRR's discriminators: 0x5106d685 (IPv4), 0x02db9bbf (IPv6).
//! - **BIRD 2.0.12** (`bird2`): `protocol bfd { interface "IF" { min rx
//!   interval 200 ms; min tx interval 200 ms; idle tx interval 1000 ms;
//!   multiplier 3; }; neighbor 10.203.0.1 dev "IF" local 10.203.0.2;
//!   neighbor fd00:203::1 dev "IF" local fd00:203::2; }`, stopped with
//!   SIGTERM at the end. BIRD's discriminators: 0x1c07829a (IPv4),
//!   0x9b0abe96 (IPv6).
//!
//! All packets were UDP to port 3784 with TTL / hop limit 255.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use anyvip_bfd::{AuthType, Authentication, ControlPacket, Diagnostic, Discard, State};
use common::{assert_bytes, hex_diff, unhex};

const FRR: u32 = 0x5106_d685;
const BIRD: u32 = 0x1c07_829a;

#[allow(clippy::too_many_arguments)]
fn packet(
    state: State,
    diagnostic: Diagnostic,
    (poll, final_): (bool, bool),
    my: u32,
    your: u32,
    tx_us: u32,
    rx_us: u32,
    echo_us: u32,
) -> ControlPacket {
    ControlPacket {
        diagnostic,
        state,
        poll,
        final_,
        control_plane_independent: false,
        demand: false,
        multipoint: false,
        detect_multiplier: 3,
        my_discriminator: my,
        your_discriminator: your,
        desired_min_tx_us: tx_us,
        required_min_rx_us: rx_us,
        required_min_echo_rx_us: echo_us,
        authentication: None,
    }
}

const NONE: (bool, bool) = (false, false);
const P: (bool, bool) = (true, false);
const F: (bool, bool) = (false, true);
const OK: Diagnostic = Diagnostic::NoDiagnostic;

/// (what, bytes, value).
fn captured() -> Vec<(&'static str, &'static str, ControlPacket)> {
    vec![
        (
            "FRR alone, Down at the slow rate: 1 s TX and, unlike BIRD, 1 s RX; echo 50 ms",
            "20400318 5106d685 00000000 000f4240 000f4240 0000c350",
            packet(State::Down, OK, NONE, FRR, 0, 1_000_000, 1_000_000, 50_000),
        ),
        (
            "BIRD's first packet, Down: slow 1 s TX, its 200 ms RX, no echo",
            "20400318 1c07829a 00000000 000f4240 00030d40 00000000",
            packet(State::Down, OK, NONE, BIRD, 0, 1_000_000, 200_000, 0),
        ),
        (
            "FRR answers BIRD's Down with Init, echoing BIRD's discriminator",
            "20800318 5106d685 1c07829a 000f4240 000f4240 0000c350",
            packet(
                State::Init,
                OK,
                NONE,
                FRR,
                BIRD,
                1_000_000,
                1_000_000,
                50_000,
            ),
        ),
        (
            "BIRD goes Up and polls with its fast intervals",
            "20e00318 1c07829a 5106d685 00030d40 00030d40 00000000",
            packet(State::Up, OK, P, BIRD, FRR, 200_000, 200_000, 0),
        ),
        (
            "BIRD answers FRR's Poll with Final",
            "20d00318 1c07829a 5106d685 00030d40 00030d40 00000000",
            packet(State::Up, OK, F, BIRD, FRR, 200_000, 200_000, 0),
        ),
        (
            "FRR answers BIRD's Poll with Final, 300 ms",
            "20d00318 5106d685 1c07829a 000493e0 000493e0 0000c350",
            packet(State::Up, OK, F, FRR, BIRD, 300_000, 300_000, 50_000),
        ),
        (
            "BIRD, Up, periodic",
            "20c00318 1c07829a 5106d685 00030d40 00030d40 00000000",
            packet(State::Up, OK, NONE, BIRD, FRR, 200_000, 200_000, 0),
        ),
        (
            "FRR polls after `transmit-interval 500` / `receive-interval 500`",
            "20e00318 5106d685 1c07829a 0007a120 0007a120 0000c350",
            packet(State::Up, OK, P, FRR, BIRD, 500_000, 500_000, 50_000),
        ),
        (
            "FRR `shutdown`: AdminDown, and FRR 8.4 leaves the diagnostic at 0",
            "20000318 5106d685 1c07829a 0007a120 0007a120 0000c350",
            packet(
                State::AdminDown,
                OK,
                NONE,
                FRR,
                BIRD,
                500_000,
                500_000,
                50_000,
            ),
        ),
        (
            "BIRD hears AdminDown: Down, diagnostic 3, and polls for its slow rate",
            "23600318 1c07829a 5106d685 000f4240 00030d40 00000000",
            packet(
                State::Down,
                Diagnostic::NeighborSignaledSessionDown,
                P,
                BIRD,
                FRR,
                1_000_000,
                200_000,
                0,
            ),
        ),
        (
            "FRR, AdminDown, still answers the Poll with Final",
            "20100318 5106d685 1c07829a 0007a120 0007a120 0000c350",
            packet(State::AdminDown, OK, F, FRR, BIRD, 500_000, 500_000, 50_000),
        ),
        (
            "BIRD, Down after a Detection Time without packets: Your Discriminator 0",
            "23400318 1c07829a 00000000 000f4240 00030d40 00000000",
            packet(
                State::Down,
                Diagnostic::NeighborSignaledSessionDown,
                NONE,
                BIRD,
                0,
                1_000_000,
                200_000,
                0,
            ),
        ),
        (
            "FRR after BIRD stopped: Down, diagnostic 1, still at the fast rate for one packet",
            "21400318 5106d685 00000000 0007a120 0007a120 0000c350",
            packet(
                State::Down,
                Diagnostic::ControlDetectionTimeExpired,
                NONE,
                FRR,
                0,
                500_000,
                500_000,
                50_000,
            ),
        ),
        (
            "FRR over IPv6, Up, periodic",
            "20c00318 02db9bbf 9b0abe96 000493e0 000493e0 0000c350",
            packet(
                State::Up,
                OK,
                NONE,
                0x02db_9bbf,
                0x9b0a_be96,
                300_000,
                300_000,
                50_000,
            ),
        ),
    ]
}

#[test]
fn captured_frr_and_bird_packets_decode_to_their_values_and_encode_back_to_their_bytes() {
    for (what, hex, value) in captured() {
        let bytes = unhex(hex);
        let decoded = ControlPacket::decode(&bytes);
        assert_eq!(decoded.as_ref(), Ok(&value), "{what}");
        let encoded = value.encode();
        assert!(encoded == bytes, "{what}:\n{}", hex_diff(&bytes, &encoded));
        assert_eq!(value.check(), Ok(()), "{what}: a real packet passes §6.8.6");
    }
}

#[test]
fn every_diagnostic_code_round_trips_including_unassigned_ones() {
    for code in 0..32u8 {
        let mut p = captured().remove(0).2;
        p.diagnostic = Diagnostic::from_code(code);
        assert_eq!(p.diagnostic.code(), code);
        let bytes = p.encode();
        assert_eq!(bytes.first().map(|b| b & 0x1f), Some(code));
        assert_eq!(ControlPacket::decode(&bytes), Ok(p));
    }
    assert_eq!(Diagnostic::from_code(10), Diagnostic::Unknown(10));
    assert_eq!(Diagnostic::from_code(7), Diagnostic::AdministrativelyDown);
}

/// Hand-made from RFC 5880 §4.2.2 (Simple Password: Auth Type 1, Auth Len,
/// Auth Key ID, password) and §4.4 (Keyed SHA1: Auth Len 28).
#[test]
fn authentication_sections_are_recognised_with_their_raw_bytes() {
    let simple = unhex(
        "20440321 5106d685 00000000 000f4240 000f4240 00000000 \
         0109 05 616e79766970",
    );
    // Length 0x21 = 33 = 24 + Auth Len 9 (type, len, key id 5, "anyvip")
    let p = ControlPacket::decode(&simple).unwrap();
    let auth = p.authentication.as_ref().unwrap();
    assert_eq!(auth.auth_type(), AuthType::SimplePassword);
    assert_eq!(auth.data(), b"\x05anyvip");
    assert_bytes(&simple, &p.encode());

    let sha1 = unhex(&format!(
        "20440334 5106d685 00000000 000f4240 000f4240 00000000 041c 02 00 0000002a {}",
        "ab".repeat(20)
    ));
    let p = ControlPacket::decode(&sha1).unwrap();
    let auth = p.authentication.as_ref().unwrap();
    assert_eq!(auth.auth_type(), AuthType::KeyedSha1);
    assert_eq!(auth.data().len(), 26);
    assert_bytes(&sha1, &p.encode());
}

#[test]
fn authentication_data_that_would_overflow_the_length_field_is_refused() {
    assert!(Authentication::new(AuthType::KeyedSha1, vec![0; 229]).is_ok());
    assert!(Authentication::new(AuthType::KeyedSha1, vec![0; 230]).is_err());
    let mut p = captured().remove(0).2;
    p.authentication = Some(Authentication::new(AuthType::Unknown(200), vec![7; 229]).unwrap());
    let bytes = p.encode();
    assert_eq!(bytes.len(), 255);
    assert_eq!(bytes.get(3), Some(&255));
    assert_eq!(ControlPacket::decode(&bytes), Ok(p));
}

#[test]
fn bytes_past_the_length_field_are_ignored() {
    let mut bytes = unhex(captured().remove(0).1);
    bytes.extend_from_slice(&[0xde, 0xad]);
    assert_eq!(ControlPacket::decode(&bytes), Ok(captured().remove(0).2));
}

#[test]
fn a_length_above_24_without_authentication_is_accepted_and_the_extra_bytes_ignored() {
    // RFC 5880 §6.8.6 only sets a minimum; the extra octets are not ours.
    let bytes = unhex("20400319 5106d685 00000000 000f4240 000f4240 0000c350 ff");
    assert_eq!(ControlPacket::decode(&bytes), Ok(captured().remove(0).2));
}

#[test]
fn an_empty_or_three_byte_datagram_is_truncated() {
    assert_eq!(ControlPacket::decode(&[]), Err(Discard::Truncated));
    assert_eq!(
        ControlPacket::decode(&[0x20, 0x40, 0x03]),
        Err(Discard::Truncated)
    );
}

#[test]
fn the_hex_diff_marks_exactly_the_words_that_differ() {
    let a = unhex("20400318 5106d685 00000000");
    let b = unhex("20400318 5106d686 00000000 ff");
    let diff = hex_diff(&a, &b);
    let marked: Vec<&str> = diff.lines().filter(|l| l.starts_with('!')).collect();
    assert_eq!(
        marked,
        ["!   4  5106d685  5106d686", "!  12            ff      "],
        "{diff}"
    );
}
