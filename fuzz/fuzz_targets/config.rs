//! The configuration loader fed arbitrary text; the checks are in
//! `../harness.rs`, shared with `../../tests/config_fuzz_corpus.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::run(data));
