//! Shared by the integration tests and the benchmark: where the external
//! test data lives, and a reader for the MRT files that carry it.
#![allow(dead_code)]

pub mod mrt;

use std::path::PathBuf;

/// `../shared/testdata` beside the project root, or `$ANYVIP_TESTDATA`.
///
/// `None` (with a loud message) only when the folder is absent, as in a
/// checkout outside the workplace; CI always has it.
pub fn testdata_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("ANYVIP_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"));
    if dir.is_dir() {
        Some(dir)
    } else if std::env::var_os("CI").is_some() {
        panic!(
            "external test data not found at {}: CI must run with ../shared beside the checkout",
            dir.display()
        );
    } else {
        eprintln!(
            "\n*** SKIPPED: external test data not found at {} (set ANYVIP_TESTDATA) ***\n",
            dir.display()
        );
        None
    }
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from hex (whitespace and ':' ignored).
pub fn unhex(s: &str) -> Vec<u8> {
    let clean: Vec<u8> = s.bytes().filter(|c| c.is_ascii_hexdigit()).collect();
    clean
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// A readable diff of two byte strings: both in hex, 16 octets a line, with
/// the lines that differ marked.
pub fn hex_diff(expected: &[u8], actual: &[u8]) -> String {
    let mut out = String::new();
    let lines = expected.len().max(actual.len()).div_ceil(16);
    for line in 0..lines {
        let range = |b: &[u8]| {
            let start = (line * 16).min(b.len());
            let end = (line * 16 + 16).min(b.len());
            hex(&b[start..end])
        };
        let (e, a) = (range(expected), range(actual));
        let mark = if e == a { ' ' } else { '!' };
        out.push_str(&format!(
            "{mark} {:04x}  expected {e:<32}  actual {a}\n",
            line * 16
        ));
    }
    out
}

/// Assert two byte strings are equal, printing a hex diff if not.
#[track_caller]
pub fn assert_bytes_eq(expected: &[u8], actual: &[u8], what: &str) {
    if expected != actual {
        panic!(
            "{what}: bytes differ ({} expected, {} actual)\n{}",
            expected.len(),
            actual.len(),
            hex_diff(expected, actual)
        );
    }
}
