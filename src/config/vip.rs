//! `[[vip]]`: the prefix announced, what it follows (checks or `always`),
//! its path attributes and its steering.

use std::collections::BTreeSet;

use anyvip_proto::attribute::{Community, ExtendedCommunity, LargeCommunity};
use anyvip_proto::Family;
use ipnet::IpNet;

use super::schema;
use super::values::{in_range, prefix as parse_prefix};

/// More copies of our AS than this do not make a path any less preferred
/// in practice, and very long AS paths are dropped by some routers
/// (maxas-limit).
pub const MAX_PREPEND: u8 = 10;

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

impl super::Validator<'_> {
    pub(super) fn vip(
        &mut self,
        key: &str,
        v: schema::Vip,
        defined: &BTreeSet<String>,
        used: &mut BTreeSet<String>,
    ) -> Option<Vip> {
        let before = self.errors.len();
        let prefix = self.check(&format!("{key}.prefix"), parse_prefix(&v.prefix));
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
                self.error(
                    format!("{key}.steer.port"),
                    "0 is out of range (allowed: 1 to 65535)",
                );
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
        let prepend = v
            .prepend
            .and_then(|p| self.check(&format!("{key}.prepend"), in_range(p, 0, MAX_PREPEND)))
            .unwrap_or(0);
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
            prepend,
            communities,
            large_communities,
            extended_communities,
        })
    }
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

impl super::Validator<'_> {
    /// A VIP no peer can carry would never be announced, silently: say so.
    pub(super) fn vip_has_a_peer(&mut self, i: usize, v: &Vip, peers: &[(usize, super::Peer)]) {
        if peers.is_empty() {
            return; // "no [[peer]] configured" says it already
        }
        let (family, name, ip) = if v.prefix.addr().is_ipv4() {
            (Family::IPV4_UNICAST, "ipv4", "IPv4")
        } else {
            (Family::IPV6_UNICAST, "ipv6", "IPv6")
        };
        if peers.iter().any(|(_, p)| p.families.contains(&family)) {
            return;
        }
        let carried: Vec<String> = peers
            .iter()
            .map(|(j, p)| {
                let families: Vec<&str> = p
                    .families
                    .iter()
                    .map(|f| {
                        if *f == Family::IPV6_UNICAST {
                            "ipv6"
                        } else {
                            "ipv4"
                        }
                    })
                    .collect();
                format!("peer[{j}] {}: {}", p.address, families.join(", "))
            })
            .collect();
        let next_hop = if v.prefix.addr().is_ipv4() {
            "next_hop_v4 on an IPv6 session"
        } else {
            "next_hop_v6 on an IPv4 session"
        };
        self.error(
            format!("vip[{i}].prefix"),
            format!(
                "{} is an {ip} VIP, but no peer carries {name} ({}), so it would never be announced: add \"{name}\" to a peer's families (with {next_hop}) or add an {ip} peer",
                v.prefix,
                carried.join("; ")
            ),
        );
    }
}
