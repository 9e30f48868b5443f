//! Lab helpers for anyvip: a stand-in kube-apiserver ([`Apiserver`], run
//! by the `anyvip-lab-apiserver` binary on each lab node) and the
//! certificates it serves ([`Pki`]).
//!
//! The stand-in answers like the real apiserver where anyvip looks:
//! `/readyz` and `/livez` say `ok` (200), and `/` says which node served
//! the request (`served-by n1`, also in an `x-served-by` header), so a
//! client behind the VIP can tell where ECMP sent it. `/watch` stands for
//! a Kubernetes watch, the long-lived request every kubelet and controller
//! keeps open: it never ends on its own and sends one line every
//! [`WATCH_TICK`] (`served-by n1 event 7`), so a client sees at once when
//! the connection stops. HTTP/1.1 and HTTP/2 (ALPN), over TLS unless told
//! to serve plain HTTP.
//!
//! A test changes its behaviour with a [`Mode`]:
//!
//! | mode | `/readyz` | new connections |
//! | --- | --- | --- |
//! | `ok` | 200 `ok` | served |
//! | `fail` | 500, with a body like the apiserver's | served (`/livez` and `/` still 200) |
//! | `hang` | never answered | accepted, then never answered (not even the TLS handshake) |
//! | `down` | - | refused: the listener is closed, and bound again on leaving `down` |
//!
//! When the mode leaves `hang`, the connections it held unanswered are
//! closed and the requests it held are answered according to the new
//! mode. `down` closes only the listener: connections already open go on. The binary takes modes
//! from a unix socket ([`control`]): one command per line, `ok`, `fail`,
//! `hang`, `down` or `status`; each is answered `mode <mode>` once it is in
//! force (for `down`: the listener is closed; after it: bound again).

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// How the stand-in behaves; see the crate documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ok,
    Fail,
    Hang,
    Down,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Ok => "ok",
            Mode::Fail => "fail",
            Mode::Hang => "hang",
            Mode::Down => "down",
        })
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "ok" => Ok(Mode::Ok),
            "fail" => Ok(Mode::Fail),
            "hang" => Ok(Mode::Hang),
            "down" => Ok(Mode::Down),
            other => Err(format!("unknown mode {other:?}: ok, fail, hang or down")),
        }
    }
}

/// A CA and a server certificate signed by it (PEM). Clients trust
/// `ca_pem` (anyvip's `ca_file`).
pub struct Pki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    /// A fresh CA and a server certificate for `sans` (DNS names or IP
    /// addresses).
    pub fn generate(sans: &[String]) -> Result<Pki, String> {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
            IsCa, KeyPair, KeyUsagePurpose,
        };
        let e = |e: rcgen::Error| e.to_string();
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "anyvip-lab CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().map_err(e)?).map_err(e)?;
        let mut leaf = CertificateParams::new(sans.to_vec()).map_err(e)?;
        leaf.distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(e)?;
        let cert = leaf.signed_by(&key, &ca).map_err(e)?;
        Ok(Pki {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A rustls server configuration (ring, ALPN h2 + http/1.1) from PEM.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>, String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate: {e}"))?;
    if chain.is_empty() {
        return Err("certificate: no CERTIFICATE in it".to_string());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("key: {e}"))?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A running stand-in apiserver. Dropping it stops it (listener and every
/// connection).
pub struct Apiserver {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    /// The mode the listener has been brought in line with.
    applied: watch::Receiver<Mode>,
    requests: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

struct Shared {
    node: String,
    tls: Option<TlsAcceptor>,
    mode: watch::Receiver<Mode>,
    requests: Arc<AtomicU64>,
}

impl Apiserver {
    /// Bind `addr` (port 0 picks one) and serve, as `node`, over TLS with
    /// `tls` or plain HTTP with `None`, starting in `mode`.
    pub async fn start(
        addr: SocketAddr,
        node: &str,
        tls: Option<Arc<ServerConfig>>,
        mode: Mode,
    ) -> std::io::Result<Apiserver> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (mode_tx, mode_rx) = watch::channel(mode);
        let (applied_tx, applied) = watch::channel(mode);
        let requests = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared {
            node: node.to_string(),
            tls: tls.map(TlsAcceptor::from),
            mode: mode_rx,
            requests: requests.clone(),
        });
        let task = tokio::spawn(accept_loop(listener, addr, shared, applied_tx));
        Ok(Apiserver {
            addr,
            mode: mode_tx,
            applied,
            requests,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switch modes. Requests see the new mode at once; the listener
    /// (closed for `down`, bound again after it) follows shortly: see
    /// [`Apiserver::apply`].
    pub fn set_mode(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Switch modes and wait (up to 5 s) until it is fully in force, the
    /// listener included. False if it is not (e.g. the port could not be
    /// bound again).
    pub async fn apply(&self, mode: Mode) -> bool {
        self.set_mode(mode);
        let mut applied = self.applied.clone();
        let waited = tokio::time::timeout(Duration::from_secs(5), applied.wait_for(|m| *m == mode))
            .await
            .map(|r| r.is_ok());
        waited == Ok(true)
    }

    pub fn mode(&self) -> Mode {
        *self.mode.borrow()
    }

    /// Requests received so far (including those held by `hang`).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for Apiserver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    applied: watch::Sender<Mode>,
) {
    let mut listener = Some(listener);
    let mut mode = shared.mode.clone();
    // Aborting this task drops the set, which aborts every connection.
    let mut conns = JoinSet::new();
    loop {
        let current = *mode.borrow_and_update();
        match (current, listener.is_some()) {
            (Mode::Down, true) => listener = None,
            (m, false) if m != Mode::Down => match TcpListener::bind(addr).await {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    eprintln!("anyvip-lab-apiserver: cannot bind {addr} again: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ => {}
        }
        applied.send_replace(current);
        tokio::select! {
            accepted = accept(listener.as_ref()) => {
                if let Ok((stream, _)) = accepted {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(connection(stream, shared.clone()));
                }
            }
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn accept(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

async fn connection(mut stream: TcpStream, shared: Arc<Shared>) {
    if *shared.mode.borrow() == Mode::Hang {
        // Accepted, never answered: read and drop whatever comes until
        // the client gives up or the mode changes; then close.
        let mut mode = shared.mode.clone();
        let mut buf = [0u8; 1024];
        loop {
            tokio::select! {
                r = stream.read(&mut buf) => if matches!(r, Ok(0) | Err(_)) { return },
                changed = mode.wait_for(|m| *m != Mode::Hang) => {
                    let _ = changed;
                    return;
                }
            }
        }
    }
    match &shared.tls {
        None => serve_http(stream, shared.clone()).await,
        Some(acceptor) => {
            let handshake =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await;
            if let Ok(Ok(tls)) = handshake {
                serve_http(tls, shared.clone()).await;
            }
        }
    }
}

async fn serve_http<I>(io: I, shared: Arc<Shared>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(req, shared.clone()));
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// How often `/watch` sends a line.
pub const WATCH_TICK: Duration = Duration::from_millis(100);

/// The endless body of `/watch`: a line per tick, the first at once.
struct Watch {
    node: String,
    events: u64,
    tick: tokio::time::Interval,
}

impl Body for Watch {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.tick.poll_tick(cx).is_pending() {
            return Poll::Pending;
        }
        self.events += 1;
        let line = format!("served-by {} event {}\n", self.node, self.events);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(line)))))
    }

    fn is_end_stream(&self) -> bool {
        false
    }
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<BoxBody<Bytes, Infallible>>, Infallible> {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let mut mode = shared.mode.clone();
    // A request that arrives while hanging waits for the mode to change.
    let waited = mode.wait_for(|m| *m != Mode::Hang).await.map(|m| *m);
    let Ok(current) = waited else {
        return std::future::pending().await;
    };
    let text = |s: String| Full::new(Bytes::from(s)).boxed();
    let (status, body) = match (req.uri().path(), current) {
        ("/readyz", Mode::Fail) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            text("[+]ping ok\n[-]anyvip-lab failed: mode fail\nreadyz check failed\n".into()),
        ),
        ("/readyz" | "/livez" | "/healthz", _) => (StatusCode::OK, text("ok".into())),
        ("/", _) => (StatusCode::OK, text(format!("served-by {}\n", shared.node))),
        ("/watch", _) => {
            let mut tick = tokio::time::interval(WATCH_TICK);
            // A client that stalls gets the lines it missed later, not a burst.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let watch = Watch {
                node: shared.node.clone(),
                events: 0,
                tick,
            };
            (StatusCode::OK, watch.boxed())
        }
        _ => (StatusCode::NOT_FOUND, text("404 page not found\n".into())),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&shared.node) {
        headers.insert("x-served-by", v);
    }
    Ok(response)
}

/// Serve the control socket at `path` (replacing a stale socket file)
/// for `server` until the task is dropped.
pub fn control(path: &Path, server: Arc<Apiserver>) -> std::io::Result<JoinHandle<()>> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    Ok(tokio::spawn(async move {
        let mut clients = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        clients.spawn(control_client(stream, server.clone()));
                    }
                }
                Some(_) = clients.join_next(), if !clients.is_empty() => {}
            }
        }
    }))
}

async fn control_client(stream: tokio::net::UnixStream, server: Arc<Apiserver>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read.take(64 * 1024)).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let reply = match line.trim() {
            "status" | "" => format!("mode {}\n", server.mode()),
            cmd => match cmd.parse::<Mode>() {
                Ok(m) if server.apply(m).await => format!("mode {m}\n"),
                Ok(m) => format!("error: mode {m} is not in force yet (see stderr)\n"),
                Err(e) => format!("error: {e}\n"),
            },
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}
