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
    pub(crate) fn decode(body: &[u8], message: &[u8]) -> Result<RouteRefresh, DecodeError> {
        match *body {
            [a1, a2, subtype, safi] => Ok(RouteRefresh {
                family: Family::new(u16::from_be_bytes([a1, a2]), safi),
                subtype: subtype.into(),
            }),
            _ => Err(DecodeError::RouteRefreshLength {
                message: Bytes::copy_from_slice(message),
            }),
        }
    }

    pub(crate) fn encode_body(&self, out: &mut BytesMut) {
        out.put_u16(self.family.afi.into());
        out.put_u8(self.subtype.into());
        out.put_u8(self.family.safi.into());
    }
}
