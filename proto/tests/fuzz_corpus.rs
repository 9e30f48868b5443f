//! Replays the committed fuzz corpus (`fuzz/minimised/decode/`) through the
//! fuzz target's own checks, so CI runs them on stable Rust. Crashes the
//! fuzzer found are named tests in `fuzz_regressions.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../fuzz/harness.rs"]
mod harness;

#[path = "support/corpus.rs"]
mod corpus;

#[test]
fn every_minimised_decode_input_passes_the_fuzz_checks() {
    corpus::replay(
        concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/minimised/decode"),
        harness::run,
    );
}
