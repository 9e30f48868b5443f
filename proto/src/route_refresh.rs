//! ROUTE-REFRESH message (RFC 2918 §3) with the RFC 7313 §3 subtypes.
//!
//! ```text
//!  0       7      15      23      31
//! +-------+-------+-------+-------+
//! |      AFI      | Subtype | SAFI|
//! +-------+-------+-------+-------+
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::DecodeError;
use crate::family::Family;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteRefreshSubtype {
    /// 0: a plain route refresh request.
    Normal,
    /// 1: beginning of a route refresh (enhanced route refresh).
    BeginningOfRefresh,
    /// 2: end of a route refresh (enhanced route refresh).
    EndOfRefresh,
    Unknown(u8),
}

impl From<u8> for RouteRefreshSubtype {
    fn from(v: u8) -> Self {
        match v {
            0 => RouteRefreshSubtype::Normal,
            1 => RouteRefreshSubtype::BeginningOfRefresh,
            2 => RouteRefreshSubtype::EndOfRefresh,
            other => RouteRefreshSubtype::Unknown(other),
        }
    }
}

impl From<RouteRefreshSubtype> for u8 {
    fn from(s: RouteRefreshSubtype) -> u8 {
        match s {
            RouteRefreshSubtype::Normal => 0,
            RouteRefreshSubtype::BeginningOfRefresh => 1,
            RouteRefreshSubtype::EndOfRefresh => 2,
            RouteRefreshSubtype::Unknown(other) => other,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteRefresh {
    pub family: Family,
    pub subtype: RouteRefreshSubtype,
}

impl RouteRefresh {
    pub fn new(family: Family) -> RouteRefresh {
        RouteRefresh {
            family,
            subtype: RouteRefreshSubtype::Normal,
        }
    }

    /// `message` is the whole message, header included: RFC 7313 §5 puts
    /// it in the NOTIFICATION when the length is wrong.
    ///
    /// RFC 7313 §5 checks the length of subtypes 1 and 2 only (BoRR, EoRR:
    /// exactly 4 octets). A subtype-0 request may be longer: RFC 5291 §4
    /// appends the when-to-refresh octet and ORF entries, which routers with
    /// outbound route filtering configured send. We advertise no ORF
    /// capability, so the entries are ignored and the message is the plain
    /// route refresh it also is (RFC 2918 §4). Other subtypes are reserved:
    /// RFC 7313 §4 says to ignore them, which the session does, whatever
    /// their length.
    pub(crate) fn decode(body: &[u8], message: &[u8]) -> Result<RouteRefresh, DecodeError> {
        let length_error = || DecodeError::RouteRefreshLength {
            message: Bytes::copy_from_slice(message),
        };
        let (&[a1, a2, subtype, safi], rest) =
            body.split_first_chunk::<4>().ok_or_else(length_error)?;
        let subtype = RouteRefreshSubtype::from(subtype);
        let enhanced = matches!(
            subtype,
            RouteRefreshSubtype::BeginningOfRefresh | RouteRefreshSubtype::EndOfRefresh
        );
        if enhanced && !rest.is_empty() {
            return Err(length_error());
        }
        Ok(RouteRefresh {
            family: Family::new(u16::from_be_bytes([a1, a2]), safi),
            subtype,
        })
    }

    pub(crate) fn encode_body(&self, out: &mut BytesMut) {
        out.put_u16(self.family.afi.into());
        out.put_u8(self.subtype.into());
        out.put_u8(self.family.safi.into());
    }
}
