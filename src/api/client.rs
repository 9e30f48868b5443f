//! The CLI's side of the control API: one HTTP/1.1 request per connection
//! over the unix socket.

use std::fmt;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{header, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use nix::unistd::{Gid, Group, Uid, User};
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

use super::json;

/// Longer than the daemon ever takes to answer (a reload that closes
/// sessions and waits for withdrawals takes seconds, not minutes).
pub const TIMEOUT: Duration = Duration::from_secs(45);
/// How often to try again while the daemon's listen backlog is full.
const BACKLOG_RETRY: Duration = Duration::from_millis(50);

/// Why a request got no answer it could use.
#[derive(Debug)]
pub enum ClientError {
    /// Nothing listens on the socket (no such file, or connection
    /// refused): the daemon is not running, or uses another socket.
    NotRunning { socket: PathBuf, error: String },
    /// The socket (or a directory on its path) is not ours to use; `access`
    /// says who may (its mode, owner and group).
    Denied { socket: PathBuf, access: String },
    /// Connected, or tried to, and the exchange failed: the connection
    /// broke or the daemon did not answer in time.
    Unreachable { socket: PathBuf, error: String },
    /// The daemon answered with an error (the message is its reason).
    Refused { status: StatusCode, message: String },
    /// The daemon answered something this CLI does not understand.
    BadAnswer(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::NotRunning { socket, error } => write!(
                f,
                "cannot reach the daemon (is anyvip running? socket {}: {error})",
                socket.display()
            ),
            ClientError::Denied { socket, access } => {
                write!(f, "permission denied: {} ({access})", socket.display())
            }
            ClientError::Unreachable { socket, error } => write!(
                f,
                "cannot reach the daemon on socket {}: {error}",
                socket.display()
            ),
            ClientError::Refused { message, .. } => f.write_str(message),
            ClientError::BadAnswer(e) => write!(f, "unexpected answer from the daemon: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Connect, waiting while the daemon's listen backlog is full (a
/// non-blocking connect(2) to a unix socket says EAGAIN then, rather
/// than waiting itself); the caller's timeout bounds the wait.
async fn connect(socket: &Path) -> Result<UnixStream, ClientError> {
    loop {
        match UnixStream::connect(socket).await {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tokio::time::sleep(BACKLOG_RETRY).await;
            }
            Err(e) => return Err(connect_error(socket, &e)),
        }
    }
}

/// Why connect(2) to `socket` failed, for the operator.
fn connect_error(socket: &Path, error: &io::Error) -> ClientError {
    match error.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => ClientError::NotRunning {
            socket: socket.to_path_buf(),
            error: error.to_string(),
        },
        io::ErrorKind::PermissionDenied => ClientError::Denied {
            socket: socket.to_path_buf(),
            access: access(socket),
        },
        _ => ClientError::Unreachable {
            socket: socket.to_path_buf(),
            error: error.to_string(),
        },
    }
}

/// Who may use the socket: "mode 0660, owner root, group anyvip" as the
/// file says, or why even that cannot be read (a directory on the path
/// this user may not search).
fn access(socket: &Path) -> String {
    match std::fs::metadata(socket) {
        Ok(m) => {
            let owner = User::from_uid(Uid::from_raw(m.uid()))
                .ok()
                .flatten()
                .map_or_else(|| m.uid().to_string(), |u| u.name);
            let group = Group::from_gid(Gid::from_raw(m.gid()))
                .ok()
                .flatten()
                .map_or_else(|| m.gid().to_string(), |g| g.name);
            format!(
                "mode {:04o}, owner {owner}, group {group}",
                m.mode() & 0o7777
            )
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            format!("a directory on its path may not be searched by this user: {e}")
        }
        Err(e) => format!("cannot read its mode: {e}"),
    }
}

pub struct Client {
    socket: PathBuf,
    timeout: Duration,
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>) -> Client {
        Client {
            socket: socket.into(),
            timeout: TIMEOUT,
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub async fn status(&self) -> Result<json::Status, ClientError> {
        self.call(Method::GET, "/v1/status").await
    }

    /// Drain one VIP (a prefix or address) or all.
    pub async fn drain(&self, vip: Option<&str>) -> Result<json::Vips, ClientError> {
        self.call(Method::POST, &with_vip("/v1/drain", vip)).await
    }

    pub async fn resume(&self, vip: Option<&str>) -> Result<json::Vips, ClientError> {
        self.call(Method::POST, &with_vip("/v1/resume", vip)).await
    }

    pub async fn reload(&self) -> Result<json::Reloaded, ClientError> {
        self.call(Method::POST, "/v1/reload").await
    }

    /// The raw answer: status and body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let unreachable = |e: &dyn fmt::Display| ClientError::Unreachable {
            socket: self.socket.clone(),
            error: e.to_string(),
        };
        let exchange = async {
            let stream = connect(&self.socket).await?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| unreachable(&e))?;
            let conn = tokio::spawn(conn);
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header(header::HOST, "anyvip")
                .header(
                    header::USER_AGENT,
                    concat!("anyvip/", env!("CARGO_PKG_VERSION")),
                )
                .header(header::ACCEPT, "application/json")
                .body(Empty::<Bytes>::new())
                .map_err(|e| ClientError::BadAnswer(e.to_string()))?;
            let response = sender
                .send_request(req)
                .await
                .map_err(|e| unreachable(&e))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| unreachable(&e))?
                .to_bytes();
            conn.abort();
            Ok((status, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(unreachable(&format!(
                "no answer within {}s",
                self.timeout.as_secs()
            ))),
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
    ) -> Result<T, ClientError> {
        let (status, body) = self.request(method, path).await?;
        if !status.is_success() {
            let message = serde_json::from_slice::<json::Error>(&body)
                .map(|e| e.error)
                .unwrap_or_else(|_| format!("{status}: {}", String::from_utf8_lossy(&body).trim()));
            return Err(ClientError::Refused { status, message });
        }
        serde_json::from_slice(&body).map_err(|e| ClientError::BadAnswer(e.to_string()))
    }
}

fn with_vip(path: &str, vip: Option<&str>) -> String {
    match vip {
        // A prefix or address has no characters that need escaping but '/'.
        Some(v) => format!("{path}?vip={}", v.replace('/', "%2F")),
        None => path.to_string(),
    }
}
