//! The session FSM fed arbitrary event sequences; the input format and the
//! invariants are in `../harness.rs`, shared with `../../tests/fuzz_corpus.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    harness::run(data);
});
