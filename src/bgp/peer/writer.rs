//! The sending half of one connection: a bounded queue of encoded messages
//! and a task that writes them out in order.
//!
//! The peer task never waits on the socket: it puts a message in the queue
//! with [`Writer::send`], which either takes it at once or says the queue
//! is full. A peer that stops reading therefore fills its own queue and
//! nothing else (design invariant 6): the peer task keeps reading, running
//! timers and reacting to health changes, and the caller resets that one
//! session with Cease / Out of Resources (RFC 4486 §4, subcode 8).
//!
//! KEEPALIVEs go through the same queue, behind any UPDATEs: a peer that
//! keeps up gets them at once, and any message restarts its hold timer
//! (RFC 4271 §4.4, "KEEPALIVE or UPDATE"), so a queued UPDATE is as good
//! as a KEEPALIVE; to a peer that does not read, a KEEPALIVE stuck behind
//! the queue changes nothing.
//!
//! The task ends in one of three ways:
//! - [`Writer::close`]: what is queued is written, then a FIN — within
//!   [`CLOSE_FLUSH`], after which the connection is reset;
//! - [`Writer::reset`]: the queue is thrown away; the message being written
//!   is finished (so the next byte starts a message) and a last message
//!   (the NOTIFICATION) follows, as far as [`RESET_GRACE`] allows; then the
//!   connection is reset if that did not complete;
//! - a write error, or no write progress for the stall limit: reported to
//!   the peer task as a [`Failure`], and the connection is reset.
//!
//! "Reset" is an abortive close (SO_LINGER 0: RST, the unsent bytes in the
//! kernel are dropped), so a connection to a peer that does not read never
//! lingers in the kernel either.

use std::time::Duration;

use anyvip_fsm::ConnectionId;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long a closing connection may take to flush what is queued (the
/// NOTIFICATION of a ManualStop, say). Below the daemon's 3 s grace for a
/// stopping peer, which waits for its writers.
pub const CLOSE_FLUSH: Duration = Duration::from_secs(2);

/// How long a connection reset for a full queue gets to finish the message
/// on the wire and send its Cease. A peer that is only slow gets the
/// NOTIFICATION; one that stopped reading gets an RST this much later.
pub const RESET_GRACE: Duration = Duration::from_secs(1);

/// The queue is full: the peer has not read what we sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// A connection the writer gave up on; the peer task treats it as
/// TcpConnectionFails.
#[derive(Debug)]
pub struct Failure {
    pub connection: ConnectionId,
    pub error: String,
}

/// How the peer task ends a writer.
#[derive(Debug)]
enum Finish {
    Flush,
    Reset { last: Option<Bytes> },
}

/// The peer task's handle on one connection's writer. Dropping it without
/// [`close`](Writer::close) or [`reset`](Writer::reset) resets the
/// connection at once (the connection has failed: nothing more to say).
pub struct Writer {
    queue: mpsc::Sender<Bytes>,
    finish: oneshot::Sender<Finish>,
    task: JoinHandle<()>,
}

impl Writer {
    /// Start writing to `half`. `capacity` is the queue length in messages
    /// (see the peer task for how it is sized); `stall` is how long a write
    /// may make no progress before the connection is declared dead.
    pub fn spawn(
        connection: ConnectionId,
        half: OwnedWriteHalf,
        capacity: usize,
        stall: Duration,
        failures: mpsc::UnboundedSender<Failure>,
    ) -> Writer {
        let (queue, queued) = mpsc::channel(capacity.max(1));
        let (finish, finishing) = oneshot::channel();
        let task = WriterTask {
            connection,
            half,
            queued,
            finishing,
            stall,
            current: None,
            failures,
        };
        Writer {
            queue,
            finish,
            task: tokio::spawn(task.run()),
        }
    }

    /// Queue one encoded message. A writer that has already failed takes
    /// it and drops it: its [`Failure`] is on the way to the peer task.
    pub fn send(&self, message: Bytes) -> Result<(), Full> {
        match self.queue.try_send(message) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(Full),
        }
    }

    /// Write what is queued, then close; the task ends within
    /// [`CLOSE_FLUSH`].
    pub fn close(self) -> JoinHandle<()> {
        let _ = self.finish.send(Finish::Flush);
        self.task
    }

    /// Drop what is queued, send `last` if the peer reads within
    /// [`RESET_GRACE`], and close; the task ends within that grace.
    pub fn reset(self, last: Option<Bytes>) -> JoinHandle<()> {
        let _ = self.finish.send(Finish::Reset { last });
        self.task
    }
}

/// Why the writing loop stopped.
enum Stopped {
    Finish(Finish),
    /// The handle was dropped: the connection is gone.
    Dropped,
    Failed(String),
}

struct WriterTask {
    connection: ConnectionId,
    half: OwnedWriteHalf,
    queued: mpsc::Receiver<Bytes>,
    finishing: oneshot::Receiver<Finish>,
    stall: Duration,
    /// The message being written and how much of it is out. Kept here
    /// rather than inside `write_all`, whose progress is lost when it is
    /// interrupted: a reset must finish this message before its
    /// NOTIFICATION, or the peer would read garbage.
    current: Option<(Bytes, usize)>,
    failures: mpsc::UnboundedSender<Failure>,
}

impl WriterTask {
    async fn run(mut self) {
        let stopped = self.pump().await;
        let clean = match stopped {
            Stopped::Failed(error) => {
                tracing::debug!(connection = %self.connection, %error, "write failed");
                let _ = self.failures.send(Failure {
                    connection: self.connection,
                    error,
                });
                false
            }
            Stopped::Dropped => false,
            Stopped::Finish(Finish::Flush) => {
                let deadline = Instant::now() + CLOSE_FLUSH;
                tokio::time::timeout_at(deadline, self.flush_queue())
                    .await
                    .is_ok_and(|r| r.is_ok())
            }
            Stopped::Finish(Finish::Reset { last }) => {
                self.queued.close();
                let deadline = Instant::now() + RESET_GRACE;
                tokio::time::timeout_at(deadline, self.finish_with(last))
                    .await
                    .is_ok_and(|r| r.is_ok())
            }
        };
        if !clean {
            abort(&self.half);
        }
    }

    /// Write queued messages in order until told to finish or a write
    /// fails or stalls.
    async fn pump(&mut self) -> Stopped {
        loop {
            let Some((message, done)) = &self.current else {
                tokio::select! {
                    biased;
                    finish = &mut self.finishing => return finish.map_or(Stopped::Dropped, Stopped::Finish),
                    next = self.queued.recv() => match next {
                        Some(message) => self.current = Some((message, 0)),
                        None => return Stopped::Dropped,
                    },
                }
                continue;
            };
            let rest = message.slice(*done..);
            // Cancelling `write` loses nothing: a TCP write either copies
            // bytes into the kernel and returns, or copies none.
            let written = tokio::select! {
                biased;
                finish = &mut self.finishing => return finish.map_or(Stopped::Dropped, Stopped::Finish),
                written = tokio::time::timeout(self.stall, self.half.write(&rest)) => written,
            };
            match written {
                Err(_) => {
                    return Stopped::Failed(format!(
                        "nothing could be written for {:?}: peer not reading",
                        self.stall
                    ))
                }
                Ok(Err(e)) => return Stopped::Failed(format!("write: {e}")),
                Ok(Ok(0)) => return Stopped::Failed("write: connection closed".into()),
                Ok(Ok(n)) => self.advance(n),
            }
        }
    }

    fn advance(&mut self, n: usize) {
        if let Some((message, done)) = &mut self.current {
            *done += n;
            if *done >= message.len() {
                self.current = None;
            }
        }
    }

    /// The rest of the current message.
    async fn finish_current(&mut self) -> std::io::Result<()> {
        if let Some((message, done)) = self.current.take() {
            self.half
                .write_all(message.get(done..).unwrap_or_default())
                .await?;
        }
        Ok(())
    }

    /// Everything queued (the handle dropped its sender, so the queue
    /// ends), then FIN.
    async fn flush_queue(&mut self) -> std::io::Result<()> {
        self.finish_current().await?;
        while let Some(message) = self.queued.recv().await {
            self.half.write_all(&message).await?;
        }
        self.half.shutdown().await
    }

    async fn finish_with(&mut self, last: Option<Bytes>) -> std::io::Result<()> {
        self.finish_current().await?;
        if let Some(last) = last {
            self.half.write_all(&last).await?;
        }
        self.half.shutdown().await
    }
}

/// Close with RST: SO_LINGER 0 drops what the kernel still holds for a
/// peer that does not read, instead of keeping it until the kernel gives
/// up. Takes effect when the socket closes (both halves dropped).
fn abort(half: &OwnedWriteHalf) {
    let stream: &tokio::net::TcpStream = half.as_ref();
    if let Err(e) = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO)) {
        tracing::debug!(error = %e, "cannot set SO_LINGER 0; the connection closes normally");
    }
}

#[cfg(test)]
mod tests;
