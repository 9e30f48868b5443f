//! systemd's service notification protocol (sd_notify(3)) for the
//! `Type=notify` unit in `config/anyvip.service`.
//!
//! Every function is a no-op returning `Ok(())` when `NOTIFY_SOCKET` is
//! unset (anyvip started by hand, from a test, or by another supervisor).
//! A failure to notify never stops the daemon: log it and carry on
//! ([`Watchdog::ping`] logs a failing ping once, not at every tick).
//!
//! # Where the daemon calls what
//!
//! | call | when |
//! | --- | --- |
//! | [`Watchdog::from_env`] | once, in `daemon::run` before the main loop (it is inert when the unit has no `WatchdogSec=`) |
//! | [`ready`]`(summary)` | in `daemon::run`, once the configuration is loaded, the data plane (nftables guard) is installed, peers are spawned, listeners are bound and checks are started: right before entering the main `select!` loop. Not after the first announcement: fail closed means "ready" is not "announcing" |
//! | [`Watchdog::tick`] + [`Watchdog::ping`] | an arm of the **main** `select!` loop (see below); it fires every [`watchdog_interval`] |
//! | [`status`]`(summary)` | on every change worth a glance in `systemctl status`: a VIP announced / withdrawn / draining, a session established / lost; e.g. `"2/2 peers established, 1/1 VIPs announced"` |
//! | [`reloading`] | first thing on SIGHUP (or an API reload), before reading the file |
//! | [`ready`]`(summary)` again | when that reload is done, applied **or** rejected (with the reason in the summary, e.g. `"reload failed: peer[1].asn: ...; running the previous configuration"`): systemd keeps the unit in "reloading" until READY=1 |
//! | [`stopping`] | first thing on SIGTERM/SIGINT (and on a fatal error before returning), before the drain starts |
//! | [`extend_timeout`]`(d)` | right after [`stopping`], when the drain delay plus clean-up may exceed the unit's `TimeoutStopSec=` (a configured `[drain] delay` longer than the shipped unit expects) |
//!
//! # The watchdog must be fed from the main event loop
//!
//! `WatchdogSec=` in the unit makes systemd kill anyvip (SIGABRT, then
//! `Restart=on-failure`) when no `WATCHDOG=1` arrived for that long. The
//! kill closes every BGP session at once, so the routers drop this node
//! immediately instead of after the hold time: design invariant 4 ("a hung
//! event loop must not keep sending keepalives"). That only holds if the
//! ping comes from the same loop that runs the checks and the sessions:
//! feed it ([`Watchdog::ping`]) from an arm of the `tokio::select!` in
//! `daemon::run`, never from a spawned task or a thread of its own. The
//! daemon runs on a current-thread runtime, so a task that blocks the
//! thread also stops the ping.
//!
//! The flip side: anything an arm awaits delays the next ping. Keep such
//! waits well under `WatchdogSec=`/2 (the shipped unit: 8 s, so 4 s;
//! `Lifecycle::apply` waits up to 2 s for withdrawals today). A wait that
//! can be longer — the drain delay of `anyvip drain` while the daemon keeps
//! running — must be a timer arm of the loop, not a `sleep` inside an arm.
//! Once [`stopping`] was sent, systemd no longer watches (the unit has left
//! the running state), so the drain of a stop cannot trip it.
//!
//! ```ignore
//! let mut watchdog = notify::Watchdog::from_env();
//! let _ = notify::ready(&summary);
//! loop {
//!     tokio::select! {
//!         _ = watchdog.tick() => watchdog.ping(),
//!         changes = vip_health.changed() => lifecycle.apply(changes).await,
//!         // ... peers, control requests, signals
//!     }
//! }
//! ```
//!
//! # Children
//!
//! `nft` and `exec` checks inherit the environment. systemd ignores
//! notifications from anything but the main process (`NotifyAccess=main`),
//! and `WATCHDOG_PID` tells a child the watchdog is not its own, but a
//! child has no use for these variables: spawn children with
//! `env_remove` for each of [`CHILD_ENV_REMOVE`].
//!
//! # Why not `sd_notify::notify` itself
//!
//! The `sd-notify` crate formats the messages ([`NotifyState`], including
//! `MONOTONIC_USEC`), but its `notify` treats `NOTIFY_SOCKET` as a file
//! name only. systemd also hands out abstract-namespace sockets
//! (`NOTIFY_SOCKET=@name`, sd_notify(3)), so the datagram is sent here.
//! Its `watchdog_enabled` returns `Some(0)` for `WATCHDOG_USEC=0`, which
//! would make a zero-period timer; [`watchdog_interval`] treats it as off.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::time::Duration;

use sd_notify::NotifyState;

/// The socket systemd listens on, `/run/systemd/notify` or `@abstract`.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
/// The watchdog period in microseconds (`WatchdogSec=`).
pub const WATCHDOG_USEC: &str = "WATCHDOG_USEC";
/// The process the watchdog applies to; unset means "whoever reads it".
pub const WATCHDOG_PID: &str = "WATCHDOG_PID";
/// Variables a child process (`nft`, an `exec` check) should not inherit.
pub const CHILD_ENV_REMOVE: [&str; 3] = [NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID];

/// `STATUS=` is one line in `systemctl status`: longer texts are cut.
pub const MAX_STATUS_LEN: usize = 512;

/// Whether a service manager listens (`NOTIFY_SOCKET` is set).
pub fn enabled() -> bool {
    std::env::var_os(NOTIFY_SOCKET).is_some_and(|s| !s.is_empty())
}

/// Start-up is complete (`READY=1`), with a one-line summary (`STATUS=`).
/// Also sent when a reload is finished, successful or not.
pub fn ready(status: &str) -> io::Result<()> {
    let status = one_line(status);
    notify(&[NotifyState::Ready, NotifyState::Status(&status)])
}

/// A one-line summary for `systemctl status` (`STATUS=`).
pub fn status(text: &str) -> io::Result<()> {
    let text = one_line(text);
    notify(&[NotifyState::Status(&text)])
}

/// A reload has started (`RELOADING=1`); follow with [`ready`] when done.
///
/// `MONOTONIC_USEC=` (CLOCK_MONOTONIC now) goes in the same message: systemd
/// 253 and later require it with `RELOADING=1` under `Type=notify-reload`
/// to match the notification to the reload it asked for; older versions
/// (Debian 12 has 252) ignore the field.
pub fn reloading() -> io::Result<()> {
    if !enabled() {
        return Ok(());
    }
    let now = NotifyState::monotonic_usec_now()?;
    notify(&[
        NotifyState::Reloading,
        now,
        NotifyState::Status("reloading the configuration"),
    ])
}

/// The daemon is stopping (`STOPPING=1`): draining, then closing sessions.
pub fn stopping() -> io::Result<()> {
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping")])
}

/// Ask for more time than `TimeoutStartSec=`/`TimeoutStopSec=` for the
/// current start-up or stop (`EXTEND_TIMEOUT_USEC=`, systemd ≥ 236): the
/// deadline becomes "now + `by`" if that is later. Send it again before it
/// runs out to extend further.
pub fn extend_timeout(by: Duration) -> io::Result<()> {
    let usec = u32::try_from(by.as_micros()).unwrap_or(u32::MAX);
    notify(&[NotifyState::ExtendTimeoutUsec(usec)])
}

/// How often to call [`watchdog_ping`]: half of `WatchdogSec=`, as
/// sd_watchdog_enabled(3) recommends; `None` when the unit has no watchdog,
/// `WATCHDOG_USEC` is 0 or malformed, or `WATCHDOG_PID` names another
/// process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var(WATCHDOG_USEC).ok();
    let pid = std::env::var(WATCHDOG_PID).ok();
    parse_watchdog(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// The watchdog arm of the main loop: [`tick`](Watchdog::tick) completes
/// every [`watchdog_interval`] (never, when there is no watchdog), and
/// [`ping`](Watchdog::ping) feeds it, logging a failure once rather than at
/// every tick.
#[derive(Debug)]
pub struct Watchdog {
    timer: Option<tokio::time::Interval>,
    failing: bool,
}

impl Watchdog {
    /// From `WATCHDOG_USEC`/`WATCHDOG_PID`. Must be called inside the
    /// tokio runtime (it creates a timer).
    pub fn from_env() -> Watchdog {
        Watchdog::every(watchdog_interval())
    }

    /// A watchdog fed every `period` (`None`: never).
    pub fn every(period: Option<Duration>) -> Watchdog {
        let timer = period.map(|p| {
            let mut t = tokio::time::interval(p);
            // Ticks missed while the loop was busy are skipped, not
            // burst: one ping says "alive".
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            t
        });
        Watchdog {
            timer,
            failing: false,
        }
    }

    /// How often it pings, if at all.
    pub fn period(&self) -> Option<Duration> {
        self.timer.as_ref().map(tokio::time::Interval::period)
    }

    /// Completes when the next ping is due (the first one at once); pending
    /// forever without a watchdog. Cancel-safe, for `tokio::select!`.
    pub async fn tick(&mut self) {
        match &mut self.timer {
            Some(t) => {
                t.tick().await;
            }
            None => std::future::pending().await,
        }
    }

    /// Send `WATCHDOG=1`.
    pub fn ping(&mut self) {
        match watchdog_ping() {
            Ok(()) => {
                if self.failing {
                    tracing::info!("systemd watchdog: pings get through again");
                }
                self.failing = false;
            }
            Err(e) => {
                if !self.failing {
                    tracing::warn!(error = %e, "systemd watchdog: cannot ping (systemd will restart anyvip if this goes on)");
                }
                self.failing = true;
            }
        }
    }
}

/// Feed the watchdog (`WATCHDOG=1`). Only from the main event loop (see
/// the module documentation).
pub fn watchdog_ping() -> io::Result<()> {
    notify(&[NotifyState::Watchdog])
}

/// sd_watchdog_enabled(3): the watchdog applies to us if `WATCHDOG_USEC` is
/// a positive number and `WATCHDOG_PID` is unset or our pid.
fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != me {
            return None;
        }
    }
    Some(Duration::from_micros(usec) / 2)
}

/// A `STATUS=` value: no line breaks or other control characters (they
/// would end the field, or smuggle in another one such as `READY=1`), at
/// most [`MAX_STATUS_LEN`] bytes.
fn one_line(text: &str) -> String {
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.len() > MAX_STATUS_LEN {
        let mut end = MAX_STATUS_LEN - '…'.len_utf8();
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push('…');
    }
    line
}

fn notify(states: &[NotifyState]) -> io::Result<()> {
    match std::env::var_os(NOTIFY_SOCKET) {
        Some(socket) if !socket.is_empty() => send_to(&socket, states),
        _ => Ok(()),
    }
}

/// One datagram, one `KEY=VALUE` line per state, to `socket`: a file name,
/// or `@name` for the abstract namespace.
fn send_to(socket: &OsStr, states: &[NotifyState]) -> io::Result<()> {
    let mut message = String::new();
    for s in states {
        message.push_str(&s.to_string());
        message.push('\n');
    }
    let address = match socket.as_bytes().strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name)?
        }
        None => SocketAddr::from_pathname(Path::new(socket))?,
    };
    let sender = UnixDatagram::unbound()?;
    let sent = sender.send_to_addr(message.as_bytes(), &address)?;
    if sent != message.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("notify: sent {sent} of {} bytes", message.len()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: u32 = 4242;

    #[test]
    fn watchdog_is_half_the_period_and_only_ours() {
        let two_s = Some(Duration::from_secs(1));
        assert_eq!(parse_watchdog(Some("2000000"), None, ME), two_s);
        assert_eq!(parse_watchdog(Some("2000000"), Some("4242"), ME), two_s);
        assert_eq!(parse_watchdog(Some(" 2000000\n"), None, ME), two_s);
        assert_eq!(parse_watchdog(Some("2000000"), Some("1"), ME), None);
        assert_eq!(parse_watchdog(Some("2000000"), Some("me"), ME), None);
        assert_eq!(parse_watchdog(Some("0"), None, ME), None);
        assert_eq!(parse_watchdog(Some("-5"), None, ME), None);
        assert_eq!(parse_watchdog(Some("5s"), None, ME), None);
        assert_eq!(parse_watchdog(None, Some("4242"), ME), None);
        // The smallest period still gives a timer that is not zero.
        assert_eq!(
            parse_watchdog(Some("1"), None, ME),
            Some(Duration::from_nanos(500))
        );
    }

    #[tokio::test]
    async fn watchdog_ticks_every_period_or_never() {
        let period = Duration::from_millis(10);
        let mut w = Watchdog::every(Some(period));
        assert_eq!(w.period(), Some(period));
        let three = async {
            for _ in 0..3 {
                w.tick().await;
            }
        };
        let start = tokio::time::Instant::now();
        assert!(tokio::time::timeout(Duration::from_secs(10), three)
            .await
            .is_ok());
        // The first tick is immediate, the next two a period apart each.
        assert!(start.elapsed() >= 2 * period);

        let mut off = Watchdog::every(None);
        assert_eq!(off.period(), None);
        let never = tokio::time::timeout(Duration::from_millis(100), off.tick()).await;
        assert!(never.is_err());
    }

    #[test]
    fn status_is_one_bounded_line() {
        assert_eq!(one_line("2/2 peers up"), "2/2 peers up");
        assert_eq!(one_line("bad\nREADY=1\r\tx"), "bad READY=1  x");
        let long = "é".repeat(MAX_STATUS_LEN);
        let cut = one_line(&long);
        assert!(cut.len() <= MAX_STATUS_LEN, "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert!(cut.starts_with("éé"));
    }

    fn receive(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 1024];
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let n = socket.recv(&mut buf).expect("a datagram");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn sends_one_datagram_to_a_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind");
        send_to(
            path.as_os_str(),
            &[NotifyState::Ready, NotifyState::Status("up")],
        )
        .expect("send");
        assert_eq!(receive(&socket), "READY=1\nSTATUS=up\n");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("anyvip-notify-test-{}", std::process::id());
        let address = SocketAddr::from_abstract_name(name.as_bytes()).expect("address");
        let socket = UnixDatagram::bind_addr(&address).expect("bind");
        send_to(OsStr::new(&format!("@{name}")), &[NotifyState::Watchdog]).expect("send");
        assert_eq!(receive(&socket), "WATCHDOG=1\n");
    }

    #[test]
    fn a_missing_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("nobody-listens");
        assert!(send_to(path.as_os_str(), &[NotifyState::Ready]).is_err());
    }
}
