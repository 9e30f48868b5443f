//! `exec` checks: run a program (argv, no shell); exit 0 passes.
//!
//! The program runs in a process group of its own. At the timeout the
//! whole group is killed (SIGKILL), so a probe script's children go too;
//! the group is also killed after a normal exit, so nothing a probe left
//! behind outlives it. stdout and stderr are captured (the first
//! [`CAPTURE`] bytes of each; the rest is read and dropped, so the program
//! never blocks on a full pipe) and an excerpt goes into the log when the
//! check fails.
//!
//! fork/exec itself runs on tokio's blocking pool: starting a program can
//! block (a binary on a hung file system) and must not block the loop.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::time::Instant;

use super::{excerpt, Outcome, Task};

/// Bytes kept of each of stdout and stderr.
pub const CAPTURE: usize = 4096;
/// How much of each goes into the log.
const LOG_EXCERPT: usize = 512;
/// After the exit (or the kill): how long to wait for the rest of the
/// output and for the killed process to be reaped.
const DRAIN: Duration = Duration::from_millis(100);

pub async fn run(argv: &[String], deadline: Instant, timeout: Duration) -> Outcome {
    let program = argv[0].clone();
    let timed_out = || format!("timed out after {}", humantime::format_duration(timeout));
    let mut cmd = Command::new(&program);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // The check is not the service: systemd's notify and watchdog
    // variables are ours alone.
    for var in crate::notify::CHILD_ENV_REMOVE {
        cmd.env_remove(var);
    }
    let spawned =
        tokio::time::timeout_at(deadline, tokio::task::spawn_blocking(move || cmd.spawn())).await;
    let mut child = match spawned {
        Err(_) => return Outcome::fail(format!("{} (starting {program})", timed_out())),
        Ok(Err(e)) => return Outcome::fail(format!("cannot start {program}: {e}")),
        Ok(Ok(Err(e))) => return Outcome::fail(format!("cannot start {program}: {e}")),
        Ok(Ok(Ok(child))) => child,
    };
    let mut group = Group(child.id().and_then(|id| i32::try_from(id).ok()));
    let stdout = Task(tokio::spawn(read_bounded(child.stdout.take())));
    let stderr = Task(tokio::spawn(read_bounded(child.stderr.take())));

    let waited = tokio::time::timeout_at(deadline, child.wait()).await;
    // Whatever happened, nothing the probe started outlives it.
    group.kill();
    let status: Result<ExitStatus, String> = match waited {
        Ok(Ok(status)) => Ok(status),
        Ok(Err(e)) => Err(format!("waiting for {program}: {e}")),
        Err(_) => Err(format!("{} (process group killed)", timed_out())),
    };
    let (_, out, err) = tokio::time::timeout(DRAIN, async {
        tokio::join!(child.wait(), stdout.join(), stderr.join())
    })
    .await
    .unwrap_or((Ok(ExitStatus::from_raw(0)), None, None));
    let detail = output(out.as_deref(), err.as_deref());
    match status {
        Ok(s) if s.success() => Outcome::pass("exit 0"),
        Ok(s) => Outcome::fail(describe(s)).with_detail(detail),
        Err(reason) => Outcome::fail(reason).with_detail(detail),
    }
}

fn describe(s: ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => s.to_string(),
    }
}

fn output(out: Option<&[u8]>, err: Option<&[u8]>) -> Option<String> {
    let mut parts = Vec::new();
    for (name, bytes) in [("stdout", out), ("stderr", err)] {
        if let Some(b) = bytes.filter(|b| !b.is_empty()) {
            parts.push(format!("{name}: {}", excerpt(b, LOG_EXCERPT)));
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The first [`CAPTURE`] bytes; reads (and drops) the rest until EOF.
async fn read_bounded<R: AsyncRead + Unpin>(reader: Option<R>) -> Vec<u8> {
    let Some(mut reader) = reader else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = CAPTURE.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

/// The probe's process group; killed (once) by [`Group::kill`] or on drop,
/// so an abandoned probe kills it too.
struct Group(Option<i32>);

impl Group {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            if pgid > 0 {
                // SAFETY: kill(2) with a negative pid signals the process
                // group; it has no memory-safety preconditions. The group
                // id is our child's pid, which cannot be reused while the
                // group has members; ESRCH (already gone) is fine.
                unsafe {
                    libc::kill(-pgid, libc::SIGKILL);
                }
            }
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}
