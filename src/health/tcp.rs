//! `tcp` checks: a TCP connection is established before the deadline. The
//! connection is closed at once (no bytes are sent). A name is resolved on
//! tokio's blocking pool, off the event loop.
//!
//! Against kube-apiserver prefer `https`: a bare connect only proves the
//! listener exists, and the apiserver logs each one as a TLS handshake
//! error.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::Outcome;

pub async fn run(target: &str, deadline: Instant, timeout: Duration) -> Outcome {
    match tokio::time::timeout_at(deadline, TcpStream::connect(target)).await {
        Ok(Ok(_stream)) => Outcome::pass("connected"),
        Ok(Err(e)) => Outcome::fail(format!("connect: {e}")),
        Err(_) => Outcome::fail(format!(
            "timed out after {} (connect)",
            humantime::format_duration(timeout)
        )),
    }
}
