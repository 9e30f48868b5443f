//! The checks are in `../decode_harness.rs`, shared with
//! `../../tests/fuzz_corpus.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../decode_harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::run(data));
