//! `[[peer]]`: one BGP session, its timers, TTL handling, TCP MD5 key and
//! address families.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use anyvip_proto::{Asn, Family, HoldTime};

use super::bfd::Bfd;
use super::values::{duration, in_range, ip, ipv4, ipv6, show};
use super::{schema, Speaker, BGP_PORT};

/// RFC 2385 keys are at most 80 octets (Linux TCP_MD5SIG_MAXKEYLEN).
const MAX_PASSWORD_LEN: usize = 80;
/// Defaults chosen for fast failure detection on a data-centre fabric; the
/// router's own hold time wins if it is lower (RFC 4271 §4.2).
const DEFAULT_HOLD_TIME: u16 = 9;
const DEFAULT_CONNECT_RETRY: Duration = Duration::from_secs(1);
/// RFC 4271 allows up to 65535 s; a session that takes more than an hour
/// to notice a dead router defeats the point of announcing a VIP by BGP.
pub const MAX_HOLD_TIME: u16 = 3600;
/// A third of the longest hold time.
pub const MAX_KEEPALIVE: Duration = Duration::from_secs(MAX_HOLD_TIME as u64 / 3);
/// RFC 4271 §10 retry timers run in seconds; RFC 4271 suggests 120 s, and
/// waiting longer only delays the announcement after a router comes back.
pub const MIN_CONNECT_RETRY: Duration = Duration::from_secs(1);
pub const MAX_CONNECT_RETRY: Duration = Duration::from_secs(10 * 60);

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
    /// `None`: no BFD for this session.
    pub bfd: Option<Bfd>,
}

impl Peer {
    pub fn is_internal(&self, speaker: &Speaker) -> bool {
        self.asn == speaker.asn
    }

    /// Whether `other` is the same session but for its BFD settings, which
    /// a reload changes without touching the BGP session (RFC 5880 §6.8.3
    /// Poll Sequence).
    pub fn same_but_bfd(&self, other: &Peer) -> bool {
        Peer {
            bfd: other.bfd,
            ..self.clone()
        } == *other
    }
}

impl super::Validator<'_> {
    pub(super) fn peer(&mut self, key: &str, p: schema::Peer, speaker: &Speaker) -> Option<Peer> {
        let before = self.errors.len();
        let address = self.check(&format!("{key}.address"), ip(&p.address));
        let local_address = p
            .local_address
            .as_deref()
            .and_then(|a| self.check(&format!("{key}.local_address"), ip(a)));
        if let (Some(a), Some(l)) = (address, local_address) {
            if a.is_ipv4() != l.is_ipv4() {
                self.error(
                    format!("{key}.local_address"),
                    "must be of the same family as address",
                );
            }
        }
        if p.asn == 0 {
            self.error(format!("{key}.asn"), "0 is reserved (RFC 7607)");
        }
        let port = p
            .port
            .and_then(|n| self.check(&format!("{key}.port"), in_range(n, 1, u16::MAX)))
            .unwrap_or(BGP_PORT);
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
                    "0 is out of range (allowed: 1 to 255, the TTL to send with)",
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
        let keepalive = p.keepalive.as_deref().and_then(|k| {
            self.check(
                &format!("{key}.keepalive"),
                duration(k, Duration::ZERO, MAX_KEEPALIVE),
            )
        });
        if let (Some(k), Some(h), Some(text)) = (
            keepalive,
            hold_time.and_then(HoldTime::duration),
            p.keepalive.as_deref(),
        ) {
            if k.is_zero() || k >= h {
                self.error(
                    format!("{key}.keepalive"),
                    format!(
                        "\"{text}\" must be more than 0 and less than hold_time ({})",
                        show(h)
                    ),
                );
            }
        }
        let connect_retry = match p.connect_retry.as_deref() {
            None => Some(DEFAULT_CONNECT_RETRY),
            Some(c) => self.check(
                &format!("{key}.connect_retry"),
                duration(c, MIN_CONNECT_RETRY, MAX_CONNECT_RETRY),
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
            .and_then(|a| self.check(&format!("{key}.next_hop_v4"), ipv4(a)));
        let next_hop_v6 = p
            .next_hop_v6
            .as_deref()
            .and_then(|a| self.check(&format!("{key}.next_hop_v6"), ipv6(a)));
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
        let bfd = self.bfd(&format!("{key}.bfd"), p.bfd, p.multihop.is_some());
        if self.errors.len() > before {
            return None;
        }
        let address = address?;
        Some(Peer {
            name: p.name.unwrap_or_else(|| address.to_string()),
            address,
            asn: Asn(p.asn),
            port,
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
            bfd,
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
}

/// Whole seconds, 0 or 3 to [`MAX_HOLD_TIME`] (RFC 4271 §4.2 allows up to
/// 65535).
fn hold_time(s: &str) -> Result<Option<HoldTime>, String> {
    let allowed = format!(
        "allowed: 0 (no keepalives) or 3s to {} (RFC 4271)",
        show(Duration::from_secs(MAX_HOLD_TIME.into()))
    );
    let max = Duration::from_secs(MAX_HOLD_TIME.into());
    let d = duration(s, Duration::ZERO, max).map_err(|e| match e.split_once(" (allowed") {
        Some((head, _)) => format!("{head} ({allowed})"),
        None => e,
    })?;
    if d.subsec_nanos() != 0 {
        return Err(format!(
            "\"{s}\": the hold time is a whole number of seconds ({allowed})"
        ));
    }
    let secs =
        u16::try_from(d.as_secs()).map_err(|_| format!("\"{s}\" is too long ({allowed})"))?;
    HoldTime::new(secs).map(Some).ok_or_else(|| {
        format!("\"{s}\": the hold time must be 0 or at least 3 seconds ({allowed})")
    })
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
