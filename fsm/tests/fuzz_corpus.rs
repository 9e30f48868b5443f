//! Replays the committed fuzz corpus (`fuzz/minimised/session/`) through
//! the fuzz target's own checks, so CI runs them on stable Rust, and keeps
//! every crash the fuzzer found as a named test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../fuzz/harness.rs"]
mod harness;

#[path = "../../proto/tests/support/corpus.rs"]
mod corpus;

#[test]
fn every_minimised_session_input_keeps_the_invariants() {
    corpus::replay(
        concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/minimised/session"),
        |data| {
            harness::run(data);
        },
    );
}

#[test]
fn an_empty_input_and_a_bare_header_do_nothing() {
    assert_eq!(harness::run(&[]).steps, 0);
    assert_eq!(harness::run(&[0x3f, 1, 2, 3, 4, 5, 6, 7, 8]).steps, 0);
}

/// The harness's own input format gets a session to Established (so the
/// invariants about Established are exercised at all): start, then the
/// cooperating peer's TCP connect, OPEN and KEEPALIVE; then a NOTIFICATION.
#[test]
fn a_cooperating_peer_reaches_established_and_its_notification_is_seen() {
    let header = [0x0a, 1, 2, 3, 4, 5, 6, 7, 8];
    let cooperate = [12, 0, 0, 90];
    let mut input = header.to_vec();
    input.push(2);
    for _ in 0..3 {
        input.extend(cooperate);
    }
    input.extend([9, 0, 5, 6, 2, 0]);
    let outcome = harness::run(&input);
    assert_eq!(outcome.established, 1, "{outcome:?}");
    assert_eq!(outcome.notifications_received, 1, "{outcome:?}");
}
