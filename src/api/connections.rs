//! Who gets served when many clients connect: the admission rules the
//! control socket and the metrics endpoint share.
//!
//! A fixed handful of slots that idle connections hold until their header
//! timeout lets anyone who leaks connections (a monitoring script, a stuck
//! `socat`) lock the operator out exactly when they need `anyvip status`.
//! So instead:
//!
//! - A client that has not sent its request headers within a short
//!   timeout is dropped (hyper's `header_read_timeout`), and no connection
//!   lives longer than its server's lifetime limit.
//! - The number of open connections is capped generously, so clients can
//!   never use up the file descriptors the daemon needs for its sessions
//!   and checks (the caps of both servers together stay far below the
//!   usual soft limit of 1024).
//! - At the cap, the *oldest idle* connection (not being answered right
//!   now: waiting for its request, or for the client to read its answer)
//!   is closed to make room, so the newest client, the one about to send
//!   its request, is served at once.
//! - Only when every open connection is being answered (and each answer
//!   is bounded) does the next one wait, for the first to finish.
//! - When accept(2) fails for want of file descriptors, the oldest idle
//!   connection is closed too, after a short pause (the error is logged
//!   once per episode, not at every retry).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::sync::{oneshot, Notify};

/// What one server allows.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// The server's name in logs ("control API", "metrics").
    pub name: &'static str,
    /// Open connections at most; at the cap the oldest idle one is closed.
    pub max_connections: usize,
    /// A client that has not sent its request headers by then is dropped.
    pub header_read_timeout: Duration,
    /// No connection lives longer, whatever it is doing.
    pub lifetime: Duration,
    /// Serve more than one request per connection.
    pub keep_alive: bool,
}

/// After accept(2) failed: a pause before the next try, so a persistent
/// error (no file descriptors left) does not spin the daemon's one thread.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The open connections of one server, oldest first.
pub(super) struct Admission {
    limits: Limits,
    shared: Arc<Shared>,
    /// Whether "at the cap" / "out of file descriptors" was logged in the
    /// current episode.
    warned_full: bool,
    warned_accept: bool,
}

struct Shared {
    open: Mutex<Open>,
    /// Signalled whenever a connection closes or stops being busy.
    room: Notify,
}

#[derive(Default)]
struct Open {
    /// By connection number, which grows: the first entry is the oldest.
    by_age: BTreeMap<u64, Entry>,
    next: u64,
}

struct Entry {
    /// Inside the request handler (the only time it must not be closed).
    busy: bool,
    /// Closes the connection (its task selects on the other end).
    close: Option<oneshot::Sender<()>>,
}

impl Shared {
    fn open(&self) -> MutexGuard<'_, Open> {
        // Nothing panics while holding it; if it ever did, the map is
        // still consistent (each change is one insert or remove).
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Open {
    /// Close the oldest connection that is not being answered; false if
    /// every one is busy.
    fn close_oldest_idle(&mut self) -> bool {
        let Some(id) = self.by_age.iter().find(|(_, e)| !e.busy).map(|(id, _)| *id) else {
            return false;
        };
        if let Some(mut entry) = self.by_age.remove(&id) {
            if let Some(close) = entry.close.take() {
                // Its task may be ending by itself; then there is nothing to close.
                let _ = close.send(());
            }
        }
        true
    }
}

impl Admission {
    pub fn new(limits: Limits) -> Admission {
        Admission {
            limits,
            shared: Arc::new(Shared {
                open: Mutex::new(Open::default()),
                room: Notify::new(),
            }),
            warned_full: false,
            warned_accept: false,
        }
    }

    /// Open connections now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shared.open().by_age.len()
    }

    /// A slot for a connection just accepted: at once if below the cap or
    /// an idle connection can be closed for it, else when one finishes.
    pub async fn admit(&mut self) -> Slot {
        self.warned_accept = false;
        loop {
            // A closing connection stores a permit, so a wakeup between
            // the check and the wait is not lost.
            let room = self.shared.room.notified();
            {
                let mut open = self.shared.open();
                let count = open.by_age.len();
                if count < self.limits.max_connections / 2 {
                    self.warned_full = false;
                }
                let admitted = count < self.limits.max_connections || {
                    if !self.warned_full {
                        self.warned_full = true;
                        tracing::warn!(
                            connections = count,
                            "{}: at its connection limit; closing the oldest idle connections \
                             to serve new ones (is a client leaking connections?)",
                            self.limits.name
                        );
                    }
                    open.close_oldest_idle()
                };
                if admitted {
                    let id = open.next;
                    open.next += 1;
                    let (close, closed) = oneshot::channel();
                    open.by_age.insert(
                        id,
                        Entry {
                            busy: false,
                            close: Some(close),
                        },
                    );
                    return Slot {
                        id,
                        limits: self.limits,
                        shared: self.shared.clone(),
                        closed,
                    };
                }
            }
            tracing::debug!(
                "{}: every connection is being answered; waiting for one to finish",
                self.limits.name
            );
            room.await;
        }
    }

    /// accept(2) failed: pause, and if file descriptors ran out, close the
    /// oldest idle connection so the next accept can succeed.
    pub async fn accept_failed(&mut self, error: &io::Error) {
        let out_of_fds = matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
        if out_of_fds {
            self.shared.open().close_oldest_idle();
        }
        if !self.warned_accept {
            self.warned_accept = true;
            tracing::warn!(error = %error, "{}: accept failed", self.limits.name);
        } else {
            tracing::debug!(error = %error, "{}: accept failed again", self.limits.name);
        }
        tokio::time::sleep(ACCEPT_RETRY).await;
    }
}

/// One admitted connection. Serving it (or dropping it) gives the slot back.
pub(super) struct Slot {
    id: u64,
    limits: Limits,
    shared: Arc<Shared>,
    closed: oneshot::Receiver<()>,
}

impl Slot {
    /// Serve HTTP/1.1 on `io` with `handler` until the client is done, it
    /// times out, or the connection is closed to make room.
    pub async fn serve<I, H, F>(self, io: I, handler: H)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
        H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
        F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        let Slot {
            id,
            limits,
            shared,
            closed,
        } = self;
        let _release = Release {
            id,
            shared: shared.clone(),
        };
        let service = hyper::service::service_fn(move |req| {
            let busy = Busy::start(id, &shared);
            let answer = handler(req);
            async move {
                let answer = answer.await;
                drop(busy);
                Ok::<_, Infallible>(answer)
            }
        });
        let conn = super::http1(limits.header_read_timeout)
            .keep_alive(limits.keep_alive)
            .serve_connection(io, service);
        tokio::select! {
            served = tokio::time::timeout(limits.lifetime, conn) => match served {
                Ok(Err(e)) => tracing::debug!(error = %e, "{}: connection failed", limits.name),
                Err(_) => tracing::debug!("{}: connection timed out", limits.name),
                Ok(Ok(())) => {}
            },
            _ = closed => {
                tracing::debug!("{}: closed an idle connection to make room", limits.name);
            }
        }
    }
}

/// Gives the slot back when the connection's task ends.
struct Release {
    id: u64,
    shared: Arc<Shared>,
}

impl Drop for Release {
    fn drop(&mut self) {
        self.shared.open().by_age.remove(&self.id);
        self.shared.room.notify_one();
    }
}

/// Marks a connection busy while its request is being handled.
struct Busy {
    id: u64,
    shared: Arc<Shared>,
}

impl Busy {
    fn start(id: u64, shared: &Arc<Shared>) -> Busy {
        Busy::mark(id, shared, true);
        Busy {
            id,
            shared: shared.clone(),
        }
    }

    fn mark(id: u64, shared: &Shared, busy: bool) {
        if let Some(e) = shared.open().by_age.get_mut(&id) {
            e.busy = busy;
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        Busy::mark(self.id, &self.shared, false);
        self.shared.room.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixStream;

    const LONG: Duration = Duration::from_secs(3600);
    const WAIT: Duration = Duration::from_secs(10);

    fn limits(max_connections: usize, header_read_timeout: Duration) -> Limits {
        Limits {
            name: "test",
            max_connections,
            header_read_timeout,
            lifetime: LONG,
            keep_alive: false,
        }
    }

    fn ok(_: Request<Incoming>) -> impl Future<Output = Response<Full<Bytes>>> {
        std::future::ready(Response::new(Full::new(Bytes::from_static(b"ok"))))
    }

    /// Admit a connection and serve it with `handler`; the client's end.
    async fn connect<H, F>(admission: &mut Admission, handler: H) -> UnixStream
    where
        H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
        F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        let (client, server) = UnixStream::pair().unwrap();
        let slot = admission.admit().await;
        tokio::spawn(slot.serve(TokioIo::new(server), handler));
        client
    }

    /// Send a request and read the whole answer (the server closes).
    async fn get(client: &mut UnixStream) -> String {
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .unwrap();
        read_to_end(client).await
    }

    async fn read_to_end(client: &mut UnixStream) -> String {
        let mut answer = String::new();
        tokio::time::timeout(WAIT, client.read_to_string(&mut answer))
            .await
            .expect("the server closes the connection")
            .unwrap();
        answer
    }

    fn still_open(client: &UnixStream) -> bool {
        let mut byte = [0u8; 1];
        matches!(client.try_read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    #[tokio::test]
    async fn at_the_cap_the_oldest_idle_connection_makes_room_for_a_new_one() {
        let mut admission = Admission::new(limits(3, LONG));
        let mut idle = Vec::new();
        for _ in 0..3 {
            idle.push(connect(&mut admission, ok).await);
        }
        let mut newest = connect(&mut admission, ok).await;
        assert!(get(&mut newest).await.starts_with("HTTP/1.1 200"));
        // The oldest was closed for it; the others were left alone.
        assert_eq!(read_to_end(&mut idle[0]).await, "");
        assert!(still_open(&idle[1]) && still_open(&idle[2]));
        assert_eq!(admission.len(), 2);
        // Many more than the cap: each is served, never more than 3 are open.
        for _ in 0..20 {
            let mut c = connect(&mut admission, ok).await;
            assert!(admission.len() <= 3);
            assert!(get(&mut c).await.starts_with("HTTP/1.1 200"));
        }
    }

    #[tokio::test]
    async fn a_connection_being_answered_is_never_closed_and_the_next_one_waits() {
        let mut admission = Admission::new(limits(2, LONG));
        let gate = Arc::new(Notify::new());
        let (entered, mut inside) = tokio::sync::mpsc::unbounded_channel();
        let slow = {
            let gate = gate.clone();
            move |_: Request<Incoming>| {
                let (gate, entered) = (gate.clone(), entered.clone());
                async move {
                    let _ = entered.send(());
                    gate.notified().await;
                    Response::new(Full::new(Bytes::from_static(b"late")))
                }
            }
        };
        let mut busy = Vec::new();
        for _ in 0..2 {
            let mut c = connect(&mut admission, slow.clone()).await;
            c.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
                .await
                .unwrap();
            busy.push(c);
        }
        for _ in 0..2 {
            tokio::time::timeout(WAIT, inside.recv())
                .await
                .expect("both requests reach the handler");
        }
        // Both are being answered: a third connection is not admitted (an
        // idle one would have been closed for it at once)...
        let third = tokio::time::timeout(Duration::from_millis(200), admission.admit()).await;
        assert!(third.is_err(), "admitted while every connection was busy");
        // ...both answers arrive whole...
        gate.notify_waiters();
        for c in &mut busy {
            let answer = read_to_end(c).await;
            assert!(
                answer.starts_with("HTTP/1.1 200") && answer.ends_with("late"),
                "{answer}"
            );
        }
        // ...and then there is room.
        let slot = tokio::time::timeout(WAIT, admission.admit())
            .await
            .expect("admitted once the answers are done");
        let (mut client, server) = UnixStream::pair().unwrap();
        tokio::spawn(slot.serve(TokioIo::new(server), ok));
        assert!(get(&mut client).await.starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn a_client_that_sends_nothing_is_dropped_after_the_header_timeout() {
        let mut admission = Admission::new(limits(8, Duration::from_millis(100)));
        let mut silent = connect(&mut admission, ok).await;
        assert_eq!(read_to_end(&mut silent).await, "");
        // Its slot is given back.
        tokio::time::timeout(WAIT, async {
            while admission.len() > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the slot is released");
    }
}
