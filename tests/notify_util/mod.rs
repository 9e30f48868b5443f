//! A stand-in for systemd's notification socket: [`NotifySocket`] binds a
//! unix datagram socket (in a fresh temporary directory, or in the abstract
//! namespace), hands its address to a child process as `NOTIFY_SOCKET`, and
//! collects what the child sends, with the sender's pid (SO_PASSCRED, as
//! systemd checks `NotifyAccess=main`).
//!
//! ```ignore
//! mod notify_util;
//! use notify_util::NotifySocket;
//!
//! let socket = NotifySocket::new();
//! let mut cmd = Command::new(env!("CARGO_BIN_EXE_anyvip"));
//! socket.configure(&mut cmd, Some(Duration::from_secs(2)));
//! let child = cmd.args(["run", "-c", &config]).spawn()?;
//! let ready = socket.wait_for("READY=1", WAIT, |n| n.has("READY", "1"));
//! assert_eq!(ready.pid, Some(child.id()));
//! socket.wait_for("a watchdog ping", WAIT, |n| n.has("WATCHDOG", "1"));
//! // ... SIGTERM ...
//! socket.wait_for("STOPPING=1", WAIT, |n| n.has("STOPPING", "1"));
//! ```

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// One datagram: `KEY=VALUE` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The sending process, from its kernel-checked credentials.
    pub pid: Option<u32>,
    pub raw: String,
    pub fields: Vec<(String, String)>,
}

impl Notification {
    fn parse(pid: Option<u32>, raw: String) -> Notification {
        let fields = raw
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| match l.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (l.to_string(), String::new()),
            })
            .collect();
        Notification { pid, raw, fields }
    }

    /// The value of `key` (the last one, if repeated).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, key: &str, value: &str) -> bool {
        self.get(key) == Some(value)
    }
}

pub struct NotifySocket {
    socket: UnixDatagram,
    /// The value for `NOTIFY_SOCKET`: a path, or `@name`.
    address: OsString,
    /// Everything received so far, for assertions and failure messages.
    seen: RefCell<Vec<Notification>>,
    _dir: Option<tempfile::TempDir>,
}

impl NotifySocket {
    /// A socket at `<fresh temporary directory>/notify`.
    pub fn new() -> NotifySocket {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        NotifySocket::with(socket, path.into_os_string(), Some(dir))
    }

    /// A socket in the abstract namespace (`NOTIFY_SOCKET=@name`), unique to
    /// this process and call.
    pub fn new_abstract() -> NotifySocket {
        use std::os::linux::net::SocketAddrExt;
        let name = format!(
            "anyvip-test-notify-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let address = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract address");
        let socket = UnixDatagram::bind_addr(&address).expect("bind the notify socket");
        NotifySocket::with(socket, OsString::from(format!("@{name}")), None)
    }

    fn with(socket: UnixDatagram, address: OsString, dir: Option<tempfile::TempDir>) -> Self {
        let on: libc::c_int = 1;
        // SAFETY: a valid fd and a pointer to a c_int of the size given.
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PASSCRED,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "SO_PASSCRED: {}", io::Error::last_os_error());
        NotifySocket {
            socket,
            address,
            seen: RefCell::new(Vec::new()),
            _dir: dir,
        }
    }

    /// The value to put in `NOTIFY_SOCKET`.
    pub fn address(&self) -> &OsStr {
        &self.address
    }

    /// Point `cmd` at this socket, with a watchdog of `watchdog` (as
    /// `WatchdogSec=` would; `WATCHDOG_PID` stays unset, which
    /// sd_watchdog_enabled(3) reads as "this process"), or none.
    pub fn configure<'a>(
        &self,
        cmd: &'a mut Command,
        watchdog: Option<Duration>,
    ) -> &'a mut Command {
        cmd.env("NOTIFY_SOCKET", &self.address)
            .env_remove("WATCHDOG_PID");
        match watchdog {
            Some(w) => cmd.env("WATCHDOG_USEC", w.as_micros().to_string()),
            None => cmd.env_remove("WATCHDOG_USEC"),
        }
    }

    /// The next datagram, or `None` after `timeout` without one.
    pub fn recv(&self, timeout: Duration) -> Option<Notification> {
        self.socket
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .expect("set the timeout");
        match self.recv_one() {
            Ok(n) => {
                self.seen.borrow_mut().push(n.clone());
                Some(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("receiving on the notify socket: {e}"),
        }
    }

    /// Receive until a datagram satisfies `want` and return it; panic after
    /// `timeout`, listing everything received, naming `what` was awaited.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        want: impl Fn(&Notification) -> bool,
    ) -> Notification {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "no {what} within {timeout:?}; received: {:#?}",
                    self.seen.borrow()
                );
            }
            if let Some(n) = self.recv(left) {
                if want(&n) {
                    return n;
                }
            }
        }
    }

    /// Whatever arrives until `quiet` passes without a datagram.
    pub fn collect(&self, quiet: Duration) -> Vec<Notification> {
        std::iter::from_fn(|| self.recv(quiet)).collect()
    }

    /// Every datagram received so far, in order.
    pub fn seen(&self) -> Vec<Notification> {
        self.seen.borrow().clone()
    }

    fn recv_one(&self) -> io::Result<Notification> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: CMSG_SPACE is a pure size computation.
        let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::ucred>() as u32) } as usize;
        // u64 words: the control buffer must be aligned for cmsghdr.
        let mut control = vec![0u64; space.div_ceil(8)];
        // SAFETY: msghdr is plain data; all-zero is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = control.len() * 8;
        // SAFETY: msg points at live buffers of the lengths it states.
        let n = unsafe { libc::recvmsg(self.socket.as_raw_fd(), &mut msg, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut pid = None;
        // SAFETY: walking the control messages recvmsg filled in, within
        // msg_controllen, with the libc macros made for it.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET
                    && (*cmsg).cmsg_type == libc::SCM_CREDENTIALS
                {
                    let cred: libc::ucred =
                        std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::ucred>());
                    pid = u32::try_from(cred.pid).ok();
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        buf.truncate(n as usize);
        Ok(Notification::parse(
            pid,
            String::from_utf8_lossy(&buf).into_owned(),
        ))
    }
}

impl Default for NotifySocket {
    fn default() -> Self {
        NotifySocket::new()
    }
}
