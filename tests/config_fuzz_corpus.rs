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
    for dir in [
        "config",
        "containerlab/n1",
        "containerlab/n2",
        "containerlab/n3",
    ] {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                harness::run(&std::fs::read(&path).unwrap());
            }
        }
    }
}

/// Found by the fuzzer (fuzz/, target `config`): 80 dots are nested empty
/// dotted keys, past the TOML parser's recursion limit, and that parser
/// error carries no position, so it names no line (only the "(syntax)"
/// key). Kept as it is: the file is refused, nothing panics, and the
/// errors before it ("unquoted keys cannot be empty") name line 1. Should
/// the parser give a position one day, this test says so.
#[test]
fn the_toml_recursion_limit_is_a_syntax_error_without_a_line() {
    let text = ".".repeat(80);
    harness::run(text.as_bytes());
    let errors = anyvip::config::parse(&text, std::path::Path::new("/nonexistent")).unwrap_err();
    let (last, before) = errors.split_last().unwrap();
    assert_eq!(last.key, "(syntax)");
    assert_eq!(last.reason, "recursion limit");
    assert!(!before.is_empty());
    for e in before {
        assert!(e.reason.ends_with("(line 1)"), "{e:?}");
    }
}

/// Found by the fuzzer: `"" = 1` is a valid TOML key, and the error for
/// it, an unknown table, had an empty key (printed as ": unknown table").
#[test]
fn an_empty_top_level_key_is_named_as_written() {
    harness::run(b"\"\" = 1\n");
    let errors =
        anyvip::config::parse("\"\" = 1\n", std::path::Path::new("/nonexistent")).unwrap_err();
    let unknown: Vec<_> = errors
        .iter()
        .filter(|e| e.reason.contains("unknown table"))
        .collect();
    assert_eq!(unknown.len(), 1, "{errors:?}");
    assert_eq!(unknown[0].key, "\"\"");
}
