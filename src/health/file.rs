//! `file` checks: a maintenance flag. The check passes while the file does
//! NOT exist; creating it (`touch /etc/anyvip/maintenance`) fails the check,
//! which withdraws every VIP that lists it after `fall` probes. A symlink
//! counts as present even if it dangles. A path that cannot be examined
//! (permission denied, I/O error) fails too: fail closed.
//!
//! The `stat` runs through `tokio::fs` (tokio's blocking pool), so a hung
//! file system costs this check its timeout and nothing else.

use std::io::ErrorKind;
use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use super::Outcome;

pub async fn run(path: &Path, deadline: Instant, timeout: Duration) -> Outcome {
    match tokio::time::timeout_at(deadline, tokio::fs::symlink_metadata(path)).await {
        Ok(Ok(_)) => Outcome::fail(format!("{} exists (maintenance)", path.display())),
        Ok(Err(e)) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            Outcome::pass(format!("{} absent", path.display()))
        }
        Ok(Err(e)) => Outcome::fail(format!("cannot examine {}: {e}", path.display())),
        Err(_) => Outcome::fail(format!(
            "timed out after {} (stat {})",
            humantime::format_duration(timeout),
            path.display()
        )),
    }
}
