//! MP_REACH_NLRI (type 14) and MP_UNREACH_NLRI (type 15), RFC 4760 §3-4,
//! for IPv4 and IPv6 unicast. Other families are kept opaque by the caller.
//!
//! ```text
//! MP_REACH_NLRI                          MP_UNREACH_NLRI
//! +---------------------------------+    +---------------------------------+
//! | AFI (2) | SAFI (1)              |    | AFI (2) | SAFI (1)              |
//! +---------------------------------+    +---------------------------------+
//! | Length of Next Hop (1)          |    | Withdrawn Routes (variable)     |
//! +---------------------------------+    +---------------------------------+
//! | Next Hop (variable)             |
//! +---------------------------------+
//! | Reserved (1)                    |
//! +---------------------------------+
//! | NLRI (variable)                 |
//! +---------------------------------+
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};

use crate::encode::{begin_u8, finish_u8, EncodeError};
use crate::family::{Afi, Family};
use crate::parse::{be_u16, be_u8, ipv4, ipv6, take_n, PResult};
use crate::prefix::{self, Nlri};

/// The next hop of an MP_REACH_NLRI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MpNextHop {
    Ipv4(Ipv4Addr),
    /// RFC 2545 §3: a global address, optionally followed by a link-local
    /// one (32-octet form). Also used for IPv4 NLRI over an IPv6 next hop
    /// (RFC 8950).
    Ipv6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
}

impl MpNextHop {
    /// `None` when the length fits none of the forms above.
    fn decode(bytes: &[u8]) -> Option<MpNextHop> {
        match bytes.len() {
            4 => ipv4(bytes).ok().map(|(_, a)| MpNextHop::Ipv4(a)),
            16 => ipv6(bytes).ok().map(|(_, g)| MpNextHop::Ipv6 {
                global: g,
                link_local: None,
            }),
            32 => ipv6(bytes).ok().and_then(|(rest, g)| {
                ipv6(rest).ok().map(|(_, l)| MpNextHop::Ipv6 {
                    global: g,
                    link_local: Some(l),
                })
            }),
            _ => None,
        }
    }

    fn encode(&self, out: &mut BytesMut) {
        match self {
            MpNextHop::Ipv4(a) => out.put_slice(&a.octets()),
            MpNextHop::Ipv6 { global, link_local } => {
                out.put_slice(&global.octets());
                if let Some(l) = link_local {
                    out.put_slice(&l.octets());
                }
            }
        }
    }

    /// Whether this next hop is one RFC 4760/2545/8950 allow for `family`.
    pub fn fits(&self, family: Family) -> bool {
        matches!(
            (self, family.afi),
            (MpNextHop::Ipv4(_), Afi::Ipv4) | (MpNextHop::Ipv6 { .. }, Afi::Ipv4 | Afi::Ipv6)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpReach {
    pub family: Family,
    pub next_hop: MpNextHop,
    pub nlri: Vec<Nlri>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpUnreach {
    pub family: Family,
    pub withdrawn: Vec<Nlri>,
}

/// Why an MP attribute could not be decoded; every case but the first
/// resets the session (RFC 7606 §7.11: the NLRI cannot be located reliably).
pub(crate) enum MpError {
    /// Not an IPv4/IPv6 unicast family: the caller keeps it opaque.
    UnsupportedFamily,
    Malformed,
    /// RFC 7606 §7.11: a next-hop length that is not one RFC 4760, RFC 2545
    /// or RFC 8950 allow for the AFI/SAFI. The NLRI follow the next hop, so
    /// they cannot be located reliably: "session reset" (or "AFI/SAFI
    /// disable") MUST be used, never treat-as-withdraw.
    NextHopLength,
}

fn family(input: &[u8]) -> PResult<'_, Family> {
    let (input, afi) = be_u16(input)?;
    let (input, safi) = be_u8(input)?;
    Ok((input, Family::new(afi, safi)))
}

impl MpReach {
    pub(crate) fn decode(input: &[u8], add_path: crate::AddPath) -> Result<MpReach, MpError> {
        let (rest, family) = family(input).map_err(|_| MpError::Malformed)?;
        if !family.is_supported() {
            return Err(MpError::UnsupportedFamily);
        }
        let (rest, nh_len) = be_u8(rest).map_err(|_| MpError::Malformed)?;
        let (rest, nh) = take_n(rest, usize::from(nh_len)).map_err(|_| MpError::Malformed)?;
        // RFC 4760 §3: one reserved octet, "MUST be set to 0, and SHOULD be
        // ignored upon receipt".
        let (rest, _reserved) = be_u8(rest).map_err(|_| MpError::Malformed)?;
        let next_hop = MpNextHop::decode(nh)
            .filter(|next_hop| next_hop.fits(family))
            .ok_or(MpError::NextHopLength)?;
        let nlri = prefix::prefixes(rest, family.afi, add_path.applies_to(family))
            .map_err(|_| MpError::Malformed)?;
        Ok(MpReach {
            family,
            next_hop,
            nlri,
        })
    }

    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u16(self.family.afi.into());
        out.put_u8(self.family.safi.into());
        let at = begin_u8(out);
        self.next_hop.encode(out);
        finish_u8(out, at, "MP_REACH_NLRI next hop")?;
        out.put_u8(0);
        prefix::encode_all(&self.nlri, out);
        Ok(())
    }
}

impl MpUnreach {
    pub(crate) fn decode(input: &[u8], add_path: crate::AddPath) -> Result<MpUnreach, MpError> {
        let (rest, family) = family(input).map_err(|_| MpError::Malformed)?;
        if !family.is_supported() {
            return Err(MpError::UnsupportedFamily);
        }
        let withdrawn = prefix::prefixes(rest, family.afi, add_path.applies_to(family))
            .map_err(|_| MpError::Malformed)?;
        Ok(MpUnreach { family, withdrawn })
    }

    pub(crate) fn encode(&self, out: &mut BytesMut) {
        out.put_u16(self.family.afi.into());
        out.put_u8(self.family.safi.into());
        prefix::encode_all(&self.withdrawn, out);
    }
}
