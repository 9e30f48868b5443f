//! `https` and `http` checks: one GET on a fresh connection per probe.
//!
//! A fresh connection each time (as kubelet's probes do) tests what a new
//! client would meet: the listener, the TLS handshake and the handler, not
//! a pooled connection that happens to still work. TLS is rustls with the
//! ring provider; the request is HTTP/1.1, and ALPN offers only
//! `http/1.1`, as kubelet's probes do: an HTTP/2 connection preface and
//! SETTINGS exchange per probe would add work (and allocations) to every
//! probe and test nothing a client of /readyz depends on.
//!
//! The TLS client configuration is built once and reused. When a PEM file
//! could not be read at load time (before `kubeadm init` writes the CA),
//! each probe tries again and fails, naming the file, until every file can
//! be read and the configuration built.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, HOST, USER_AGENT};
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::{error_chain, excerpt, Outcome, Task};
use crate::config::{HttpCheck, PemFile, Tls};

/// `expect_body` is looked for in this much of the body.
pub const BODY_LIMIT: usize = 64 * 1024;
/// How much of a body goes into the log when the check fails.
const LOG_EXCERPT: usize = 512;
const USER_AGENT_VALUE: &str = concat!("anyvip/", env!("CARGO_PKG_VERSION"), " health-check");

pub struct HttpProbe {
    uri: Uri,
    host: String,
    port: u16,
    /// Boxed: most of a probe's size, and `Prober` holds the other kinds inline.
    tls: Option<Box<TlsSetup>>,
    expected_status: Vec<u16>,
    expect_body: Option<String>,
}

impl HttpProbe {
    pub fn new(h: &HttpCheck) -> Result<HttpProbe, String> {
        let authority = h.url.authority().ok_or("the URL has no host")?;
        // `[::1]` in a URL is `::1` to connect to.
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = authority
            .port_u16()
            .unwrap_or(if h.tls.is_some() { 443 } else { 80 });
        let tls = match &h.tls {
            None => None,
            Some(t) => {
                let name = t.server_name.clone().unwrap_or_else(|| host.clone());
                let name = ServerName::try_from(name.clone())
                    .map_err(|_| format!("\"{name}\" is not a valid TLS server name"))?;
                let connector = if t.all_read() {
                    let config = client_config(t).map_err(|(k, e)| format!("{k}: {e}"))?;
                    tokio::sync::OnceCell::from(TlsConnector::from(config))
                } else {
                    tokio::sync::OnceCell::new()
                };
                Some(Box::new(TlsSetup {
                    files: t.clone(),
                    name,
                    connector,
                }))
            }
        };
        Ok(HttpProbe {
            uri: h.url.clone(),
            host,
            port,
            tls,
            expected_status: h.expected_status.clone(),
            expect_body: h.expect_body.clone(),
        })
    }

    pub async fn run(&self, deadline: Instant, timeout: Duration) -> Outcome {
        match self.exchange(deadline, timeout).await {
            Ok(o) | Err(o) => o,
        }
    }

    async fn exchange(&self, deadline: Instant, timeout: Duration) -> Result<Outcome, Outcome> {
        let step = Step { deadline, timeout };
        // Before connecting: without its files the probe has nothing to
        // offer the server.
        let tls = match &self.tls {
            None => None,
            Some(setup) => Some((
                step.run("reading the TLS files", setup.connector())
                    .await??,
                &setup.name,
            )),
        };
        let tcp = step
            .run(
                "connect",
                TcpStream::connect((self.host.as_str(), self.port)),
            )
            .await?
            .map_err(|e| Outcome::fail(format!("connect: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let (response, _conn) = match tls {
            None => self.http1(TokioIo::new(tcp), step).await?,
            Some((connector, name)) => {
                let tls = step
                    .run("TLS handshake", connector.connect(name.clone(), tcp))
                    .await?
                    .map_err(|e| Outcome::fail(format!("TLS handshake: {}", error_chain(&e))))?;
                self.http1(TokioIo::new(tls), step).await?
            }
        };
        let status = response.status().as_u16();
        let head = format!("{:?} {status}", response.version());
        let expected = self.expected_status.contains(&status);
        let mut body = response.into_body();
        if !expected {
            // Best effort: the body says why (kube-apiserver's /readyz
            // lists the failed checks).
            let text = step
                .run("reading the body", read_body(&mut body, LOG_EXCERPT))
                .await
                .ok()
                .and_then(Result::ok)
                .map(|b| excerpt(&b, LOG_EXCERPT));
            let want: Vec<String> = self.expected_status.iter().map(u16::to_string).collect();
            return Ok(
                Outcome::fail(format!("{head} (expected {})", want.join(" or "))).with_detail(text),
            );
        }
        let Some(needle) = &self.expect_body else {
            return Ok(Outcome::pass(head));
        };
        let bytes = step
            .run("reading the body", read_body(&mut body, BODY_LIMIT))
            .await?
            .map_err(|e| Outcome::fail(format!("{head}, reading the body: {}", error_chain(&e))))?;
        if contains(&bytes, needle.as_bytes()) {
            Ok(Outcome::pass(head))
        } else {
            Ok(
                Outcome::fail(format!("{head}, body does not contain {needle:?}"))
                    .with_detail(Some(excerpt(&bytes, LOG_EXCERPT))),
            )
        }
    }

    /// GET in origin form (the path) with a Host header, as HTTP/1.1 wants.
    fn request(&self) -> Request<Empty<Bytes>> {
        let uri = self
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .parse()
            .unwrap_or_else(|_| Uri::from_static("/"));
        let mut req = Request::get(uri)
            .body(Empty::new())
            .unwrap_or_else(|_| Request::new(Empty::new()));
        let headers = req.headers_mut();
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        if let Some(a) = self.uri.authority() {
            if let Ok(v) = HeaderValue::from_str(a.as_str()) {
                headers.insert(HOST, v);
            }
        }
        req
    }

    async fn http1<T>(&self, io: T, step: Step) -> Result<(Response<Incoming>, Task<()>), Outcome>
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (mut sender, conn) = step
            .run(
                "HTTP/1.1 handshake",
                hyper::client::conn::http1::handshake(io),
            )
            .await?
            .map_err(http_error)?;
        let conn = Task(tokio::spawn(async move {
            let _ = conn.await;
        }));
        let response = step
            .run(
                "waiting for the response",
                sender.send_request(self.request()),
            )
            .await?
            .map_err(http_error)?;
        Ok((response, conn))
    }
}

/// The TLS side of an `https` probe.
struct TlsSetup {
    /// The configured files, read again while `connector` is not built.
    files: Tls,
    name: ServerName<'static>,
    /// Built at start when every file was read at load time, else by the
    /// first probe that can read them all; then reused by every probe.
    connector: tokio::sync::OnceCell<TlsConnector>,
}

impl TlsSetup {
    async fn connector(&self) -> Result<&TlsConnector, Outcome> {
        self.connector
            .get_or_try_init(|| async {
                let tls = read_again(&self.files).await?;
                client_config(&tls)
                    .map(TlsConnector::from)
                    .map_err(|(k, e)| format!("{k}: {e}"))
            })
            .await
            .map_err(|e| Outcome::fail(format!("TLS setup: {e}")))
    }
}

/// `tls` with every PEM file read from disk now; errors name the key and
/// the file.
async fn read_again(tls: &Tls) -> Result<Tls, String> {
    async fn read(key: &str, f: &PemFile) -> Result<PemFile, String> {
        match tokio::fs::read(&f.path).await {
            Ok(pem) => Ok(PemFile {
                path: f.path.clone(),
                pem: Some(pem),
            }),
            Err(e) => Err(format!("{key}: cannot read {}: {e}", f.path.display())),
        }
    }
    let ca = match &tls.ca {
        Some(f) => Some(read("ca_file", f).await?),
        None => None,
    };
    let client_auth = match &tls.client_auth {
        Some((c, k)) => Some((read("client_cert", c).await?, read("client_key", k).await?)),
        None => None,
    };
    Ok(Tls {
        ca,
        client_auth,
        ..tls.clone()
    })
}

/// Runs one step of a probe against the probe's deadline, naming the step
/// when time runs out.
#[derive(Clone, Copy)]
struct Step {
    deadline: Instant,
    timeout: Duration,
}

impl Step {
    async fn run<F: std::future::Future>(&self, what: &str, f: F) -> Result<F::Output, Outcome> {
        tokio::time::timeout_at(self.deadline, f)
            .await
            .map_err(|_| {
                Outcome::fail(format!(
                    "timed out after {} ({what})",
                    humantime::format_duration(self.timeout)
                ))
            })
    }
}

fn http_error(e: hyper::Error) -> Outcome {
    Outcome::fail(format!("HTTP: {}", error_chain(&e)))
}

/// Up to about `limit` bytes of the body (stops reading after that).
async fn read_body(body: &mut Incoming, limit: usize) -> Result<Vec<u8>, hyper::Error> {
    let mut buf = Vec::new();
    while buf.len() < limit {
        match body.frame().await {
            None => break,
            Some(Err(e)) => return Err(e),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
    buf.truncate(limit);
    Ok(buf)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The rustls client configuration of an `https` check. Errors name the
/// key they come from (`ca_file`, `client_cert`, `client_key`). The
/// configuration validation calls this too, so `anyvip check-config`
/// finds a bad PEM file or a key that does not match its certificate.
pub fn client_config(tls: &Tls) -> Result<Arc<ClientConfig>, (&'static str, String)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ("ca_file", e.to_string()))?;
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SkipVerify(provider)))
    } else {
        let ca = tls.ca.as_ref().ok_or((
            "ca_file",
            "required unless insecure_skip_verify = true".to_string(),
        ))?;
        let mut roots = RootCertStore::empty();
        let certs = certificates(contents("ca_file", ca)?)
            .map_err(|e| ("ca_file", format!("{}: {e}", ca.path.display())))?;
        for cert in certs {
            roots.add(cert).map_err(|e| {
                (
                    "ca_file",
                    format!("{}: not a usable CA certificate: {e}", ca.path.display()),
                )
            })?;
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match &tls.client_auth {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = certificates(contents("client_cert", cert)?)
                .map_err(|e| ("client_cert", format!("{}: {e}", cert.path.display())))?;
            let private =
                PrivateKeyDer::from_pem_slice(contents("client_key", key)?).map_err(|e| {
                    (
                        "client_key",
                        format!("{}: no private key in it: {e}", key.path.display()),
                    )
                })?;
            builder
                .with_client_auth_cert(chain, private)
                .map_err(|e| ("client_key", format!("{}: {e}", key.path.display())))?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What was read of `file`, for `client_config`.
fn contents<'a>(key: &'static str, file: &'a PemFile) -> Result<&'a [u8], (&'static str, String)> {
    file.pem
        .as_deref()
        .ok_or_else(|| (key, format!("{}: not read", file.path.display())))
}

/// Every certificate in a PEM file; at least one.
fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no CERTIFICATE in it".to_string());
    }
    Ok(certs)
}

/// `insecure_skip_verify = true`: any certificate is accepted, but the
/// handshake signatures are still checked (the server must hold the key of
/// the certificate it sent).
#[derive(Debug)]
struct SkipVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
