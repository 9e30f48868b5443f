//! Configuration: the TOML schema ([`schema`]), and its validation into the
//! typed [`Config`] the daemon runs on. Every error names the key path and
//! the reason; all errors in a file are reported together.
//!
//! ## Health checks (`[check.NAME]`)
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
//! Common keys, with defaults: `interval = "1s"` (at least 50ms),
//! `timeout` (default four fifths of the interval; must be less than the
//! interval, so a probe always ends before the next one starts),
//! `rise = 3` consecutive passes to come up, `fall = 2` consecutive
//! failures to go down. A check starts down (unknown is down).
//!
//! HTTP keys: `expected_status = [200]`, `expect_body` (a substring of
//! the first 64 KiB of the body). HTTPS keys: `ca_file` (PEM; required
//! unless `insecure_skip_verify = true`, and not combined with it),
//! `client_cert` + `client_key` (PEM, both or neither), `server_name` (the
//! name to verify the certificate against, when the URL's host is not in
//! it, e.g. `"kubernetes"` for `https://127.0.0.1:6443`). PEM files are
//! read when the configuration is loaded. Relative paths resolve against
//! the configuration file's directory; an `exec` program without a `/` is
//! looked up in `PATH`.
//!
//! A `[[vip]]` lists the checks it follows in `checks = ["apiserver"]` and
//! is up while all of them are up; `always = true` instead announces it
//! unconditionally. A VIP has one or the other, never both. A check that
//! no VIP lists is an error, not a warning: it would run and decide
//! nothing, which usually means a maintenance flag that was meant to drain
//! a VIP but never will.

mod api;
mod schema;

pub use api::{Api, DEFAULT_SOCKET, DEFAULT_SOCKET_MODE};

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyvip_proto::attribute::{Community, ExtendedCommunity, LargeCommunity};
use anyvip_proto::{Asn, Family, HoldTime};
use ipnet::IpNet;

/// The BGP port (RFC 4271 §8.2.1).
pub const BGP_PORT: u16 = 179;
/// RFC 2385 keys are at most 80 octets (Linux TCP_MD5SIG_MAXKEYLEN).
const MAX_PASSWORD_LEN: usize = 80;
/// Defaults chosen for fast failure detection on a data-centre fabric; the
/// router's own hold time wins if it is lower (RFC 4271 §4.2).
const DEFAULT_HOLD_TIME: u16 = 9;
const DEFAULT_CONNECT_RETRY: Duration = Duration::from_secs(1);
/// Health check defaults (see the module documentation).
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(1);
pub const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(50);
pub const DEFAULT_RISE: u32 = 3;
pub const DEFAULT_FALL: u32 = 2;
pub const DEFAULT_EXPECTED_STATUS: u16 = 200;
/// The longest check name: it appears in logs and metric labels.
const MAX_CHECK_NAME_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub speaker: Speaker,
    pub peers: Vec<Peer>,
    pub vips: Vec<Vip>,
    /// Every `[check.NAME]`, by name; each is listed by at least one VIP.
    pub checks: Vec<Check>,
    pub dataplane: Dataplane,
    pub drain: Drain,
    /// `[api]`: the control socket and the metrics endpoint.
    pub api: Api,
}

/// `[drain]`: how a planned withdrawal happens (RFC 8326).
#[derive(Debug, Clone, PartialEq)]
pub struct Drain {
    /// Between re-announcing with GRACEFUL_SHUTDOWN and withdrawing: long
    /// enough for routers to move new flows elsewhere and for requests in
    /// flight to finish.
    pub delay: Duration,
    /// Extra copies of our AS while draining (eBGP), for routers that do
    /// not act on GRACEFUL_SHUTDOWN.
    pub prepend: u8,
    /// MED while draining, for the same routers.
    pub med: Option<u32>,
}

/// Default drain delay: a few of the routers' keepalive intervals.
pub const DEFAULT_DRAIN_DELAY: Duration = Duration::from_secs(5);

/// `[dataplane]`: what anyvip does on the node itself (design section 6).
#[derive(Debug, Clone, PartialEq)]
pub struct Dataplane {
    /// Put VIP addresses on `interface` and own the `inet anyvip` nftables
    /// table. Off only where something else delivers VIP traffic locally.
    pub manage: bool,
    pub interface: String,
    pub guard: crate::steer::GuardConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Speaker {
    pub asn: Asn,
    pub router_id: Ipv4Addr,
    /// Where passive peers may connect.
    pub listen: Vec<SocketAddr>,
}

/// How the session's IP TTL is set and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// Send with this TTL (1 for a directly connected eBGP peer, more for
    /// multihop, 64 for iBGP), accept any.
    Send(u8),
    /// RFC 5082 GTSM: send with 255, accept only 254 or more (one hop).
    Security,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    /// For logs, metrics and status; the address unless configured.
    pub name: String,
    pub address: IpAddr,
    pub asn: Asn,
    pub port: u16,
    pub local_address: Option<IpAddr>,
    pub passive: bool,
    pub ttl: Ttl,
    /// RFC 2385 TCP MD5 key, read from `password_file`.
    pub password: Option<Vec<u8>>,
    pub hold_time: HoldTime,
    /// `None`: a third of the negotiated hold time.
    pub keepalive: Option<Duration>,
    pub connect_retry: Duration,
    pub families: Vec<Family>,
    pub next_hop_v4: Option<Ipv4Addr>,
    pub next_hop_v6: Option<Ipv6Addr>,
}

impl Peer {
    pub fn is_internal(&self, speaker: &Speaker) -> bool {
        self.asn == speaker.asn
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Vip {
    pub prefix: IpNet,
    /// Announce without health checks.
    pub always: bool,
    /// Names of the checks this VIP follows (up while all are up); empty
    /// exactly when `always`.
    pub checks: Vec<String>,
    pub med: Option<u32>,
    /// iBGP only (RFC 4271 §5.1.5); default 100.
    pub local_pref: u32,
    /// Extra copies of our AS prepended on eBGP sessions.
    pub prepend: u8,
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
    pub extended_communities: Vec<ExtendedCommunity>,
    /// DNAT of `VIP:port` to the local apiserver endpoint.
    pub steer: Option<crate::steer::SteerConfig>,
}

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

#[derive(Debug, Clone, PartialEq)]
pub struct Tls {
    /// The CA certificates to trust; `None` only with `insecure_skip_verify`.
    pub ca: Option<PemFile>,
    /// Client certificate chain and its key.
    pub client_auth: Option<(PemFile, PemFile)>,
    pub insecure_skip_verify: bool,
    /// Verify the certificate against this name instead of the URL's host.
    pub server_name: Option<String>,
}

/// A PEM file as read at load time. Its `Debug` shows no contents (it may
/// hold a private key).
#[derive(Clone, PartialEq, Eq)]
pub struct PemFile {
    pub path: PathBuf,
    pub pem: Vec<u8>,
}

impl fmt::Debug for PemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PemFile({}, {} bytes)",
            self.path.display(),
            self.pem.len()
        )
    }
}

/// One problem in the configuration: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// Every problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} error(s)", self.file.display(), self.errors.len())?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Read and validate a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let fail = |key: &str, reason: String| ConfigErrors {
        file: path.to_path_buf(),
        errors: vec![ConfigError {
            key: key.to_string(),
            reason,
        }],
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail("(file)", e.to_string()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, base).map_err(|errors| ConfigErrors {
        file: path.to_path_buf(),
        errors,
    })
}

/// Parse and validate TOML text; relative file names resolve against `base`.
pub fn parse(text: &str, base: &Path) -> Result<Config, Vec<ConfigError>> {
    let file = deserialize(text)?;
    let mut v = Validator {
        errors: Vec::new(),
        base,
    };
    let config = v.file(file);
    if v.errors.is_empty() {
        Ok(config)
    } else {
        Err(v.errors)
    }
}

fn deserialize(text: &str) -> Result<schema::File, Vec<ConfigError>> {
    let de = toml::Deserializer::parse(text).map_err(|e| vec![toml_error(text, "(syntax)", &e)])?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = match e.path().to_string() {
            p if p == "." => "(top level)".to_string(),
            p => p,
        };
        vec![toml_error(text, &key, e.inner())]
    })
}

fn toml_error(text: &str, key: &str, e: &toml::de::Error) -> ConfigError {
    let line = e
        .span()
        .map(|s| text.get(..s.start).unwrap_or("").matches('\n').count() + 1);
    let message = e.message().trim().to_string();
    ConfigError {
        key: key.to_string(),
        reason: match line {
            Some(l) => format!("{message} (line {l})"),
            None => message,
        },
    }
}

struct Validator<'a> {
    errors: Vec<ConfigError>,
    base: &'a Path,
}

impl Validator<'_> {
    fn error(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(ConfigError {
            key: key.into(),
            reason: reason.into(),
        });
    }

    /// Parse `value` with `f`, recording an error under `key` on failure.
    fn check<T, E: fmt::Display>(&mut self, key: &str, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(key, e.to_string());
                None
            }
        }
    }

    fn file(&mut self, f: schema::File) -> Config {
        let speaker = self.speaker(f.speaker, f.peers.iter().any(|p| p.passive == Some(true)));
        let peers: Vec<Peer> = f
            .peers
            .into_iter()
            .enumerate()
            .filter_map(|(i, p)| self.peer(&format!("peer[{i}]"), p, &speaker))
            .collect();
        for (i, p) in peers.iter().enumerate() {
            if let Some(j) = peers[..i].iter().position(|q| q.address == p.address) {
                self.error(
                    format!("peer[{i}].address"),
                    format!("{} is already peer[{j}]", p.address),
                );
            }
        }
        // Names are known even for checks with errors, so a VIP that lists
        // a broken check is not also told that the check does not exist.
        let names: BTreeSet<String> = f.checks.keys().cloned().collect();
        let checks: Vec<Check> = f
            .checks
            .into_iter()
            .filter_map(|(name, c)| self.health_check(name, c))
            .collect();
        let mut used = BTreeSet::new();
        let vips: Vec<Vip> = f
            .vips
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| self.vip(&format!("vip[{i}]"), v, &names, &mut used))
            .collect();
        for name in names.difference(&used) {
            self.error(
                format!("check.{name}"),
                "no [[vip]] lists this check: it would run and decide nothing; add it to a VIP's checks or remove it",
            );
        }
        for (i, v) in vips.iter().enumerate() {
            if let Some(j) = vips[..i].iter().position(|w| w.prefix == v.prefix) {
                self.error(
                    format!("vip[{i}].prefix"),
                    format!("{} is already vip[{j}]", v.prefix),
                );
            }
        }
        let dataplane = self.dataplane(f.dataplane);
        let drain = self.drain(f.drain);
        let api = self.api(f.api);
        if peers.is_empty() && self.errors.is_empty() {
            self.error(
                "peer",
                "no [[peer]] configured: the VIP would be announced to no one",
            );
        }
        Config {
            speaker,
            peers,
            vips,
            checks,
            dataplane,
            drain,
            api,
        }
    }

    fn drain(&mut self, d: Option<schema::Drain>) -> Drain {
        let Some(d) = d else {
            return Drain {
                delay: DEFAULT_DRAIN_DELAY,
                prepend: 0,
                med: None,
            };
        };
        let delay = match d.delay.as_deref() {
            None => DEFAULT_DRAIN_DELAY,
            Some(t) => self
                .check("drain.delay", duration(t))
                .unwrap_or(DEFAULT_DRAIN_DELAY),
        };
        Drain {
            delay,
            prepend: d.prepend.unwrap_or(0),
            med: d.med,
        }
    }

    fn dataplane(&mut self, d: Option<schema::Dataplane>) -> Dataplane {
        let d = d.unwrap_or(schema::Dataplane {
            manage: None,
            interface: None,
            guard: None,
            keep_guard_on_stop: None,
        });
        let interface = d
            .interface
            .unwrap_or_else(|| crate::address::DEFAULT_INTERFACE.to_string());
        // Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
        if interface.is_empty() || interface.len() > 15 || interface.contains(['/', ' ']) {
            self.error(
                "dataplane.interface",
                format!("\"{interface}\" is not a Linux interface name"),
            );
        }
        let mode = d
            .guard
            .as_deref()
            .and_then(|g| self.check("dataplane.guard", g.parse::<crate::steer::GuardMode>()))
            .unwrap_or_default();
        Dataplane {
            manage: d.manage.unwrap_or(true),
            interface,
            guard: crate::steer::GuardConfig {
                mode,
                keep_on_stop: d.keep_guard_on_stop.unwrap_or(true),
            },
        }
    }

    fn speaker(&mut self, s: schema::Speaker, any_passive: bool) -> Speaker {
        if s.asn == 0 || s.asn == u32::from(anyvip_proto::AS_TRANS) {
            self.error(
                "speaker.asn",
                format!("{} is reserved and cannot be a speaker's AS", s.asn),
            );
        }
        let router_id = self
            .check("speaker.router_id", s.router_id.parse::<Ipv4Addr>())
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        // RFC 6286 §2.1: the BGP Identifier is a non-zero 32-bit value.
        if router_id.is_unspecified() && self.errors.iter().all(|e| e.key != "speaker.router_id") {
            self.error("speaker.router_id", "must not be 0.0.0.0 (RFC 6286)");
        }
        let listen = match s.listen {
            Some(list) => list
                .iter()
                .enumerate()
                .filter_map(|(i, a)| self.check(&format!("speaker.listen[{i}]"), parse_listen(a)))
                .collect(),
            None if any_passive => vec![
                SocketAddr::from((Ipv4Addr::UNSPECIFIED, BGP_PORT)),
                SocketAddr::from((Ipv6Addr::UNSPECIFIED, BGP_PORT)),
            ],
            None => Vec::new(),
        };
        Speaker {
            asn: Asn(s.asn),
            router_id,
            listen,
        }
    }

    fn peer(&mut self, key: &str, p: schema::Peer, speaker: &Speaker) -> Option<Peer> {
        let before = self.errors.len();
        let address = self.check(&format!("{key}.address"), p.address.parse::<IpAddr>());
        let local_address = p
            .local_address
            .as_deref()
            .and_then(|a| self.check(&format!("{key}.local_address"), a.parse::<IpAddr>()));
        if let (Some(a), Some(l)) = (address, local_address) {
            if a.is_ipv4() != l.is_ipv4() {
                self.error(
                    format!("{key}.local_address"),
                    "must be of the same family as address",
                );
            }
        }
        if p.asn == 0 {
            self.error(format!("{key}.asn"), "0 is reserved");
        }
        let internal = Asn(p.asn) == speaker.asn;
        let ttl = match (p.ttl_security.unwrap_or(false), p.multihop) {
            (true, Some(_)) => {
                self.error(
                    format!("{key}.ttl_security"),
                    "cannot be combined with multihop: GTSM accepts only directly connected peers",
                );
                Ttl::Security
            }
            (true, None) => Ttl::Security,
            (false, Some(0)) => {
                self.error(
                    format!("{key}.multihop"),
                    "must be 1..=255 (the TTL to send with)",
                );
                Ttl::Send(1)
            }
            (false, Some(n)) => Ttl::Send(n),
            (false, None) if internal => Ttl::Send(64),
            (false, None) => Ttl::Send(1),
        };
        let password = p.password_file.as_deref().and_then(|f| {
            let k = format!("{key}.password_file");
            self.password(&k, f)
        });
        let hold_time = match p.hold_time.as_deref() {
            None => HoldTime::new(DEFAULT_HOLD_TIME),
            Some(h) => self
                .check(&format!("{key}.hold_time"), hold_time(h))
                .flatten(),
        };
        let keepalive = p
            .keepalive
            .as_deref()
            .and_then(|k| self.check(&format!("{key}.keepalive"), duration(k)));
        if let (Some(k), Some(h)) = (keepalive, hold_time.and_then(HoldTime::duration)) {
            if k.is_zero() || k >= h {
                self.error(
                    format!("{key}.keepalive"),
                    "must be more than 0 and less than hold_time",
                );
            }
        }
        let connect_retry = match p.connect_retry.as_deref() {
            None => Some(DEFAULT_CONNECT_RETRY),
            Some(c) => self.check(
                &format!("{key}.connect_retry"),
                duration(c).and_then(|d| {
                    // RFC 4271 §10 retry timers run in seconds.
                    if d >= Duration::from_secs(1) {
                        Ok(d)
                    } else {
                        Err(format!("\"{c}\" is too short: at least 1s"))
                    }
                }),
            ),
        };
        let families = match (p.families, address) {
            (Some(list), _) => {
                let parsed: Vec<Family> = list
                    .iter()
                    .enumerate()
                    .filter_map(|(i, f)| self.check(&format!("{key}.families[{i}]"), family(f)))
                    .collect();
                if list.is_empty() {
                    self.error(format!("{key}.families"), "must name at least one family");
                }
                parsed
            }
            (None, Some(IpAddr::V6(_))) => vec![Family::IPV6_UNICAST],
            (None, _) => vec![Family::IPV4_UNICAST],
        };
        let next_hop_v4 = p
            .next_hop_v4
            .as_deref()
            .and_then(|a| self.check(&format!("{key}.next_hop_v4"), a.parse::<Ipv4Addr>()));
        let next_hop_v6 = p
            .next_hop_v6
            .as_deref()
            .and_then(|a| self.check(&format!("{key}.next_hop_v6"), a.parse::<Ipv6Addr>()));
        // An IPv6 route over an IPv4 session needs an IPv6 next hop from
        // somewhere: the session's own address cannot serve.
        if let Some(IpAddr::V4(_)) = address {
            if families.contains(&Family::IPV6_UNICAST) && next_hop_v6.is_none() {
                self.error(
                    format!("{key}.next_hop_v6"),
                    "required when an IPv4 session carries ipv6 (the session has no IPv6 address to use)",
                );
            }
        }
        if let Some(IpAddr::V6(_)) = address {
            if families.contains(&Family::IPV4_UNICAST) && next_hop_v4.is_none() {
                self.error(
                    format!("{key}.next_hop_v4"),
                    "required when an IPv6 session carries ipv4 (the session has no IPv4 address to use)",
                );
            }
        }
        if self.errors.len() > before {
            return None;
        }
        let address = address?;
        Some(Peer {
            name: p.name.unwrap_or_else(|| address.to_string()),
            address,
            asn: Asn(p.asn),
            port: p.port.unwrap_or(BGP_PORT),
            local_address,
            passive: p.passive.unwrap_or(false),
            ttl,
            password,
            hold_time: hold_time?,
            keepalive,
            connect_retry: connect_retry?,
            families,
            next_hop_v4,
            next_hop_v6,
        })
    }

    fn password(&mut self, key: &str, file: &str) -> Option<Vec<u8>> {
        let path = self.base.join(file);
        let mut bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                self.error(key, format!("cannot read {}: {e}", path.display()));
                return None;
            }
        };
        // A trailing newline from `echo secret > file` is not part of the key.
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        if bytes.is_empty() || bytes.len() > MAX_PASSWORD_LEN {
            self.error(
                key,
                format!(
                    "{}: the key must be 1 to {MAX_PASSWORD_LEN} octets",
                    path.display()
                ),
            );
            return None;
        }
        Some(bytes)
    }

    fn vip(
        &mut self,
        key: &str,
        v: schema::Vip,
        defined: &BTreeSet<String>,
        used: &mut BTreeSet<String>,
    ) -> Option<Vip> {
        let before = self.errors.len();
        let prefix = self.check(&format!("{key}.prefix"), v.prefix.parse::<IpNet>());
        if let Some(p) = prefix {
            if p.prefix_len() != p.max_prefix_len() {
                self.error(
                    format!("{key}.prefix"),
                    format!("{p} is not a host route: a VIP is one address (/32 or /128)"),
                );
            }
        }
        let always = v.always.unwrap_or(false);
        let checks = v.checks.unwrap_or_default();
        for (i, name) in checks.iter().enumerate() {
            if !defined.contains(name) {
                self.error(
                    format!("{key}.checks[{i}]"),
                    format!("no [check.{name}] is defined"),
                );
            } else if checks[..i].contains(name) {
                self.error(
                    format!("{key}.checks[{i}]"),
                    format!("\"{name}\" is listed twice"),
                );
            }
            used.insert(name.clone());
        }
        match (always, checks.is_empty()) {
            (true, false) => self.error(
                format!("{key}.always"),
                "cannot be combined with checks: a VIP either follows its checks or is announced unconditionally",
            ),
            (false, true) => self.error(
                format!("{key}.checks"),
                "no health checks: list at least one [check.NAME], or set always = true to announce this VIP unconditionally",
            ),
            _ => {}
        }
        let communities = self.list(&format!("{key}.communities"), v.communities, |s| {
            s.parse::<Community>()
        });
        let large_communities = self.list(
            &format!("{key}.large_communities"),
            v.large_communities,
            |s| s.parse::<LargeCommunity>(),
        );
        let extended_communities = self.list(
            &format!("{key}.extended_communities"),
            v.extended_communities,
            extended,
        );
        let steer = v.steer.and_then(|st| {
            let to = self.check(
                &format!("{key}.steer.to"),
                st.to.parse::<std::net::SocketAddr>().map_err(|_| {
                    format!(
                        "\"{}\" is not ADDRESS:PORT (e.g. \"127.0.0.1:6443\")",
                        st.to
                    )
                }),
            )?;
            if st.port == 0 {
                self.error(format!("{key}.steer.port"), "must be 1..=65535");
            }
            Some(crate::steer::SteerConfig { port: st.port, to })
        });
        if let (Some(p), Some(st)) = (prefix, &steer) {
            if p.addr().is_ipv4() != st.to.is_ipv4() {
                self.error(
                    format!("{key}.steer.to"),
                    "must be of the VIP's address family (nftables cannot translate between families)",
                );
            }
        }
        if self.errors.len() > before {
            return None;
        }
        Some(Vip {
            steer,
            prefix: prefix?,
            always,
            checks,
            med: v.med,
            local_pref: v.local_pref.unwrap_or(100),
            prepend: v.prepend.unwrap_or(0),
            communities,
            large_communities,
            extended_communities,
        })
    }

    fn health_check(&mut self, name: String, c: schema::Check) -> Option<Check> {
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
                duration(i).and_then(|d| {
                    if d >= MIN_CHECK_INTERVAL {
                        Ok(d)
                    } else {
                        Err(format!("\"{i}\" is too short: at least 50ms"))
                    }
                }),
            ),
        };
        let timeout = match (c.timeout.as_deref(), interval) {
            (None, Some(i)) => Some(default_timeout(i)),
            (None, None) => None,
            (Some(t), _) => self.check(&format!("{key}.timeout"), duration(t)),
        };
        if let (Some(t), Some(i), Some(text)) = (timeout, interval, c.timeout.as_deref()) {
            if t.is_zero() || t >= i {
                self.error(
                    format!("{key}.timeout"),
                    format!(
                        "\"{text}\" must be more than 0 and less than the interval ({}), so a probe ends before the next one starts",
                        humantime::format_duration(i)
                    ),
                );
            }
        }
        let rise = c.rise.unwrap_or(DEFAULT_RISE);
        if rise == 0 {
            self.error(format!("{key}.rise"), "must be at least 1");
        }
        let fall = c.fall.unwrap_or(DEFAULT_FALL);
        if fall == 0 {
            self.error(format!("{key}.fall"), "must be at least 1");
        }

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
            rise,
            fall,
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

    fn tls(&mut self, key: &str, c: &schema::Check) -> Option<Tls> {
        let before = self.errors.len();
        let insecure_skip_verify = c.insecure_skip_verify.unwrap_or(false);
        match (&c.ca_file, insecure_skip_verify) {
            (None, false) => self.error(
                format!("{key}.ca_file"),
                "required for https: the CA that signed the server's certificate (e.g. /etc/kubernetes/pki/ca.crt), or set insecure_skip_verify = true",
            ),
            (Some(_), true) => self.error(
                format!("{key}.insecure_skip_verify"),
                "cannot be combined with ca_file: either verify against the CA or skip verification",
            ),
            _ => {}
        }
        let ca = c
            .ca_file
            .as_deref()
            .and_then(|f| self.pem_file(&format!("{key}.ca_file"), f));
        let client_auth = match (&c.client_cert, &c.client_key) {
            (Some(cert), Some(k)) => {
                let cert = self.pem_file(&format!("{key}.client_cert"), cert);
                let k = self.pem_file(&format!("{key}.client_key"), k);
                cert.zip(k)
            }
            (Some(_), None) => {
                self.error(format!("{key}.client_key"), "required with client_cert");
                None
            }
            (None, Some(_)) => {
                self.error(format!("{key}.client_cert"), "required with client_key");
                None
            }
            (None, None) => None,
        };
        if let Some(n) = &c.server_name {
            if rustls_pki_types::ServerName::try_from(n.as_str()).is_err() {
                self.error(
                    format!("{key}.server_name"),
                    format!("\"{n}\" is not a DNS name or an IP address"),
                );
            }
        }
        if self.errors.len() > before {
            return None;
        }
        let tls = Tls {
            ca,
            client_auth,
            insecure_skip_verify,
            server_name: c.server_name.clone(),
        };
        // Build it once here, so `check-config` finds a bad certificate or
        // a key that does not match, not the first probe.
        if let Err((k, reason)) = crate::health::http::client_config(&tls) {
            self.error(format!("{key}.{k}"), reason);
            return None;
        }
        Some(tls)
    }

    fn pem_file(&mut self, key: &str, file: &str) -> Option<PemFile> {
        let path = self.base.join(file);
        match std::fs::read(&path) {
            Ok(pem) => Some(PemFile { path, pem }),
            Err(e) => {
                self.error(key, format!("cannot read {}: {e}", path.display()));
                None
            }
        }
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

    fn list<T, E: fmt::Display>(
        &mut self,
        key: &str,
        items: Option<Vec<String>>,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Vec<T> {
        items
            .unwrap_or_default()
            .iter()
            .enumerate()
            .filter_map(|(i, s)| self.check(&format!("{key}[{i}]"), parse(s)))
            .collect()
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

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("\"{s}\" is not a duration like \"300ms\" or \"9s\": {e}"))
}

/// Whole seconds, 0 or 3..=65535 (RFC 4271 §4.2).
fn hold_time(s: &str) -> Result<Option<HoldTime>, String> {
    let d = duration(s)?;
    if d.subsec_nanos() != 0 {
        return Err(format!(
            "\"{s}\": the hold time is a whole number of seconds"
        ));
    }
    let secs =
        u16::try_from(d.as_secs()).map_err(|_| format!("\"{s}\" is more than 65535 seconds"))?;
    HoldTime::new(secs)
        .map(Some)
        .ok_or_else(|| format!("\"{s}\": the hold time must be 0 or at least 3 seconds (RFC 4271)"))
}

fn family(s: &str) -> Result<Family, String> {
    match s {
        "ipv4" | "ipv4-unicast" => Ok(Family::IPV4_UNICAST),
        "ipv6" | "ipv6-unicast" => Ok(Family::IPV6_UNICAST),
        other => Err(format!(
            "\"{other}\" is not a family: use \"ipv4\" or \"ipv6\""
        )),
    }
}

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, BGP_PORT)))
        .map_err(|_| format!("\"{s}\" is not an address or address:port"))
}

/// `rt:ASN:VALUE` (two-octet-AS route target) or 16 hex digits.
fn extended(s: &str) -> Result<ExtendedCommunity, String> {
    if let Some(rest) = s.strip_prefix("rt:") {
        let (a, v) = rest
            .split_once(':')
            .ok_or_else(|| format!("\"{s}\" is not rt:ASN:VALUE"))?;
        let asn = a
            .parse::<u16>()
            .map_err(|_| format!("\"{a}\" in \"{s}\" is not a two-octet AS"))?;
        let value = v
            .parse::<u32>()
            .map_err(|_| format!("\"{v}\" in \"{s}\" is not a 32-bit value"))?;
        return Ok(ExtendedCommunity::route_target(asn, value));
    }
    let hex = s.strip_prefix("0x").unwrap_or(s);
    if hex.len() != 16 {
        return Err(format!(
            "\"{s}\" is neither rt:ASN:VALUE nor 8 octets of hex"
        ));
    }
    let n = u64::from_str_radix(hex, 16).map_err(|_| format!("\"{s}\" is not hex"))?;
    Ok(ExtendedCommunity(n.to_be_bytes()))
}

#[cfg(test)]
mod tests;
