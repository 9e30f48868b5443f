//! Health checks: each configured `[check.NAME]` runs as its own tokio task
//! on its own schedule, feeds its results through the rise/fall
//! [`Hysteresis`], and publishes a [`CheckState`] on a `watch` channel.
//! [`Checks::levels`] combines the checks each VIP lists into "announce or
//! not", from their current state every time it is asked.
//!
//! Scheduling: a probe starts every `interval` (the first one at once) and
//! is bounded by `timeout` (< interval), so a probe is never running when
//! the next one is due. Every probe is asynchronous: HTTP, TLS and TCP are
//! tokio I/O, name resolution and `exec`'s fork/exec run on tokio's
//! blocking pool, the `file` check uses `tokio::fs`. A slow or hung probe
//! therefore only waits out its own timeout: other checks, BGP keepalives
//! and the API on the same (single-threaded) runtime go on.
//!
//! Logging: a line when a check's result changes (pass <-> fail, or the
//! reason it fails changes) and when its health changes, with the reason
//! (status code, error, exit code and output excerpt); nothing per
//! interval while results stay the same.

mod exec;
mod file;
pub mod http;
pub mod latency;
pub mod state;
mod tcp;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::config::{Check, CheckKind, Vip};

pub use state::{Health, Hysteresis};

/// A probe that overruns its own timeout handling (e.g. `exec` collecting
/// output after the kill) is abandoned this long after its deadline.
const BACKSTOP: Duration = Duration::from_millis(200);

/// The result of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub pass: bool,
    /// Short and stable from one probe to the next while nothing changes
    /// ("HTTP/1.1 500 (expected 200)", "connect: Connection refused",
    /// "exit status 1"): a change of it is logged.
    pub reason: String,
    /// Extra text for the log: a body or output excerpt. Not compared.
    pub detail: Option<String>,
}

impl Outcome {
    pub fn pass(reason: impl Into<String>) -> Outcome {
        Outcome {
            pass: true,
            reason: reason.into(),
            detail: None,
        }
    }

    pub fn fail(reason: impl Into<String>) -> Outcome {
        Outcome {
            pass: false,
            reason: reason.into(),
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: Option<String>) -> Outcome {
        self.detail = detail.filter(|d| !d.is_empty());
        self
    }
}

/// The last probe of a check.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub outcome: Outcome,
    pub latency: Duration,
    pub at: SystemTime,
}

/// What a check publishes after every probe (for the VIP combiner, and
/// status and metrics).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckState {
    pub name: Arc<str>,
    /// `https`, `http`, `tcp`, `exec` or `file`.
    pub kind: &'static str,
    pub health: Health,
    /// When `health` last changed, or the check started.
    pub since: SystemTime,
    /// `None` until the first probe has finished.
    pub last: Option<Probe>,
    /// Consecutive probes with the last probe's result (pass or fail).
    pub consecutive: u32,
    /// Passes towards up (while down) or failures towards down (while up),
    /// and how many it takes.
    pub progress: (u32, u32),
    /// The reason of the latest failure, kept after recovery.
    pub last_error: Option<String>,
    pub probes: u64,
    pub failures: u64,
    /// Health changes since start.
    pub transitions: u64,
    /// Every probe's latency since start.
    pub latency: latency::LatencyHistogram,
}

/// A running check.
pub struct CheckHandle {
    pub state: watch::Receiver<CheckState>,
    /// What it was started with: a reload restarts it only if this changed.
    config: Check,
    task: JoinHandle<()>,
}

impl Drop for CheckHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// All configured checks, running. Dropping it stops them.
pub struct Checks {
    handles: BTreeMap<String, CheckHandle>,
    /// Signalled by a check task whenever its health changes (or its first
    /// result arrives). A stored permit: no change is lost between two
    /// waits.
    changed: Arc<Notify>,
}

impl Checks {
    /// Start one task per check (on the current tokio runtime).
    pub fn spawn(checks: &[Check]) -> Result<Checks, String> {
        let mut all = Checks {
            handles: BTreeMap::new(),
            changed: Arc::new(Notify::new()),
        };
        all.reconfigure(checks)?;
        Ok(all)
    }

    /// Apply a reloaded configuration: a check whose settings did not
    /// change keeps running with its state and counters; a new or changed
    /// one starts afresh, down (fail closed); a removed one stops. Returns
    /// the names (re)started. On error nothing has changed.
    pub fn reconfigure(&mut self, checks: &[Check]) -> Result<Vec<String>, String> {
        let mut started = BTreeMap::new();
        for c in checks {
            if self.handles.get(&c.name).is_some_and(|h| h.config == *c) {
                continue;
            }
            let handle = spawn(c, self.changed.clone())
                .map_err(|e| format!("check.{}: cannot start: {e}", c.name))?;
            started.insert(c.name.clone(), handle);
        }
        self.handles
            .retain(|name, _| checks.iter().any(|c| c.name == *name));
        let names = started.keys().cloned().collect();
        self.handles.extend(started);
        // The VIPs' health must be re-derived now, whatever changed.
        self.changed.notify_one();
        Ok(names)
    }

    /// Wait until some check's health may have changed. Cancel-safe.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// The state of one check, to watch.
    pub fn state(&self, name: &str) -> Option<watch::Receiver<CheckState>> {
        self.handles.get(name).map(|h| h.state.clone())
    }

    /// Every check's current state, by name.
    pub fn snapshot(&self) -> Vec<CheckState> {
        self.handles
            .values()
            .map(|h| h.state.borrow().clone())
            .collect()
    }

    /// Every VIP's health as its checks stand right now (level-triggered:
    /// derived from the checks' current state, never from their last
    /// change). `always` VIPs are up.
    pub fn levels(&self, vips: &[Vip]) -> Vec<VipLevel> {
        vips.iter()
            .map(|v| {
                if v.always {
                    return VipLevel {
                        prefix: v.prefix,
                        up: true,
                        maintenance: false,
                        reason: "always = true".to_string(),
                    };
                }
                // The config guarantees every name is defined; a missing
                // one makes the VIP down (fail closed), never up with fewer
                // checks.
                let states: Option<Vec<CheckState>> = v
                    .checks
                    .iter()
                    .map(|n| self.handles.get(n).map(|h| h.state.borrow().clone()))
                    .collect();
                let (up, maintenance, reason) = match states {
                    Some(states) => combine_vip(&states),
                    None => (false, false, "a check it lists is not running".to_string()),
                };
                VipLevel {
                    prefix: v.prefix,
                    up,
                    maintenance,
                    reason,
                }
            })
            .collect()
    }
}

/// The kind-specific part of a check.
enum Prober {
    Http(http::HttpProbe),
    Tcp(String),
    Exec(Vec<String>),
    File(std::path::PathBuf),
}

impl Prober {
    fn new(kind: &CheckKind) -> Result<Prober, String> {
        Ok(match kind {
            CheckKind::Http(h) => Prober::Http(http::HttpProbe::new(h)?),
            CheckKind::Tcp(t) => Prober::Tcp(t.clone()),
            CheckKind::Exec(argv) => Prober::Exec(argv.clone()),
            CheckKind::File(p) => Prober::File(p.clone()),
        })
    }

    /// One probe; each kind gives up at `deadline` with a reason that says
    /// where it was.
    async fn run(&self, deadline: Instant, timeout: Duration) -> Outcome {
        match self {
            Prober::Http(h) => h.run(deadline, timeout).await,
            Prober::Tcp(t) => tcp::run(t, deadline, timeout).await,
            Prober::Exec(argv) => exec::run(argv, deadline, timeout).await,
            Prober::File(p) => file::run(p, deadline, timeout).await,
        }
    }
}

/// Start one check's task; its results are published on the returned
/// handle's `state`, and `changed` is notified on every health change.
pub fn spawn(check: &Check, changed: Arc<Notify>) -> Result<CheckHandle, String> {
    let prober = Prober::new(&check.kind)?;
    let initial = CheckState {
        name: Arc::from(check.name.as_str()),
        kind: check.kind.name(),
        health: Health::Down,
        since: SystemTime::now(),
        last: None,
        consecutive: 0,
        progress: (0, check.rise.max(1)),
        last_error: None,
        probes: 0,
        failures: 0,
        transitions: 0,
        latency: latency::LatencyHistogram::default(),
    };
    let (tx, state) = watch::channel(initial);
    let task = tokio::spawn(run(check.clone(), prober, tx, changed));
    Ok(CheckHandle {
        state,
        config: check.clone(),
        task,
    })
}

async fn run(check: Check, prober: Prober, tx: watch::Sender<CheckState>, changed: Arc<Notify>) {
    let mut ticks = tokio::time::interval(check.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut hysteresis = Hysteresis::new(check.rise, check.fall);
    let mut log = ResultLog::default();
    let name = check.name.as_str();
    let kind = check.kind.name();
    tracing::info!(
        check = name,
        kind,
        interval = %humantime::format_duration(check.interval),
        timeout = %humantime::format_duration(check.timeout),
        rise = check.rise,
        fall = check.fall,
        "check started (down until {} consecutive passes)",
        check.rise
    );
    loop {
        ticks.tick().await;
        let started = Instant::now();
        let deadline = started + check.timeout;
        let outcome =
            match tokio::time::timeout_at(deadline + BACKSTOP, prober.run(deadline, check.timeout))
                .await
            {
                Ok(o) => o,
                Err(_) => Outcome::fail(format!(
                    "timed out after {}",
                    humantime::format_duration(check.timeout)
                )),
            };
        let latency = started.elapsed();
        let first = tx.borrow().last.is_none();
        let change = hysteresis.record(outcome.pass);
        let (done, needed) = hysteresis.progress();
        match change {
            Some(Health::Up) => tracing::info!(
                check = name,
                reason = %outcome.reason,
                "check UP after {} consecutive passes",
                check.rise
            ),
            Some(Health::Down) => tracing::warn!(
                check = name,
                reason = %outcome.reason,
                detail = outcome.detail.as_deref().map(tracing::field::debug),
                "check DOWN after {} consecutive failures",
                check.fall
            ),
            None => {
                if log.changed(&outcome) {
                    let health = hysteresis.health();
                    if outcome.pass {
                        tracing::info!(
                            check = name,
                            reason = %outcome.reason,
                            %health,
                            "check passing ({done} of {needed} to come up)",
                        );
                    } else {
                        let towards = if health.is_up() {
                            format!(" ({done} of {needed} to go down)")
                        } else {
                            String::new()
                        };
                        tracing::warn!(
                            check = name,
                            reason = %outcome.reason,
                            detail = outcome.detail.as_deref().map(tracing::field::debug),
                            %health,
                            "check failing{towards}",
                        );
                    }
                }
            }
        }
        if change.is_some() {
            // Health changes are also result changes: the next repeat of
            // this result is not logged again.
            log.changed(&outcome);
        }
        let now = SystemTime::now();
        tx.send_modify(|s| {
            let same = s.last.as_ref().map(|p| p.outcome.pass) == Some(outcome.pass);
            s.consecutive = if same { s.consecutive + 1 } else { 1 };
            s.probes += 1;
            s.latency.observe(latency);
            if !outcome.pass {
                s.failures += 1;
                s.last_error = Some(outcome.reason.clone());
            }
            if let Some(h) = change {
                s.health = h;
                s.since = now;
                s.transitions += 1;
            }
            s.progress = (done, needed);
            s.last = Some(Probe {
                outcome,
                latency,
                at: now,
            });
        });
        // The first result matters too: a `file` check's flag counts as
        // maintenance only once it has been seen.
        if change.is_some() || first {
            changed.notify_one();
        }
    }
}

/// Remembers the last logged (pass, reason), so that only changes are
/// logged.
#[derive(Default)]
struct ResultLog {
    last: Option<(bool, String)>,
}

impl ResultLog {
    /// Whether `o` differs from the last result seen (and remember it).
    fn changed(&mut self, o: &Outcome) -> bool {
        let key = (o.pass, o.reason.clone());
        if self.last.as_ref() == Some(&key) {
            return false;
        }
        self.last = Some(key);
        true
    }
}

/// A VIP's combined health, as its checks stand now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipLevel {
    pub prefix: IpNet,
    pub up: bool,
    /// Down only because a `file` check (the maintenance flag) fails while
    /// every other check passes: the VIP is drained (RFC 8326), not
    /// withdrawn at once (design section 5: "present = drain").
    pub maintenance: bool,
    /// Why: "all checks up (apiserver)" or "check apiserver is down: HTTP/1.1 500 (expected 200)".
    pub reason: String,
}

/// Whether a VIP whose checks are in `states` is up: all of them are up.
/// With the reason for the log. No checks at all is down (fail closed;
/// `always` VIPs do not go through here).
pub fn combine<'a>(states: impl IntoIterator<Item = &'a CheckState>) -> (bool, String) {
    let mut names = Vec::new();
    for s in states {
        if !s.health.is_up() {
            let why = match (&s.last, &s.last_error) {
                (None, _) => "no result yet".to_string(),
                (Some(p), _) if !p.outcome.pass => p.outcome.reason.clone(),
                (Some(_), Some(e)) => format!("recovering from: {e}"),
                (Some(p), None) => p.outcome.reason.clone(),
            };
            return (false, format!("check {} is down: {why}", s.name));
        }
        names.push(s.name.to_string());
    }
    if names.is_empty() {
        return (false, "no checks".to_string());
    }
    (true, format!("all checks up ({})", names.join(", ")))
}

/// `(up, maintenance, reason)` of one VIP: maintenance when the only
/// checks that are down are `file` checks.
fn combine_vip(states: &[CheckState]) -> (bool, bool, String) {
    let (up, reason) = combine(states);
    if up {
        return (true, false, reason);
    }
    let (files, others): (Vec<&CheckState>, Vec<&CheckState>) =
        states.iter().partition(|s| s.kind == "file");
    let others_up = others.iter().all(|s| s.health.is_up());
    // Only a flag actually seen counts: before a file check's first
    // result its VIP is simply not up yet (fail closed).
    let down_files: Vec<&&CheckState> = files.iter().filter(|s| !s.health.is_up()).collect();
    let maintenance =
        others_up && !down_files.is_empty() && down_files.iter().all(|s| s.last.is_some());
    if maintenance {
        let (_, why) = combine(files);
        return (false, true, format!("maintenance: {why}"));
    }
    (false, false, reason)
}

/// A spawned helper task that is aborted when the probe ends or is
/// abandoned at its timeout.
pub(crate) struct Task<T>(JoinHandle<T>);

impl<T> Task<T> {
    /// Its result; `None` if it panicked or was aborted.
    pub(crate) async fn join(mut self) -> Option<T> {
        (&mut self.0).await.ok()
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// "a: b: c" from an error and its sources.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

/// At most `max` bytes of `bytes` as text on one line, for the log.
pub(crate) fn excerpt(bytes: &[u8], max: usize) -> String {
    let cut = &bytes[..bytes.len().min(max)];
    let mut s = String::from_utf8_lossy(cut).trim().to_string();
    if bytes.len() > max {
        s.push('…');
    }
    s
}
