//! COMMUNITIES (type 8, RFC 1997), EXTENDED_COMMUNITIES (type 16, RFC 4360)
//! and LARGE_COMMUNITY (type 32, RFC 8092).

use std::fmt;

/// A standard community: two 16-bit halves, usually `ASN:value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    /// RFC 8326 §3: "this route is about to go away; prefer another".
    pub const GRACEFUL_SHUTDOWN: Community = Community(0xFFFF_0000);
    /// RFC 7611.
    pub const ACCEPT_OWN: Community = Community(0xFFFF_0001);
    /// RFC 9494.
    pub const LLGR_STALE: Community = Community(0xFFFF_0006);
    pub const NO_LLGR: Community = Community(0xFFFF_0007);
    /// RFC 7999.
    pub const BLACKHOLE: Community = Community(0xFFFF_029A);
    /// RFC 1997.
    pub const NO_EXPORT: Community = Community(0xFFFF_FF01);
    pub const NO_ADVERTISE: Community = Community(0xFFFF_FF02);
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xFFFF_FF03);
    /// RFC 3765.
    pub const NO_PEER: Community = Community(0xFFFF_FF04);

    pub fn new(high: u16, low: u16) -> Community {
        Community((u32::from(high) << 16) | u32::from(low))
    }

    pub fn high(self) -> u16 {
        u16::try_from(self.0 >> 16).unwrap_or(0)
    }

    pub fn low(self) -> u16 {
        u16::try_from(self.0 & 0xffff).unwrap_or(0)
    }

    /// The registered name of a well-known community.
    pub fn well_known_name(self) -> Option<&'static str> {
        Some(match self {
            Community::GRACEFUL_SHUTDOWN => "GRACEFUL_SHUTDOWN",
            Community::ACCEPT_OWN => "ACCEPT_OWN",
            Community::LLGR_STALE => "LLGR_STALE",
            Community::NO_LLGR => "NO_LLGR",
            Community::BLACKHOLE => "BLACKHOLE",
            Community::NO_EXPORT => "NO_EXPORT",
            Community::NO_ADVERTISE => "NO_ADVERTISE",
            Community::NO_EXPORT_SUBCONFED => "NO_EXPORT_SUBCONFED",
            Community::NO_PEER => "NO_PEER",
            _ => return None,
        })
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.high(), self.low())
    }
}

/// Parse `"65000:100"` or a well-known name such as `"GRACEFUL_SHUTDOWN"`
/// (also spelled `graceful-shutdown`).
impl std::str::FromStr for Community {
    type Err = String;

    fn from_str(s: &str) -> Result<Community, String> {
        let named = [
            Community::GRACEFUL_SHUTDOWN,
            Community::ACCEPT_OWN,
            Community::LLGR_STALE,
            Community::NO_LLGR,
            Community::BLACKHOLE,
            Community::NO_EXPORT,
            Community::NO_ADVERTISE,
            Community::NO_EXPORT_SUBCONFED,
            Community::NO_PEER,
        ];
        let normal = s.trim().to_ascii_uppercase().replace('-', "_");
        if let Some(c) = named
            .iter()
            .find(|c| c.well_known_name() == Some(normal.as_str()))
        {
            return Ok(*c);
        }
        let (high, low) = s
            .split_once(':')
            .ok_or_else(|| format!("\"{s}\" is not ASN:VALUE or a well-known community name"))?;
        let part = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| format!("\"{p}\" in \"{s}\" is not a number from 0 to 65535"))
        };
        Ok(Community::new(part(high)?, part(low)?))
    }
}

/// An RFC 4360 extended community: type, subtype and six octets of value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtendedCommunity(pub [u8; 8]);

impl ExtendedCommunity {
    /// RFC 4360 §4: transitive two-octet-AS-specific route target
    /// (type 0x00, subtype 0x02).
    pub fn route_target(asn: u16, value: u32) -> ExtendedCommunity {
        let [a, b] = asn.to_be_bytes();
        let [c, d, e, f] = value.to_be_bytes();
        ExtendedCommunity([0x00, 0x02, a, b, c, d, e, f])
    }

    pub fn type_high(&self) -> u8 {
        self.0[0]
    }

    pub fn subtype(&self) -> u8 {
        self.0[1]
    }
}

impl fmt::Display for ExtendedCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [t, s, a, b, c, d, e, g] = self.0;
        match (t & 0x3f, s) {
            (0x00, 0x02) => write!(
                f,
                "rt:{}:{}",
                u16::from_be_bytes([a, b]),
                u32::from_be_bytes([c, d, e, g])
            ),
            (0x00, 0x03) => write!(
                f,
                "soo:{}:{}",
                u16::from_be_bytes([a, b]),
                u32::from_be_bytes([c, d, e, g])
            ),
            _ => write!(
                f,
                "0x{}",
                self.0
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            ),
        }
    }
}

/// RFC 8092: global administrator, two local data parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    pub global: u32,
    pub local1: u32,
    pub local2: u32,
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
}

/// Parse `"4200000001:1:2"`.
impl std::str::FromStr for LargeCommunity {
    type Err = String;

    fn from_str(s: &str) -> Result<LargeCommunity, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let [g, l1, l2] = parts.as_slice() else {
            return Err(format!("\"{s}\" is not GLOBAL:LOCAL1:LOCAL2"));
        };
        let part = |p: &str| {
            p.trim()
                .parse::<u32>()
                .map_err(|_| format!("\"{p}\" in \"{s}\" is not a number from 0 to 4294967295"))
        };
        Ok(LargeCommunity {
            global: part(g)?,
            local1: part(l1)?,
            local2: part(l2)?,
        })
    }
}
