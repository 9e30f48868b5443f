//! Replays the committed fuzz corpora (`fuzz/minimised/{decode,session}/`)
//! through the fuzz targets' own checks, so CI runs them on stable Rust.
//! Crashes the fuzzer found are named tests in `fuzz_regressions.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../fuzz/decode_harness.rs"]
mod decode;

#[path = "../fuzz/session_harness.rs"]
mod session;

#[path = "../../proto/tests/support/corpus.rs"]
mod corpus;

#[test]
fn every_minimised_decode_input_passes_the_fuzz_checks() {
    corpus::replay(
        concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/minimised/decode"),
        decode::run,
    );
}

#[test]
fn every_minimised_session_input_passes_the_fuzz_checks() {
    corpus::replay(
        concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/minimised/session"),
        session::run,
    );
}
