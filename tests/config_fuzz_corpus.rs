//! Replays the committed fuzz corpus of the configuration loader
//! (`fuzz/minimised/config/`) through the fuzz target's own checks, so CI
//! runs them on stable Rust, and keeps every crash found as a named test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../fuzz/harness.rs"]
mod harness;

#[path = "../proto/tests/support/corpus.rs"]
mod corpus;

#[test]
fn every_minimised_config_input_passes_the_fuzz_checks() {
    corpus::replay(
        concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/minimised/config"),
        harness::run,
    );
}

#[test]
fn the_shipped_example_configurations_pass_the_fuzz_checks() {
    for dir in ["config", "containerlab/n1", "containerlab/n2", "containerlab/n3"] {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                harness::run(&std::fs::read(&path).unwrap());
            }
        }
    }
}
