//! Replaying a committed fuzz corpus in a normal `cargo test`: every file
//! of a directory through a fuzz target's checks, naming the files that
//! fail. Shared (by `#[path]`) by the corpus tests of proto, fsm and the
//! configuration loader.

use std::path::Path;

/// Runs `check` on every file under `dir`; fails naming each file whose
/// check panicked, and fails when the directory is empty (a corpus that
/// went missing must not pass silently).
pub fn replay(dir: &str, check: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let mut files: Vec<_> = std::fs::read_dir(Path::new(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{dir}: {e}"));
    files.sort();
    assert!(!files.is_empty(), "no corpus in {dir}");
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            std::panic::catch_unwind(|| check(&data)).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} inputs failed: {failed:#?}",
        failed.len(),
        files.len()
    );
}
