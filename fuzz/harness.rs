//! The configuration loader fed arbitrary text (a failed check panics).
//!
//! Shared by the cargo-fuzz target (`fuzz_targets/config.rs`) and the
//! corpus replay test (`../tests/config_fuzz_corpus.rs`, stable Rust).
//!
//! Checked: `parse_with_warnings` never panics; every error and every
//! warning names a key (non-empty, not just blanks), and the TOML syntax
//! errors, which have no key yet, name their line, except the one the
//! TOML parser reports without a position (nesting past its recursion
//! limit; see `the_toml_recursion_limit_is_a_syntax_error_without_a_line`
//! in `../tests/config_fuzz_corpus.rs`).

use std::path::Path;

use anyvip::config::{parse_with_warnings, ConfigError, Problems};

/// Run one input; panics when a check fails.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // File names in the text are read (a password file, a CA): keep the
    // fuzzer off devices and kernel files that never end or may block
    // (also when spelled with TOML escapes). Relative names resolve under
    // a directory that does not exist, so `..` leads nowhere.
    if ["/dev", "/proc", "/sys", "\\u", "\\U"]
        .iter()
        .any(|d| text.contains(d))
    {
        return;
    }
    // A directory with nothing in it: relative names are not found.
    let base = Path::new("/nonexistent/anyvip-fuzz");
    match parse_with_warnings(text, base) {
        Ok((_, warnings)) => warnings.iter().for_each(check),
        Err(Problems { errors, warnings }) => {
            assert!(!errors.is_empty(), "refused without an error");
            errors.iter().chain(&warnings).for_each(check);
        }
    }
}

fn check(e: &ConfigError) {
    assert!(!e.key.trim().is_empty(), "an error without a key: {e:?}");
    if e.key == "(syntax)" && e.reason != "recursion limit" {
        assert!(
            e.reason.contains("line "),
            "a syntax error without its line: {e:?}"
        );
    }
    let _ = e.to_string();
}
