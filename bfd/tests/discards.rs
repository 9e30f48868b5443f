//! RFC 5880 §6.8.6: every reception check, each with its own discard
//! reason, and the order in which they apply.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Instant;

use anyvip_bfd::{AuthType, Authentication, ControlPacket, Discard, State};
use common::{from_peer, session, unhex, LOCAL};

/// FRR's first Down packet (see vectors.rs), the base the cases bend.
const GOOD: &str = "20400318 5106d685 00000000 000f4240 000f4240 0000c350";

fn bent(edit: impl FnOnce(&mut Vec<u8>)) -> Result<ControlPacket, Discard> {
    let mut bytes = unhex(GOOD);
    edit(&mut bytes);
    ControlPacket::decode(&bytes)
}

fn set(bytes: &mut [u8], at: usize, value: u8) {
    *bytes.get_mut(at).unwrap() = value;
}

#[test]
fn the_unmodified_base_packet_is_accepted() {
    assert!(bent(|_| {}).is_ok());
}

#[test]
fn version_other_than_1_is_discarded() {
    for version in [0u8, 2, 7] {
        let result = bent(|b| set(b, 0, version << 5));
        assert_eq!(result, Err(Discard::Version), "version {version}");
    }
}

#[test]
fn length_below_24_is_discarded() {
    assert_eq!(bent(|b| set(b, 3, 23)), Err(Discard::LengthTooShort));
    assert_eq!(bent(|b| set(b, 3, 0)), Err(Discard::LengthTooShort));
}

#[test]
fn length_below_26_with_the_a_bit_set_is_discarded() {
    let result = bent(|b| {
        set(b, 1, 0x44);
        b.extend_from_slice(&[1, 2]);
        set(b, 3, 25);
    });
    assert_eq!(result, Err(Discard::LengthTooShort));
}

#[test]
fn length_above_the_bytes_received_is_discarded() {
    assert_eq!(bent(|b| set(b, 3, 25)), Err(Discard::LengthExceedsPayload));
    assert_eq!(bent(|b| b.truncate(23)), Err(Discard::LengthExceedsPayload));
}

#[test]
fn an_auth_len_that_runs_past_length_or_below_2_is_discarded() {
    // A bit, Length 26, Auth Len 3: one octet past Length.
    let past = bent(|b| {
        set(b, 1, 0x44);
        set(b, 3, 26);
        b.extend_from_slice(&[1, 3, 0]);
    });
    assert_eq!(past, Err(Discard::AuthenticationMalformed));
    let short = bent(|b| {
        set(b, 1, 0x44);
        set(b, 3, 26);
        b.extend_from_slice(&[1, 1]);
    });
    assert_eq!(short, Err(Discard::AuthenticationMalformed));
}

#[test]
fn the_checks_apply_in_the_rfc_order_version_first() {
    // Wrong version and a Length far beyond the datagram: version wins.
    assert_eq!(
        bent(|b| {
            set(b, 0, 0x40);
            set(b, 3, 200);
        }),
        Err(Discard::Version)
    );
    // Length too short and beyond nothing: too short comes first.
    assert_eq!(
        bent(|b| {
            set(b, 1, 0x44);
            set(b, 3, 25);
            b.truncate(10);
        }),
        Err(Discard::LengthTooShort)
    );
    // Detect Mult zero and M set and My Discriminator zero: Detect Mult.
    let mut p = from_peer(State::Up, 0);
    p.detect_multiplier = 0;
    p.multipoint = true;
    p.my_discriminator = 0;
    assert_eq!(p.check(), Err(Discard::DetectMultiplierZero));
    p.detect_multiplier = 3;
    assert_eq!(p.check(), Err(Discard::Multipoint));
    p.multipoint = false;
    assert_eq!(p.check(), Err(Discard::MyDiscriminatorZero));
    p.my_discriminator = 9;
    assert_eq!(p.check(), Err(Discard::YourDiscriminatorZero));
}

#[test]
fn detect_mult_zero_is_discarded() {
    let p = bent(|b| set(b, 2, 0)).unwrap();
    assert_eq!(p.check(), Err(Discard::DetectMultiplierZero));
}

#[test]
fn the_multipoint_bit_is_discarded() {
    let p = bent(|b| set(b, 1, 0x41)).unwrap();
    assert!(p.multipoint);
    assert_eq!(p.check(), Err(Discard::Multipoint));
}

#[test]
fn my_discriminator_zero_is_discarded() {
    let p = bent(|b| b.get_mut(4..8).unwrap().fill(0)).unwrap();
    assert_eq!(p.check(), Err(Discard::MyDiscriminatorZero));
}

#[test]
fn your_discriminator_zero_is_discarded_unless_the_state_is_down_or_admin_down() {
    for (state, verdict) in [
        (State::AdminDown, Ok(())),
        (State::Down, Ok(())),
        (State::Init, Err(Discard::YourDiscriminatorZero)),
        (State::Up, Err(Discard::YourDiscriminatorZero)),
    ] {
        assert_eq!(from_peer(state, 0).check(), verdict, "{state:?}");
    }
}

#[test]
fn a_session_discards_a_packet_for_another_discriminator() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let result = s.handle_packet(t0, &from_peer(State::Init, LOCAL + 1));
    assert_eq!(result, Err(Discard::YourDiscriminatorUnknown));
    assert_eq!(s.state(), State::Down);
    assert_eq!(
        s.remote_discriminator(),
        None,
        "a discarded packet changes nothing"
    );
}

#[test]
fn a_session_without_authentication_discards_a_packet_with_the_a_bit() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let mut p = from_peer(State::Down, 0);
    p.authentication = Some(Authentication::new(AuthType::KeyedSha1, vec![0; 26]).unwrap());
    assert_eq!(
        s.handle_packet(t0, &p),
        Err(Discard::AuthenticationNotConfigured)
    );
    assert_eq!(s.state(), State::Down);
    assert_eq!(
        s.detection_time(),
        None,
        "a discarded packet changes nothing"
    );
}

#[test]
fn a_session_runs_the_packet_checks_itself_too() {
    let t0 = Instant::now();
    let mut s = session(t0);
    let mut p = from_peer(State::Down, 0);
    p.detect_multiplier = 0;
    assert_eq!(s.handle_packet(t0, &p), Err(Discard::DetectMultiplierZero));
    assert_eq!(
        s.handle_packet(t0, &from_peer(State::Up, 0)),
        Err(Discard::YourDiscriminatorZero)
    );
}

#[test]
fn every_discard_reason_has_a_distinct_label() {
    let mut labels: Vec<&str> = Discard::ALL.iter().map(|d| d.as_str()).collect();
    labels.sort_unstable();
    labels.dedup();
    assert_eq!(labels.len(), Discard::ALL.len());
}
