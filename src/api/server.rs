//! The control and status API: HTTP/1.1 with JSON on a unix socket.
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /v1/status` | 200 [`json::Status`] |
//! | `POST /v1/drain[?vip=PREFIX]` | 200 [`json::Vips`]: the VIPs affected (all without `vip`) |
//! | `POST /v1/resume[?vip=PREFIX]` | 200 [`json::Vips`] |
//! | `POST /v1/reload` | 200 `{"ok": true}`, or 409 with the reason the file was refused (the running configuration stays) |
//!
//! `PREFIX` is a configured VIP prefix (`192.0.2.100/32`) or its address
//! (`192.0.2.100`, `2001:db8::100`); `/` may be sent as `%2F`. Errors are
//! `{"error": "..."}` with 400 (bad prefix or parameter), 404 (unknown
//! endpoint or VIP), 405 (wrong method), 503 (anyvip is stopping).
//!
//! The socket's file mode (and its directory's) is the access control:
//! anyone who can connect can drain. Each drain, resume and reload is
//! logged with the caller's uid and pid. Idle or slow clients cannot keep
//! others out (see [`super::connections`]): a connection that sends no
//! request within 3 s is closed, and at 128 open connections the oldest
//! idle one is closed for each new one.

use std::io;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ipnet::IpNet;
use serde::Serialize;
use tokio::net::{UnixListener, UnixStream};

use super::connections::{Admission, Limits};
use super::json;
use crate::control::{Control, GONE};

/// Who the control socket serves, and for how long (see [`super::connections`]
/// for why idle clients cannot lock anyone out).
const LIMITS: Limits = Limits {
    name: "control API",
    // Operators and scripts: far more than ever connect at once, and with
    // the metrics endpoint's far fewer file descriptors than the daemon has.
    max_connections: 128,
    // The CLI sends its request as soon as it is connected; a local client
    // that has said nothing for this long is not going to.
    header_read_timeout: Duration::from_secs(3),
    // Longer than any request takes: a reload may close sessions (up to a
    // few seconds) and wait for withdrawals to reach every peer.
    lifetime: Duration::from_secs(60),
    // One request per connection: the CLI sends one.
    keep_alive: false,
};

/// How long a stale-socket probe waits for a listener to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The bound control socket. Dropping it stops serving and removes the
/// socket file (if it is still ours).
pub struct ControlSocket {
    path: PathBuf,
    /// (device, inode) of the file we bound, so a socket that a later
    /// instance bound in its place is never removed.
    id: (u64, u64),
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ControlSocket {
    /// Bind `path` with `mode` (creating its directory if needed) and
    /// serve `control` on it. A socket file left by an earlier run is
    /// replaced only if nothing listens on it; any other file is left
    /// alone and is an error.
    pub async fn bind(path: &Path, mode: u32, control: Control) -> io::Result<ControlSocket> {
        let context = |e: io::Error, what: &str| {
            io::Error::new(
                e.kind(),
                format!("control socket {}: {what}: {e}", path.display()),
            )
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                // Traversable by all (the socket's own mode is the access
                // control), whatever the umask (systemd's UMask=0077 would
                // make it 0700 and lock the socket's group out).
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(dir)
                    .and_then(|()| {
                        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
                    })
                    .map_err(|e| context(e, "cannot create its directory"))?;
            }
        }
        remove_stale(path).await?;
        let listener = bind_with_mode(path, mode).map_err(|e| context(e, "cannot listen"))?;
        let meta = std::fs::symlink_metadata(path).map_err(|e| context(e, "cannot stat"))?;
        tracing::info!(socket = %path.display(), mode = %format!("{mode:04o}"), "control API listening");
        let task = tokio::spawn(serve(listener, control));
        Ok(ControlSocket {
            path: path.to_path_buf(),
            id: (meta.dev(), meta.ino()),
            task: Some(task),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if let Ok(m) = std::fs::symlink_metadata(&self.path) {
            if (m.dev(), m.ino()) == self.id {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Remove a socket file nobody listens on; refuse anything else.
async fn remove_stale(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("control socket {}: {e}", path.display()),
            ))
        }
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "control socket {}: the path exists and is not a socket; not removing it",
                path.display()
            ),
        ));
    }
    match tokio::time::timeout(PROBE_TIMEOUT, UnixStream::connect(path)).await {
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(socket = %path.display(), "removing a stale control socket");
            std::fs::remove_file(path)
        }
        Ok(Ok(_)) | Err(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "control socket {}: something is listening on it (another anyvip?)",
                path.display()
            ),
        )),
        Ok(Err(e)) => Err(io::Error::new(
            e.kind(),
            format!(
                "control socket {}: cannot tell whether it is stale: {e}",
                path.display()
            ),
        )),
    }
}

/// Bind with the permission bits in place from the first moment: the
/// umask is narrowed around bind(2) (nothing else creates files yet: this
/// runs before the daemon starts), then the mode is set exactly.
fn bind_with_mode(path: &Path, mode: u32) -> io::Result<UnixListener> {
    // SAFETY: umask(2) cannot fail and only swaps the process's mask.
    let old = unsafe { libc::umask(!mode & 0o777) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    let listener = bound?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(listener)
}

async fn serve(listener: UnixListener, control: Control) {
    let mut admission = Admission::new(LIMITS);
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                admission.accept_failed(&e).await;
                continue;
            }
        };
        let slot = admission.admit().await;
        let caller = match stream.peer_cred() {
            Ok(c) => Caller {
                uid: Some(c.uid()),
                pid: c.pid(),
            },
            Err(_) => Caller::default(),
        };
        let control = control.clone();
        tokio::spawn(slot.serve(TokioIo::new(stream), move |req| {
            let control = control.clone();
            async move { handle(req, &control, caller).await }
        }));
    }
}

/// Who is asking (SO_PEERCRED), for the log.
#[derive(Debug, Clone, Copy, Default)]
struct Caller {
    uid: Option<u32>,
    pid: Option<i32>,
}

type Answer = Response<Full<Bytes>>;

fn answer<T: Serialize>(status: StatusCode, body: &T) -> Answer {
    let mut text = serde_json::to_vec_pretty(body).unwrap_or_else(|_| b"{}".to_vec());
    text.push(b'\n');
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn error(status: StatusCode, message: impl Into<String>) -> Answer {
    answer(
        status,
        &json::Error {
            error: message.into(),
        },
    )
}

fn stopping() -> Answer {
    error(StatusCode::SERVICE_UNAVAILABLE, GONE)
}

async fn handle(req: Request<Incoming>, control: &Control, caller: Caller) -> Answer {
    let (method, path, query) = (
        req.method().clone(),
        req.uri().path().to_string(),
        req.uri().query().map(str::to_string),
    );
    route(&method, &path, query.as_deref(), control, caller).await
}

async fn route(
    method: &Method,
    path: &str,
    query: Option<&str>,
    control: &Control,
    caller: Caller,
) -> Answer {
    let allowed = match path {
        "/v1/status" => "GET",
        "/v1/drain" | "/v1/resume" | "/v1/reload" => "POST",
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                format!(
                "no such endpoint: {path} (GET /v1/status; POST /v1/drain, /v1/resume, /v1/reload)"
            ),
            )
        }
    };
    if method.as_str() != allowed {
        let mut r = error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{path} takes {allowed}, not {method}"),
        );
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allowed));
        return r;
    }
    let vip = match parse_query(path, query) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match path {
        "/v1/status" => match control.status().await {
            Some(s) => answer(StatusCode::OK, &json::Status::new(&s, SystemTime::now())),
            None => stopping(),
        },
        "/v1/drain" | "/v1/resume" => {
            let drain = path == "/v1/drain";
            let what = if drain { "drain" } else { "resume" };
            tracing::info!(
                vip = %vip.map_or("all".to_string(), |p| p.to_string()),
                uid = caller.uid,
                pid = caller.pid,
                "{what} requested over the control API"
            );
            let result = if drain {
                control.drain(vip).await
            } else {
                control.resume(vip).await
            };
            match result {
                Ok(affected) => match control.status().await {
                    Some(s) => {
                        let now = SystemTime::now();
                        let vips = s
                            .vips
                            .iter()
                            .filter(|v| affected.contains(&v.prefix))
                            .map(|v| json::vip(v, &s.checks, now))
                            .collect();
                        answer(StatusCode::OK, &json::Vips { vips })
                    }
                    None => stopping(),
                },
                Err(e) if e == GONE => stopping(),
                // The only other refusal: a prefix that is not a VIP.
                Err(e) if vip.is_some() => error(StatusCode::NOT_FOUND, e),
                Err(e) => error(StatusCode::CONFLICT, e),
            }
        }
        _ => {
            tracing::info!(
                uid = caller.uid,
                pid = caller.pid,
                "reload requested over the control API"
            );
            match control.reload().await {
                Ok(()) => answer(StatusCode::OK, &json::Reloaded { ok: true }),
                Err(e) if e == GONE => stopping(),
                Err(e) => error(StatusCode::CONFLICT, format!("reload refused: {e}")),
            }
        }
    }
}

/// The query: only `vip=PREFIX`, and only on drain and resume.
fn parse_query(path: &str, query: Option<&str>) -> Result<Option<IpNet>, String> {
    let mut vip = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let takes_vip = path == "/v1/drain" || path == "/v1/resume";
        if key != "vip" || !takes_vip {
            return Err(format!("unknown parameter \"{key}\" for {path}"));
        }
        if vip.is_some() {
            return Err("vip given more than once".to_string());
        }
        let value = percent_decode(value).ok_or_else(|| format!("\"{value}\" is badly escaped"))?;
        vip = Some(parse_vip(&value)?);
    }
    Ok(vip)
}

/// A prefix, or an address meaning its host prefix (/32 or /128).
pub fn parse_vip(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!("\"{s}\" is not a VIP prefix or address (e.g. 192.0.2.100/32 or 192.0.2.100)")
        })
}

fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                let hex = std::str::from_utf8(&hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
            }
            b'+' => out.push(b' '),
            _ => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::super::testdata;
    use super::*;
    use http_body_util::BodyExt;

    async fn call(
        control: &Control,
        method: Method,
        target: &str,
    ) -> (StatusCode, serde_json::Value) {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let r = route(&method, path, query, control, Caller::default()).await;
        let status = r.status();
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        let body = r.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&body).expect("a JSON answer"),
        )
    }

    #[tokio::test]
    async fn status_is_the_snapshot_as_json() {
        let control = testdata::daemon();
        let (code, body) = call(&control, Method::GET, "/v1/status").await;
        assert_eq!(code, StatusCode::OK);
        let status: json::Status = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(status.peers.len(), 2);
        assert_eq!(status.peers[0].state, "Established");
        assert_eq!(status.peers[0].address, "192.0.2.1");
        assert_eq!(status.peers[1].port, 1790);
        assert_eq!(status.vips[0].prefix, testdata::VIP);
        assert_eq!(status.vips[0].mode, "announced");
        assert_eq!(status.vips[0].checks[0].health.as_deref(), Some("up"));
        let last = status.vips[0].checks[0].last.as_ref().unwrap();
        assert!(last.pass && (last.latency_seconds - 0.0015).abs() < 1e-9);
        assert_eq!(status.checks[0].probes, 7003);
        assert_eq!(status.nft_counters.unwrap().steered.packets, 42);
        let reload = status.last_reload.unwrap();
        assert!(!reload.ok && reload.error.unwrap().contains("reserved"));
        assert!(body["started"].as_str().unwrap().ends_with('Z'));
        assert!(body["uptime_seconds"].as_u64().unwrap() >= 3700);
    }

    #[tokio::test]
    async fn drain_and_resume_answer_the_vips_they_touched() {
        let control = testdata::daemon();
        let (code, body) = call(&control, Method::POST, "/v1/drain?vip=192.0.2.100").await;
        assert_eq!(code, StatusCode::OK, "{body}");
        assert_eq!(body["vips"][0]["prefix"], testdata::VIP);
        assert_eq!(body["vips"][0]["mode"], "draining");
        assert_eq!(body["vips"][0]["drained"], true);
        let (code, body) = call(&control, Method::POST, "/v1/resume").await;
        assert_eq!(code, StatusCode::OK, "{body}");
        assert_eq!(body["vips"][0]["mode"], "announced");
    }

    #[tokio::test]
    async fn errors_have_a_fitting_status_and_a_reason() {
        let control = testdata::daemon();
        for (method, target, code, needle) in [
            (
                Method::POST,
                "/v1/drain?vip=198.51.100.1/32",
                StatusCode::NOT_FOUND,
                "198.51.100.1/32 is not a configured VIP",
            ),
            (
                Method::POST,
                "/v1/resume?vip=banana",
                StatusCode::BAD_REQUEST,
                "\"banana\" is not a VIP prefix",
            ),
            (
                Method::POST,
                "/v1/drain?all=1",
                StatusCode::BAD_REQUEST,
                "unknown parameter",
            ),
            (
                Method::GET,
                "/v1/drain",
                StatusCode::METHOD_NOT_ALLOWED,
                "takes POST",
            ),
            (
                Method::POST,
                "/v1/status",
                StatusCode::METHOD_NOT_ALLOWED,
                "takes GET",
            ),
            (
                Method::GET,
                "/v2/status",
                StatusCode::NOT_FOUND,
                "no such endpoint",
            ),
            (
                Method::POST,
                "/v1/reload",
                StatusCode::CONFLICT,
                "reload refused: peer[0].asn",
            ),
        ] {
            let (got, body) = call(&control, method, target).await;
            assert_eq!(got, code, "{target}: {body}");
            let e = body["error"].as_str().unwrap();
            assert!(e.contains(needle), "{target}: {e}");
        }
        let control = testdata::gone();
        for (method, target) in [
            (Method::GET, "/v1/status"),
            (Method::POST, "/v1/drain"),
            (Method::POST, "/v1/resume?vip=192.0.2.100/32"),
            (Method::POST, "/v1/reload"),
        ] {
            let (got, body) = call(&control, method, target).await;
            assert_eq!(got, StatusCode::SERVICE_UNAVAILABLE, "{target}: {body}");
            assert_eq!(body["error"], GONE);
        }
    }

    #[test]
    fn query_takes_only_a_vip_on_drain_and_resume() {
        assert_eq!(parse_query("/v1/drain", None), Ok(None));
        assert_eq!(parse_query("/v1/drain", Some("")), Ok(None));
        assert_eq!(
            parse_query("/v1/drain", Some("vip=192.0.2.100%2F32")),
            Ok(Some("192.0.2.100/32".parse().unwrap()))
        );
        assert_eq!(
            parse_query("/v1/resume", Some("vip=2001:db8::100")),
            Ok(Some("2001:db8::100/128".parse().unwrap()))
        );
        assert!(parse_query("/v1/drain", Some("vip=nope"))
            .unwrap_err()
            .contains("\"nope\" is not a VIP prefix"));
        assert!(parse_query("/v1/drain", Some("vip=%zz")).is_err());
        assert!(parse_query("/v1/drain", Some("vip=192.0.2.1&vip=192.0.2.2")).is_err());
        assert!(parse_query("/v1/drain", Some("prefix=192.0.2.1"))
            .unwrap_err()
            .contains("unknown parameter \"prefix\""));
        assert!(parse_query("/v1/reload", Some("vip=192.0.2.1")).is_err());
    }
}
