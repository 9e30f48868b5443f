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
        harness::run,
    );
}

#[test]
fn an_empty_input_and_a_bare_header_do_nothing() {
    harness::run(&[]);
    harness::run(&[0x3f, 1, 2, 3, 4, 5, 6, 7, 8]);
}
