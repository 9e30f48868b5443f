//! The operator surface over the network stack: the control and status
//! API on a unix socket ([`server`]), the Prometheus endpoint
//! ([`metrics`]), and the CLI's client of the API ([`client`], [`table`]).
//!
//! Both servers run on the daemon's single event loop and never touch its
//! state: they ask the main loop through [`Control`] (a status request is
//! a snapshot; drain, resume and reload are carried out by the loop).

pub mod bfd_status;
pub mod client;
mod connections;
pub mod json;
pub mod metrics;
pub mod server;
pub mod table;
#[cfg(test)]
mod testdata;

use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;

use crate::config::Api;
use crate::control::Control;

pub use server::{parse_vip, ControlSocket};

/// A client that has not sent its request headers by `header_read_timeout`
/// is dropped.
fn http1(header_read_timeout: Duration) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    b
}

/// The servers, running. Dropping it stops them and removes the socket.
pub struct Running {
    pub socket: ControlSocket,
    metrics: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(t) = self.metrics.take() {
            t.abort();
        }
    }
}

/// Bind the control socket and (if configured) the metrics endpoint, and
/// serve them on the current runtime. Binding errors come back at once,
/// so `anyvip run` fails at start rather than running without them.
pub async fn start(api: &Api, control: Control) -> std::io::Result<Running> {
    let socket = ControlSocket::bind(&api.socket, api.socket_mode, control.clone()).await?;
    let metrics = match api.metrics {
        Some(addr) => {
            let server = metrics::MetricsServer::bind(addr).await?;
            tracing::info!(address = %server.local_addr()?, "metrics listening (GET /metrics)");
            Some(tokio::spawn(server.serve(control)))
        }
        None => None,
    };
    Ok(Running { socket, metrics })
}
