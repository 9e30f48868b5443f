//! Newtypes whose constructors keep the protocol's rules.

use std::fmt;

/// RFC 6793 §9: the two-octet AS number used in place of a four-octet ASN
/// that does not fit, in the OPEN's My Autonomous System field and in
/// AS_PATH towards two-octet speakers.
pub const AS_TRANS: u16 = 23456;

/// An autonomous system number (four-octet capable, RFC 6793).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Asn(pub u32);

impl Asn {
    /// The value for a two-octet field: the ASN itself when it fits, AS_TRANS
    /// only when it does not (RFC 6793 §4.2.1). Writing AS_TRANS for an ASN
    /// that fits would make a two-octet peer see the wrong AS.
    pub fn two_octet(self) -> u16 {
        u16::try_from(self.0).unwrap_or(AS_TRANS)
    }

    /// Whether the ASN needs four octets.
    pub fn is_four_octet(self) -> bool {
        self.0 > u32::from(u16::MAX)
    }
}

impl fmt::Display for Asn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u32> for Asn {
    fn from(value: u32) -> Self {
        Asn(value)
    }
}

/// A BGP hold time in seconds: zero (no keepalives, no hold timer) or at
/// least three (RFC 4271 §4.2: "MUST be either zero or at least three").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HoldTime(u16);

impl HoldTime {
    pub const DISABLED: HoldTime = HoldTime(0);

    /// `None` for the forbidden values 1 and 2.
    pub fn new(seconds: u16) -> Option<HoldTime> {
        match seconds {
            1 | 2 => None,
            s => Some(HoldTime(s)),
        }
    }

    pub fn seconds(self) -> u16 {
        self.0
    }

    /// `None` means the timers are off, never "expire immediately".
    pub fn duration(self) -> Option<std::time::Duration> {
        match self.0 {
            0 => None,
            s => Some(std::time::Duration::from_secs(u64::from(s))),
        }
    }
}
