//! IP prefixes as carried in NLRI and withdrawn-routes fields (RFC 4271 §4.3,
//! RFC 4760 §5), with the RFC 7911 path identifier when add-path is on.
//!
//! ```text
//! +---------------------------+
//! |   Length (1 octet)        |
//! +---------------------------+
//! |   Prefix (variable)       |
//! +---------------------------+
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::family::Afi;
use crate::parse::{be_u32, be_u8, take_n, PResult, Short};

/// One route: a prefix and, with add-path, its path identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nlri {
    pub path_id: Option<u32>,
    pub prefix: IpNet,
}

impl Nlri {
    pub fn new(prefix: IpNet) -> Nlri {
        Nlri {
            path_id: None,
            prefix,
        }
    }

    pub(crate) fn encode(&self, out: &mut BytesMut) {
        if let Some(id) = self.path_id {
            out.put_u32(id);
        }
        let len = self.prefix.prefix_len();
        out.put_u8(len);
        let octets = usize::from(len).div_ceil(8);
        match self.prefix.addr() {
            std::net::IpAddr::V4(a) => out.put_slice(a.octets().get(..octets).unwrap_or_default()),
            std::net::IpAddr::V6(a) => out.put_slice(a.octets().get(..octets).unwrap_or_default()),
        }
    }
}

impl From<IpNet> for Nlri {
    fn from(prefix: IpNet) -> Nlri {
        Nlri::new(prefix)
    }
}

/// Decode one prefix of `afi` (IPv4 or IPv6 only).
fn prefix(input: &[u8], afi: Afi, add_path: bool) -> PResult<'_, Nlri> {
    let (input, path_id) = if add_path {
        let (rest, id) = be_u32(input)?;
        (rest, Some(id))
    } else {
        (input, None)
    };
    let (input, len) = be_u8(input)?;
    let max = match afi {
        Afi::Ipv4 => 32,
        _ => 128,
    };
    if len > max {
        return Err(nom::Err::Failure(Short));
    }
    let (input, bytes) = take_n(input, usize::from(len).div_ceil(8))?;
    let prefix = match afi {
        Afi::Ipv4 => {
            let mut octets = [0u8; 4];
            octets
                .get_mut(..bytes.len())
                .ok_or(nom::Err::Failure(Short))?
                .copy_from_slice(bytes);
            IpNet::V4(
                Ipv4Net::new(Ipv4Addr::from(octets), len).map_err(|_| nom::Err::Failure(Short))?,
            )
        }
        _ => {
            let mut octets = [0u8; 16];
            octets
                .get_mut(..bytes.len())
                .ok_or(nom::Err::Failure(Short))?
                .copy_from_slice(bytes);
            IpNet::V6(
                Ipv6Net::new(Ipv6Addr::from(octets), len).map_err(|_| nom::Err::Failure(Short))?,
            )
        }
    };
    Ok((input, Nlri { path_id, prefix }))
}

/// Decode a whole field of prefixes; the field must be consumed exactly.
/// `Err(())` when a prefix is too long for its family or overruns the field:
/// the caller knows which NOTIFICATION that is.
pub(crate) fn prefixes(mut input: &[u8], afi: Afi, add_path: bool) -> Result<Vec<Nlri>, ()> {
    // Each prefix takes at least one octet: a cheap upper bound that keeps a
    // hostile length from making us reserve much.
    let mut out = Vec::with_capacity(input.len().min(64));
    while !input.is_empty() {
        let (rest, nlri) = prefix(input, afi, add_path).map_err(|_| ())?;
        out.push(nlri);
        input = rest;
    }
    Ok(out)
}

pub(crate) fn encode_all(nlri: &[Nlri], out: &mut BytesMut) {
    for n in nlri {
        n.encode(out);
    }
}
