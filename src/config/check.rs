//! `[check.NAME]`: the health checks a VIP follows.
//!
//! A check has exactly one kind key:
//!
//! | key | value | passes when |
//! | --- | --- | --- |
//! | `https` | `"https://127.0.0.1:6443/readyz"` | the answer's status is in `expected_status` (and the body contains `expect_body`) |
//! | `http` | `"http://127.0.0.1:10256/healthz"` | same, without TLS |
//! | `tcp` | `"127.0.0.1:6443"`, `"[::1]:6443"`, `"localhost:6443"` | a TCP connection is established |
//! | `exec` | `["/usr/local/bin/probe", "arg"]` (argv, no shell) | the program exits 0 |
//! | `file` | `"/etc/anyvip/maintenance"` | the file does **not** exist (a maintenance flag: present = withdraw) |
//!
//! Common keys, with defaults: `interval = "1s"` (50ms to 5m),
//! `timeout` (default four fifths of the interval; must be less than the
//! interval, so a probe always ends before the next one starts),
//! `rise = 3` consecutive passes to come up, `fall = 2` consecutive
//! failures to go down (each 1 to 100). A check starts down (unknown is
//! down).
//!
//! HTTP keys: `expected_status = [200]`, `expect_body` (a substring of
//! the first 64 KiB of the body). HTTPS keys: `ca_file` (PEM; required
//! unless `insecure_skip_verify = true`, and not combined with it),
//! `client_cert` + `client_key` (PEM, both or neither), `server_name` (the
//! name to verify the certificate against, when the URL's host is not in
//! it, e.g. `"kubernetes"` for `https://127.0.0.1:6443`). PEM files are
//! read when the configuration is loaded; one that cannot be read yet is a
//! warning, and the check fails, naming it, until it can (see
//! [`super::tls`]). Relative paths resolve against
//! the configuration file's directory; an `exec` program without a `/` is
//! looked up in `PATH`.
//!
//! A `[[vip]]` lists the checks it follows in `checks = ["apiserver"]` and
//! is up while all of them are up; `always = true` instead announces it
//! unconditionally. A VIP has one or the other, never both. A check that
//! no VIP lists is an error, not a warning: it would run and decide
//! nothing, which usually means a maintenance flag that was meant to drain
//! a VIP but never will.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::values::{duration, in_range, show};
use super::{schema, Tls};

/// Health check defaults (see the module documentation).
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(1);
pub const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// A VIP follows its checks: one that probes less often than this reacts
/// too late to be worth following.
pub const MAX_CHECK_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// More consecutive results than this only delay the reaction.
pub const MAX_RISE_FALL: u32 = 100;
pub const DEFAULT_RISE: u32 = 3;
pub const DEFAULT_FALL: u32 = 2;
pub const DEFAULT_EXPECTED_STATUS: u16 = 200;
/// The longest check name: it appears in logs and metric labels.
const MAX_CHECK_NAME_LEN: usize = 64;

/// A named health check, `[check.NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub kind: CheckKind,
    /// Time between the starts of two probes.
    pub interval: Duration,
    /// A probe that has not finished by then fails; always < `interval`.
    pub timeout: Duration,
    /// Consecutive passes that bring the check up.
    pub rise: u32,
    /// Consecutive failures that bring it down.
    pub fall: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// `http = "..."` or `https = "..."`.
    Http(Box<HttpCheck>),
    /// `tcp = "host:port"`: connect.
    Tcp(String),
    /// `exec = [argv]`: exit 0 passes.
    Exec(Vec<String>),
    /// `file = "path"`: passes while the file does NOT exist.
    File(PathBuf),
}

impl CheckKind {
    /// The kind key, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Http(h) if h.tls.is_some() => "https",
            CheckKind::Http(_) => "http",
            CheckKind::Tcp(_) => "tcp",
            CheckKind::Exec(_) => "exec",
            CheckKind::File(_) => "file",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpCheck {
    /// `http` or `https` (matching `tls`), with a host.
    pub url: hyper::Uri,
    /// Set exactly for `https`.
    pub tls: Option<Tls>,
    pub expected_status: Vec<u16>,
    pub expect_body: Option<String>,
}

impl super::Validator<'_> {
    pub(super) fn health_check(&mut self, name: String, c: schema::Check) -> Option<Check> {
        let key = format!("check.{name}");
        let before = self.errors.len();
        if name.is_empty()
            || name.len() > MAX_CHECK_NAME_LEN
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            self.error(
                &key,
                format!("a check name is 1 to {MAX_CHECK_NAME_LEN} letters, digits, '-' or '_'"),
            );
        }
        let interval = match c.interval.as_deref() {
            None => Some(DEFAULT_CHECK_INTERVAL),
            Some(i) => self.check(
                &format!("{key}.interval"),
                duration(i, MIN_CHECK_INTERVAL, MAX_CHECK_INTERVAL),
            ),
        };
        let timeout = match (c.timeout.as_deref(), interval) {
            (None, Some(i)) => Some(default_timeout(i)),
            (None, None) => None,
            (Some(t), _) => self.check(
                &format!("{key}.timeout"),
                duration(t, Duration::ZERO, MAX_CHECK_INTERVAL),
            ),
        };
        if let (Some(t), Some(i), Some(text)) = (timeout, interval, c.timeout.as_deref()) {
            if t.is_zero() || t >= i {
                self.error(
                    format!("{key}.timeout"),
                    format!(
                        "\"{text}\" must be more than 0 and less than the interval ({}), so a probe ends before the next one starts",
                        show(i)
                    ),
                );
            }
        }
        let rise = self.check(
            &format!("{key}.rise"),
            in_range(c.rise.unwrap_or(DEFAULT_RISE), 1, MAX_RISE_FALL),
        );
        let fall = self.check(
            &format!("{key}.fall"),
            in_range(c.fall.unwrap_or(DEFAULT_FALL), 1, MAX_RISE_FALL),
        );

        let kinds = [
            c.https.is_some().then_some("https"),
            c.http.is_some().then_some("http"),
            c.tcp.is_some().then_some("tcp"),
            c.exec.is_some().then_some("exec"),
            c.file.is_some().then_some("file"),
        ];
        let kinds: Vec<&str> = kinds.into_iter().flatten().collect();
        let http_like = c.https.is_some() || c.http.is_some();
        let https = c.https.is_some();
        // Keys that belong to other kinds.
        let misplaced = [
            ("ca_file", c.ca_file.is_some(), https),
            ("client_cert", c.client_cert.is_some(), https),
            ("client_key", c.client_key.is_some(), https),
            (
                "insecure_skip_verify",
                c.insecure_skip_verify.is_some(),
                https,
            ),
            ("server_name", c.server_name.is_some(), https),
            ("expected_status", c.expected_status.is_some(), http_like),
            ("expect_body", c.expect_body.is_some(), http_like),
        ];
        if kinds.len() == 1 {
            for (k, set, allowed) in misplaced {
                if set && !allowed {
                    let only = if k.starts_with("expect") {
                        "http and https"
                    } else {
                        "https"
                    };
                    self.error(
                        format!("{key}.{k}"),
                        format!("only for {only} checks, this is a {} check", kinds[0]),
                    );
                }
            }
        }
        let kind = match kinds.as_slice() {
            [] => {
                self.error(
                    &key,
                    "no kind: set exactly one of https, http, tcp, exec, file",
                );
                None
            }
            [_] => {
                if let Some(url) = c.https.as_deref() {
                    self.http_check(&key, "https", url, &c)
                } else if let Some(url) = c.http.as_deref() {
                    self.http_check(&key, "http", url, &c)
                } else if let Some(t) = c.tcp.as_deref() {
                    self.check(&format!("{key}.tcp"), tcp_target(t))
                        .map(CheckKind::Tcp)
                } else if let Some(argv) = c.exec {
                    self.exec(&key, argv)
                } else if let Some(f) = c.file.as_deref() {
                    if f.is_empty() {
                        self.error(format!("{key}.file"), "must not be empty");
                        None
                    } else {
                        Some(CheckKind::File(self.base.join(f)))
                    }
                } else {
                    None
                }
            }
            many => {
                self.error(
                    &key,
                    format!("{} are set: a check has exactly one kind", many.join(", ")),
                );
                None
            }
        };
        if self.errors.len() > before {
            return None;
        }
        Some(Check {
            name,
            kind: kind?,
            interval: interval?,
            timeout: timeout?,
            rise: rise?,
            fall: fall?,
        })
    }

    fn http_check(
        &mut self,
        key: &str,
        scheme: &str,
        url: &str,
        c: &schema::Check,
    ) -> Option<CheckKind> {
        let url = self.check(&format!("{key}.{scheme}"), http_url(url, scheme));
        let expected_status = match &c.expected_status {
            None => vec![DEFAULT_EXPECTED_STATUS],
            Some(list) => {
                if list.is_empty() {
                    self.error(
                        format!("{key}.expected_status"),
                        "must list at least one status code",
                    );
                }
                for (i, code) in list.iter().enumerate() {
                    if !(100..=599).contains(code) {
                        self.error(
                            format!("{key}.expected_status[{i}]"),
                            format!("{code} is not an HTTP status code (100..=599)"),
                        );
                    }
                }
                list.clone()
            }
        };
        if c.expect_body.as_deref() == Some("") {
            self.error(
                format!("{key}.expect_body"),
                "must not be empty (leave it out to accept any body)",
            );
        }
        let tls = if scheme == "https" {
            Some(self.tls(key, c)?)
        } else {
            None
        };
        Some(CheckKind::Http(Box::new(HttpCheck {
            url: url?,
            tls,
            expected_status,
            expect_body: c.expect_body.clone(),
        })))
    }

    fn exec(&mut self, key: &str, mut argv: Vec<String>) -> Option<CheckKind> {
        match argv.first() {
            None => {
                self.error(
                    format!("{key}.exec"),
                    "must name a program: [\"/path/to/program\", \"arg\", ...]",
                );
                None
            }
            Some(p) if p.is_empty() => {
                self.error(format!("{key}.exec[0]"), "the program must not be empty");
                None
            }
            Some(p) => {
                // "./probe" is relative to the configuration file, like
                // every other path in it; "probe" is looked up in PATH.
                if p.contains('/') && Path::new(p).is_relative() {
                    argv[0] = self.base.join(p).to_string_lossy().into_owned();
                }
                Some(CheckKind::Exec(argv))
            }
        }
    }
}

/// The default probe timeout: four fifths of the interval, so a probe that
/// times out still leaves a fifth of the interval before the next one.
pub fn default_timeout(interval: Duration) -> Duration {
    interval * 4 / 5
}

fn http_url(s: &str, scheme: &str) -> Result<hyper::Uri, String> {
    let uri: hyper::Uri = s
        .parse()
        .map_err(|e| format!("\"{s}\" is not a URL: {e}"))?;
    if uri.scheme_str() != Some(scheme) {
        return Err(format!("\"{s}\" is not a {scheme}:// URL"));
    }
    match uri.authority() {
        None => Err(format!("\"{s}\" has no host")),
        Some(a) if a.as_str().contains('@') => Err(format!(
            "\"{s}\": user information in the URL is not supported"
        )),
        Some(a) if a.host().is_empty() => Err(format!("\"{s}\" has no host")),
        Some(_) => Ok(uri),
    }
}

/// `ip:port`, `[ipv6]:port` or `name:port` (the name resolved at each
/// probe, off the event loop).
fn tcp_target(s: &str) -> Result<String, String> {
    if s.parse::<SocketAddr>().is_ok() {
        return Ok(s.to_string());
    }
    let bad =
        || format!("\"{s}\" is not host:port (an IPv6 address goes in brackets: \"[::1]:6443\")");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || host.contains(':') || host.contains('[') || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(s.to_string())
}
