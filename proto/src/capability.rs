//! Capabilities advertised in OPEN (RFC 5492).
//!
//! ```text
//! +------------------------------+
//! | Capability Code (1 octet)    |
//! +------------------------------+
//! | Capability Length (1 octet)  |
//! +------------------------------+
//! | Capability Value (variable)  |
//! +------------------------------+
//! ```
//!
//! Capabilities we do not know are kept as raw (code, bytes) and re-encoded
//! unchanged (RFC 5492 §3: a speaker ignores the ones it does not support).

use bytes::{BufMut, Bytes, BytesMut};

use crate::encode::{begin_u8, finish_u8, EncodeError};
use crate::error::DecodeError;
use crate::family::{Afi, Family};
use crate::parse::{be_u16, be_u32, be_u8, take_n, OrDecodeError, PResult};

/// IANA "Capability Codes" we decode.
pub mod code {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const EXTENDED_NEXT_HOP: u8 = 5;
    pub const EXTENDED_MESSAGE: u8 = 6;
    pub const BGP_ROLE: u8 = 9;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
    pub const ADD_PATH: u8 = 69;
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
    pub const FQDN: u8 = 73;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// RFC 4760 §8.
    Multiprotocol(Family),
    /// RFC 2918 §2.
    RouteRefresh,
    /// RFC 8950 §3: (NLRI family, next-hop AFI) tuples. The SAFI is two
    /// octets in this capability.
    ExtendedNextHop(Vec<ExtendedNextHop>),
    /// RFC 8654 §3.
    ExtendedMessage,
    /// RFC 9234 §4.1.
    Role(Role),
    /// RFC 4724 §3.
    GracefulRestart(GracefulRestart),
    /// RFC 6793 §3.
    FourOctetAs(u32),
    /// RFC 7911 §4.
    AddPath(Vec<AddPathFamily>),
    /// RFC 7313 §3.
    EnhancedRouteRefresh,
    /// draft-walton-bgp-hostname-capability: host and domain name, kept as
    /// bytes (they are not required to be UTF-8).
    Fqdn { hostname: Bytes, domain: Bytes },
    /// Any other capability, kept as received.
    Unknown { code: u8, value: Bytes },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtendedNextHop {
    pub afi: Afi,
    pub safi: u16,
    pub next_hop_afi: Afi,
}

/// RFC 9234 §4.1 BGP roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Provider,
    RouteServer,
    RouteServerClient,
    Customer,
    Peer,
    Unknown(u8),
}

impl From<u8> for Role {
    fn from(v: u8) -> Role {
        match v {
            0 => Role::Provider,
            1 => Role::RouteServer,
            2 => Role::RouteServerClient,
            3 => Role::Customer,
            4 => Role::Peer,
            other => Role::Unknown(other),
        }
    }
}

impl From<Role> for u8 {
    fn from(r: Role) -> u8 {
        match r {
            Role::Provider => 0,
            Role::RouteServer => 1,
            Role::RouteServerClient => 2,
            Role::Customer => 3,
            Role::Peer => 4,
            Role::Unknown(other) => other,
        }
    }
}

/// RFC 4724 §3: restart flags (4 bits), restart time (12 bits), and the
/// families whose forwarding state is preserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GracefulRestart {
    /// The four flag bits (R = 0x8, N = 0x4 per RFC 8538).
    pub flags: u8,
    /// Seconds, at most 4095.
    pub restart_time: u16,
    pub families: Vec<(Family, u8)>,
}

/// RFC 7911 §4: send (2), receive (1) or both (3) for one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddPathFamily {
    pub family: Family,
    pub send_receive: u8,
}

impl Capability {
    pub fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol(_) => code::MULTIPROTOCOL,
            Capability::RouteRefresh => code::ROUTE_REFRESH,
            Capability::ExtendedNextHop(_) => code::EXTENDED_NEXT_HOP,
            Capability::ExtendedMessage => code::EXTENDED_MESSAGE,
            Capability::Role(_) => code::BGP_ROLE,
            Capability::GracefulRestart(_) => code::GRACEFUL_RESTART,
            Capability::FourOctetAs(_) => code::FOUR_OCTET_AS,
            Capability::AddPath(_) => code::ADD_PATH,
            Capability::EnhancedRouteRefresh => code::ENHANCED_ROUTE_REFRESH,
            Capability::Fqdn { .. } => code::FQDN,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// Decode every capability TLV in the value of one Capabilities optional
    /// parameter.
    pub(crate) fn decode_all(mut input: &[u8]) -> Result<Vec<Capability>, DecodeError> {
        let mut out = Vec::new();
        while !input.is_empty() {
            let whole = input;
            let (rest, (code, value)) = tlv(input).or_fail(|| DecodeError::MalformedOpen {
                reason: "capability overruns its optional parameter",
            })?;
            let tlv_bytes = whole.get(..whole.len() - rest.len()).unwrap_or_default();
            out.push(Capability::decode_value(code, value).ok_or_else(|| {
                DecodeError::MalformedCapability {
                    code,
                    capability: Bytes::copy_from_slice(tlv_bytes),
                }
            })?);
            input = rest;
        }
        Ok(out)
    }

    /// `None` when a capability we know has a value of the wrong shape.
    fn decode_value(code: u8, value: &[u8]) -> Option<Capability> {
        let cap = match code {
            code::MULTIPROTOCOL => {
                // AFI (2), reserved (1), SAFI (1).
                let [a, b, _reserved, safi] = *value else {
                    return None;
                };
                Capability::Multiprotocol(Family::new(u16::from_be_bytes([a, b]), safi))
            }
            code::ROUTE_REFRESH if value.is_empty() => Capability::RouteRefresh,
            code::EXTENDED_MESSAGE if value.is_empty() => Capability::ExtendedMessage,
            code::ENHANCED_ROUTE_REFRESH if value.is_empty() => Capability::EnhancedRouteRefresh,
            code::BGP_ROLE => match *value {
                [role] => Capability::Role(Role::from(role)),
                _ => return None,
            },
            code::FOUR_OCTET_AS => {
                let (rest, asn) = be_u32(value).ok()?;
                if !rest.is_empty() {
                    return None;
                }
                Capability::FourOctetAs(asn)
            }
            code::EXTENDED_NEXT_HOP => {
                if value.len() % 6 != 0 {
                    return None;
                }
                let tuples = value
                    .chunks_exact(6)
                    .map(|c| match *c {
                        [a1, a2, s1, s2, n1, n2] => Some(ExtendedNextHop {
                            afi: Afi::from(u16::from_be_bytes([a1, a2])),
                            safi: u16::from_be_bytes([s1, s2]),
                            next_hop_afi: Afi::from(u16::from_be_bytes([n1, n2])),
                        }),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()?;
                Capability::ExtendedNextHop(tuples)
            }
            code::GRACEFUL_RESTART => {
                let (rest, head) = be_u16(value).ok()?;
                if rest.len() % 4 != 0 {
                    return None;
                }
                let families = rest
                    .chunks_exact(4)
                    .map(|c| match *c {
                        [a1, a2, safi, flags] => {
                            Some((Family::new(u16::from_be_bytes([a1, a2]), safi), flags))
                        }
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()?;
                Capability::GracefulRestart(GracefulRestart {
                    flags: u8::try_from(head >> 12).ok()?,
                    restart_time: head & 0x0fff,
                    families,
                })
            }
            code::ADD_PATH => {
                if value.len() % 4 != 0 {
                    return None;
                }
                let families = value
                    .chunks_exact(4)
                    .map(|c| match *c {
                        [a1, a2, safi, send_receive] => Some(AddPathFamily {
                            family: Family::new(u16::from_be_bytes([a1, a2]), safi),
                            send_receive,
                        }),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()?;
                Capability::AddPath(families)
            }
            code::FQDN => {
                let (rest, hostname) = length_prefixed(value).ok()?;
                let (rest, domain) = length_prefixed(rest).ok()?;
                if !rest.is_empty() {
                    return None;
                }
                Capability::Fqdn {
                    hostname: Bytes::copy_from_slice(hostname),
                    domain: Bytes::copy_from_slice(domain),
                }
            }
            // A known zero-length capability with a value is malformed.
            code::ROUTE_REFRESH | code::EXTENDED_MESSAGE | code::ENHANCED_ROUTE_REFRESH => {
                return None
            }
            other => Capability::Unknown {
                code: other,
                value: Bytes::copy_from_slice(value),
            },
        };
        Some(cap)
    }

    /// Write the capability TLV.
    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u8(self.code());
        let at = begin_u8(out);
        match self {
            Capability::Multiprotocol(family) => {
                out.put_u16(family.afi.into());
                out.put_u8(0);
                out.put_u8(family.safi.into());
            }
            Capability::RouteRefresh
            | Capability::ExtendedMessage
            | Capability::EnhancedRouteRefresh => {}
            Capability::ExtendedNextHop(tuples) => {
                for t in tuples {
                    out.put_u16(t.afi.into());
                    out.put_u16(t.safi);
                    out.put_u16(t.next_hop_afi.into());
                }
            }
            Capability::Role(role) => out.put_u8((*role).into()),
            Capability::GracefulRestart(gr) => {
                out.put_u16((u16::from(gr.flags & 0x0f) << 12) | (gr.restart_time & 0x0fff));
                for (family, flags) in &gr.families {
                    out.put_u16(family.afi.into());
                    out.put_u8(family.safi.into());
                    out.put_u8(*flags);
                }
            }
            Capability::FourOctetAs(asn) => out.put_u32(*asn),
            Capability::AddPath(families) => {
                for f in families {
                    out.put_u16(f.family.afi.into());
                    out.put_u8(f.family.safi.into());
                    out.put_u8(f.send_receive);
                }
            }
            Capability::Fqdn { hostname, domain } => {
                for name in [hostname, domain] {
                    out.put_u8(crate::encode::len_u8(name.len(), "FQDN capability name")?);
                    out.put_slice(name);
                }
            }
            Capability::Unknown { value, .. } => out.put_slice(value),
        }
        finish_u8(out, at, "capability value")
    }
}

fn tlv(input: &[u8]) -> PResult<'_, (u8, &[u8])> {
    let (input, code) = be_u8(input)?;
    let (input, len) = be_u8(input)?;
    let (input, value) = take_n(input, usize::from(len))?;
    Ok((input, (code, value)))
}

fn length_prefixed(input: &[u8]) -> PResult<'_, &[u8]> {
    let (input, len) = be_u8(input)?;
    take_n(input, usize::from(len))
}
