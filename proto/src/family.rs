//! Address families (IANA "Address Family Numbers" and "SAFI Values").

use std::fmt;

/// Address Family Identifier. Unknown values survive a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Afi {
    Ipv4,
    Ipv6,
    Unknown(u16),
}

impl From<u16> for Afi {
    fn from(value: u16) -> Self {
        match value {
            1 => Afi::Ipv4,
            2 => Afi::Ipv6,
            other => Afi::Unknown(other),
        }
    }
}

impl From<Afi> for u16 {
    fn from(afi: Afi) -> u16 {
        match afi {
            Afi::Ipv4 => 1,
            Afi::Ipv6 => 2,
            Afi::Unknown(other) => other,
        }
    }
}

/// Subsequent Address Family Identifier. Unknown values survive a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Safi {
    Unicast,
    Multicast,
    Unknown(u8),
}

impl From<u8> for Safi {
    fn from(value: u8) -> Self {
        match value {
            1 => Safi::Unicast,
            2 => Safi::Multicast,
            other => Safi::Unknown(other),
        }
    }
}

impl From<Safi> for u8 {
    fn from(safi: Safi) -> u8 {
        match safi {
            Safi::Unicast => 1,
            Safi::Multicast => 2,
            Safi::Unknown(other) => other,
        }
    }
}

/// An (AFI, SAFI) pair, as carried in capabilities, MP_REACH/MP_UNREACH and
/// ROUTE-REFRESH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family {
    pub afi: Afi,
    pub safi: Safi,
}

impl Family {
    pub const IPV4_UNICAST: Family = Family {
        afi: Afi::Ipv4,
        safi: Safi::Unicast,
    };
    pub const IPV6_UNICAST: Family = Family {
        afi: Afi::Ipv6,
        safi: Safi::Unicast,
    };

    pub fn new(afi: impl Into<Afi>, safi: impl Into<Safi>) -> Family {
        Family {
            afi: afi.into(),
            safi: safi.into(),
        }
    }

    /// The families whose NLRI this crate decodes into prefixes; the others
    /// are carried as opaque bytes.
    pub fn is_supported(&self) -> bool {
        matches!(*self, Family::IPV4_UNICAST | Family::IPV6_UNICAST)
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Family::IPV4_UNICAST => f.write_str("ipv4-unicast"),
            Family::IPV6_UNICAST => f.write_str("ipv6-unicast"),
            Family { afi, safi } => write!(f, "afi {}/safi {}", u16::from(afi), u8::from(safi)),
        }
    }
}
