//! Path attributes (RFC 4271 §4.3 / §5) and the RFC 7606 rules for each.
//!
//! ```text
//!  0                   1
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Attr. Flags  |Attr. Type Code|  Length (1 octet, or 2 with the
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  Extended Length flag), then value
//! ```

mod as_path;
mod community;
mod mp;

use std::net::Ipv4Addr;

use bytes::{BufMut, Bytes, BytesMut};

pub use as_path::{AsPath, Segment, SegmentType};
pub use community::{Community, ExtendedCommunity, LargeCommunity};
pub use mp::{MpNextHop, MpReach, MpUnreach};

use crate::context::Context;
use crate::encode::EncodeError;
use crate::error::{attribute_bytes, DecodeError, Treatment};
use crate::parse::{be_u16, be_u32, ipv4};

/// Attribute flag bits (RFC 4271 §4.3), as bit masks.
pub mod flags {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
    /// The two bits whose values each attribute's specification fixes.
    pub(crate) const CATEGORY: u8 = OPTIONAL | TRANSITIVE;
    /// Well-known (mandatory or discretionary).
    pub const WELL_KNOWN: u8 = TRANSITIVE;
    pub const OPTIONAL_TRANSITIVE: u8 = OPTIONAL | TRANSITIVE;
    pub const OPTIONAL_NON_TRANSITIVE: u8 = OPTIONAL;
}

/// IANA "BGP Path Attributes" type codes we decode.
pub mod type_code {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const LARGE_COMMUNITY: u8 = 32;
}

/// ORIGIN values (RFC 4271 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    Igp,
    Egp,
    Incomplete,
}

impl Origin {
    fn from_u8(v: u8) -> Option<Origin> {
        Some(match v {
            0 => Origin::Igp,
            1 => Origin::Egp,
            2 => Origin::Incomplete,
            _ => return None,
        })
    }

    fn code(self) -> u8 {
        match self {
            Origin::Igp => 0,
            Origin::Egp => 1,
            Origin::Incomplete => 2,
        }
    }
}

/// AGGREGATOR / AS4_AGGREGATOR value: the AS and router that aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    Origin(Origin),
    AsPath(AsPath),
    NextHop(Ipv4Addr),
    MultiExitDisc(u32),
    LocalPref(u32),
    AtomicAggregate,
    Aggregator(Aggregator),
    Communities(Vec<Community>),
    OriginatorId(Ipv4Addr),
    ClusterList(Vec<Ipv4Addr>),
    MpReach(MpReach),
    MpUnreach(MpUnreach),
    ExtendedCommunities(Vec<ExtendedCommunity>),
    As4Path(AsPath),
    As4Aggregator(Aggregator),
    LargeCommunities(Vec<LargeCommunity>),
    /// Any other attribute, and MP attributes of families we do not decode,
    /// kept as received.
    Unknown {
        type_code: u8,
        value: Bytes,
    },
}

impl AttributeValue {
    pub fn type_code(&self) -> u8 {
        use type_code as t;
        match self {
            AttributeValue::Origin(_) => t::ORIGIN,
            AttributeValue::AsPath(_) => t::AS_PATH,
            AttributeValue::NextHop(_) => t::NEXT_HOP,
            AttributeValue::MultiExitDisc(_) => t::MULTI_EXIT_DISC,
            AttributeValue::LocalPref(_) => t::LOCAL_PREF,
            AttributeValue::AtomicAggregate => t::ATOMIC_AGGREGATE,
            AttributeValue::Aggregator(_) => t::AGGREGATOR,
            AttributeValue::Communities(_) => t::COMMUNITIES,
            AttributeValue::OriginatorId(_) => t::ORIGINATOR_ID,
            AttributeValue::ClusterList(_) => t::CLUSTER_LIST,
            AttributeValue::MpReach(_) => t::MP_REACH_NLRI,
            AttributeValue::MpUnreach(_) => t::MP_UNREACH_NLRI,
            AttributeValue::ExtendedCommunities(_) => t::EXTENDED_COMMUNITIES,
            AttributeValue::As4Path(_) => t::AS4_PATH,
            AttributeValue::As4Aggregator(_) => t::AS4_AGGREGATOR,
            AttributeValue::LargeCommunities(_) => t::LARGE_COMMUNITY,
            AttributeValue::Unknown { type_code, .. } => *type_code,
        }
    }
}

/// The category (optional/transitive bits) each known attribute must carry.
fn expected_category(code: u8) -> Option<u8> {
    use type_code as t;
    Some(match code {
        t::ORIGIN | t::AS_PATH | t::NEXT_HOP | t::LOCAL_PREF | t::ATOMIC_AGGREGATE => {
            flags::WELL_KNOWN
        }
        t::MULTI_EXIT_DISC
        | t::ORIGINATOR_ID
        | t::CLUSTER_LIST
        | t::MP_REACH_NLRI
        | t::MP_UNREACH_NLRI => flags::OPTIONAL_NON_TRANSITIVE,
        t::AGGREGATOR
        | t::COMMUNITIES
        | t::EXTENDED_COMMUNITIES
        | t::AS4_PATH
        | t::AS4_AGGREGATOR
        | t::LARGE_COMMUNITY => flags::OPTIONAL_TRANSITIVE,
        _ => return None,
    })
}

/// One path attribute. `flags` are kept as received (the partial bit and
/// the unused low bits matter when passing an attribute on); the extended
/// length bit is recomputed on encode whenever the value needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub flags: u8,
    pub value: AttributeValue,
}

/// The result of decoding one attribute: the value, when there is one worth
/// keeping, and the RFC 7606 error, when there is one.
pub(crate) struct Decoded {
    pub attribute: Option<Attribute>,
    pub error: Option<(DecodeError, Treatment)>,
}

impl Attribute {
    /// An attribute with the flags its specification prescribes.
    pub fn new(value: AttributeValue) -> Attribute {
        let flags = expected_category(value.type_code()).unwrap_or(flags::OPTIONAL_TRANSITIVE);
        Attribute { flags, value }
    }

    pub fn type_code(&self) -> u8 {
        self.value.type_code()
    }

    pub(crate) fn decode(flags: u8, code: u8, value: &[u8], ctx: &Context) -> Decoded {
        let whole = || attribute_bytes(flags, code, value);
        // RFC 7606 §3(c): optional/transitive bits that conflict with the
        // attribute's definition make it malformed: treat-as-withdraw.
        let flags_error = expected_category(code)
            .filter(|&expected| flags & flags::CATEGORY != expected)
            .map(|_| {
                (
                    DecodeError::AttributeFlags {
                        type_code: code,
                        attribute: whole(),
                    },
                    Treatment::TreatAsWithdraw,
                )
            });
        let (value, value_error) = match decode_value(flags, code, value, ctx) {
            Ok((v, e)) => (Some(v), e),
            Err(e) => (None, Some(e)),
        };
        let error = match (flags_error, value_error) {
            (Some(a), Some(b)) => Some(if b.1 > a.1 { b } else { a }),
            (a, b) => a.or(b),
        };
        Decoded {
            attribute: value.map(|value| Attribute { flags, value }),
            error,
        }
    }

    /// Write flags, type, length and value. The extended-length flag is set
    /// whenever the value is longer than 255 octets (and kept if it was set).
    pub(crate) fn encode(&self, ctx: &Context, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        out.put_u8(self.flags);
        out.put_u8(self.type_code());
        out.put_u16(0);
        let value_at = out.len();
        self.encode_value(ctx, out)?;
        let len = out.len() - value_at;
        let len16 = u16::try_from(len).map_err(|_| EncodeError::ValueTooLarge {
            what: "path attribute",
            len,
            max: usize::from(u16::MAX),
        })?;
        let extended = len > 255 || self.flags & flags::EXTENDED_LENGTH != 0;
        if extended {
            if let Some(f) = out.get_mut(start) {
                *f |= flags::EXTENDED_LENGTH;
            }
            if let Some(l) = out.get_mut(start + 2..start + 4) {
                l.copy_from_slice(&len16.to_be_bytes());
            }
        } else {
            // One-octet length: move the value down over the spare octet.
            out.copy_within(value_at.., value_at - 1);
            out.truncate(out.len() - 1);
            if let Some(l) = out.get_mut(start + 2) {
                *l = u8::try_from(len).unwrap_or(u8::MAX);
            }
        }
        Ok(())
    }

    fn encode_value(&self, ctx: &Context, out: &mut BytesMut) -> Result<(), EncodeError> {
        match &self.value {
            AttributeValue::Origin(o) => out.put_u8(o.code()),
            AttributeValue::AsPath(p) => p.encode(out, ctx.four_octet_as)?,
            AttributeValue::NextHop(a) | AttributeValue::OriginatorId(a) => {
                out.put_slice(&a.octets())
            }
            AttributeValue::MultiExitDisc(v) | AttributeValue::LocalPref(v) => out.put_u32(*v),
            AttributeValue::AtomicAggregate => {}
            AttributeValue::Aggregator(a) => {
                if ctx.four_octet_as {
                    out.put_u32(a.asn);
                } else {
                    out.put_u16(
                        u16::try_from(a.asn)
                            .map_err(|_| EncodeError::AsnNeedsFourOctets { asn: a.asn })?,
                    );
                }
                out.put_slice(&a.address.octets());
            }
            AttributeValue::Communities(cs) => cs.iter().for_each(|c| out.put_u32(c.0)),
            AttributeValue::ClusterList(ids) => {
                ids.iter().for_each(|id| out.put_slice(&id.octets()))
            }
            AttributeValue::MpReach(r) => r.encode(out)?,
            AttributeValue::MpUnreach(u) => u.encode(out),
            AttributeValue::ExtendedCommunities(cs) => cs.iter().for_each(|c| out.put_slice(&c.0)),
            // RFC 6793 §3: AS4_PATH always carries four-octet ASNs.
            AttributeValue::As4Path(p) => p.encode(out, true)?,
            AttributeValue::As4Aggregator(a) => {
                out.put_u32(a.asn);
                out.put_slice(&a.address.octets());
            }
            AttributeValue::LargeCommunities(cs) => cs.iter().for_each(|c| {
                out.put_u32(c.global);
                out.put_u32(c.local1);
                out.put_u32(c.local2);
            }),
            AttributeValue::Unknown { value, .. } => out.put_slice(value),
        }
        Ok(())
    }
}

type ValueResult =
    Result<(AttributeValue, Option<(DecodeError, Treatment)>), (DecodeError, Treatment)>;

/// Decode one attribute value with the per-attribute rules of RFC 7606 §7
/// (and RFC 6793 §6, RFC 8092 §6, RFC 4760 §7).
fn decode_value(flags: u8, code: u8, value: &[u8], ctx: &Context) -> ValueResult {
    use type_code as t;
    use Treatment::{AttributeDiscard, SessionReset, TreatAsWithdraw};
    let whole = || attribute_bytes(flags, code, value);
    let length = |treatment| {
        (
            DecodeError::AttributeLength {
                type_code: code,
                attribute: whole(),
            },
            treatment,
        )
    };
    let fixed4 = |treatment| -> Result<u32, (DecodeError, Treatment)> {
        match be_u32(value) {
            Ok(([], v)) => Ok(v),
            _ => Err(length(treatment)),
        }
    };
    // A list of fixed-size items that must be non-empty (RFC 7606 §7.8,
    // §7.10, §7.14, RFC 8092 §6).
    let chunks =
        |size: usize| -> Result<std::slice::ChunksExact<'_, u8>, (DecodeError, Treatment)> {
            if value.is_empty() || value.len() % size != 0 {
                Err(length(TreatAsWithdraw))
            } else {
                Ok(value.chunks_exact(size))
            }
        };
    let v = match code {
        // RFC 7606 §7.1: wrong length or undefined value: treat-as-withdraw.
        t::ORIGIN => match *value {
            [o] => AttributeValue::Origin(Origin::from_u8(o).ok_or_else(|| {
                (
                    DecodeError::InvalidOrigin { attribute: whole() },
                    TreatAsWithdraw,
                )
            })?),
            _ => return Err(length(TreatAsWithdraw)),
        },
        // RFC 7606 §7.2.
        t::AS_PATH => AttributeValue::AsPath(
            AsPath::decode(value, ctx.four_octet_as)
                .map_err(|reason| (DecodeError::MalformedAsPath { reason }, TreatAsWithdraw))?,
        ),
        // RFC 7606 §7.3.
        t::NEXT_HOP => AttributeValue::NextHop(Ipv4Addr::from(fixed4(TreatAsWithdraw)?)),
        // RFC 7606 §7.4, §7.5.
        t::MULTI_EXIT_DISC => AttributeValue::MultiExitDisc(fixed4(TreatAsWithdraw)?),
        t::LOCAL_PREF => AttributeValue::LocalPref(fixed4(TreatAsWithdraw)?),
        // RFC 7606 §7.6: a value on ATOMIC_AGGREGATE: attribute discard.
        t::ATOMIC_AGGREGATE if value.is_empty() => AttributeValue::AtomicAggregate,
        t::ATOMIC_AGGREGATE => return Err(length(AttributeDiscard)),
        // RFC 7606 §7.7: length must match the session's AS width, else
        // attribute discard.
        t::AGGREGATOR => AttributeValue::Aggregator(
            aggregator(value, ctx.four_octet_as).ok_or_else(|| length(AttributeDiscard))?,
        ),
        // RFC 6793 §6: a malformed AS4_AGGREGATOR is discarded.
        t::AS4_AGGREGATOR => AttributeValue::As4Aggregator(
            aggregator(value, true).ok_or_else(|| length(AttributeDiscard))?,
        ),
        t::COMMUNITIES => {
            AttributeValue::Communities(chunks(4)?.map(|c| Community(u32_of(c))).collect())
        }
        // RFC 7606 §7.9.
        t::ORIGINATOR_ID => AttributeValue::OriginatorId(Ipv4Addr::from(fixed4(TreatAsWithdraw)?)),
        t::CLUSTER_LIST => {
            AttributeValue::ClusterList(chunks(4)?.map(|c| Ipv4Addr::from(u32_of(c))).collect())
        }
        t::EXTENDED_COMMUNITIES => AttributeValue::ExtendedCommunities(
            chunks(8)?
                .map(|c| ExtendedCommunity(<[u8; 8]>::try_from(c).unwrap_or_default()))
                .collect(),
        ),
        t::LARGE_COMMUNITY => AttributeValue::LargeCommunities(
            chunks(12)?
                .map(|c| {
                    let (a, rest) = c.split_at(4);
                    let (b, d) = rest.split_at(4);
                    LargeCommunity {
                        global: u32_of(a),
                        local1: u32_of(b),
                        local2: u32_of(d),
                    }
                })
                .collect(),
        ),
        // RFC 6793 §6: a malformed AS4_PATH is discarded.
        t::AS4_PATH => AttributeValue::As4Path(
            AsPath::decode(value, true)
                .map_err(|reason| (DecodeError::MalformedAsPath { reason }, AttributeDiscard))?,
        ),
        t::MP_REACH_NLRI => {
            let optional_error = || DecodeError::OptionalAttribute {
                type_code: code,
                attribute: whole(),
            };
            match MpReach::decode(value, ctx.add_path) {
                Ok(reach) => AttributeValue::MpReach(reach),
                Err(mp::MpError::UnsupportedFamily) => unknown(code, value),
                // RFC 7606 §5.3 / §7.11: NLRI that cannot be parsed, or
                // located, reliably (a next hop of the wrong length for the
                // AFI/SAFI hides where they start). RFC 4760 §7 names the
                // NOTIFICATION: UPDATE Message Error / Optional Attribute Error.
                Err(mp::MpError::Malformed | mp::MpError::NextHopLength) => {
                    return Err((optional_error(), SessionReset))
                }
            }
        }
        t::MP_UNREACH_NLRI => match MpUnreach::decode(value, ctx.add_path) {
            Ok(unreach) => AttributeValue::MpUnreach(unreach),
            Err(mp::MpError::UnsupportedFamily) => unknown(code, value),
            // Withdrawn routes that cannot be parsed (it has no next hop).
            Err(mp::MpError::Malformed | mp::MpError::NextHopLength) => {
                return Err((
                    DecodeError::OptionalAttribute {
                        type_code: code,
                        attribute: whole(),
                    },
                    SessionReset,
                ))
            }
        },
        // RFC 4271 §6.3: an unrecognized well-known attribute.
        _ if flags & flags::OPTIONAL == 0 => {
            return Err((
                DecodeError::UnrecognizedWellKnownAttribute {
                    type_code: code,
                    attribute: whole(),
                },
                SessionReset,
            ))
        }
        _ => unknown(code, value),
    };
    Ok((v, None))
}

fn unknown(code: u8, value: &[u8]) -> AttributeValue {
    AttributeValue::Unknown {
        type_code: code,
        value: Bytes::copy_from_slice(value),
    }
}

/// Big-endian u32 of a 4-octet chunk (chunks_exact guarantees the size).
fn u32_of(c: &[u8]) -> u32 {
    <[u8; 4]>::try_from(c)
        .map(u32::from_be_bytes)
        .unwrap_or_default()
}

fn aggregator(value: &[u8], four_octet: bool) -> Option<Aggregator> {
    let (rest, asn) = if four_octet {
        be_u32(value).ok()?
    } else {
        be_u16(value).map(|(r, a)| (r, u32::from(a))).ok()?
    };
    match ipv4(rest).ok()? {
        ([], address) => Some(Aggregator { asn, address }),
        _ => None,
    }
}
