//! UPDATE message (RFC 4271 §4.3), decoded with the revised error handling
//! of RFC 7606.
//!
//! ```text
//! +-----------------------------------------------------+
//! |   Withdrawn Routes Length (2 octets)                |
//! +-----------------------------------------------------+
//! |   Withdrawn Routes (variable)                       |
//! +-----------------------------------------------------+
//! |   Total Path Attribute Length (2 octets)            |
//! +-----------------------------------------------------+
//! |   Path Attributes (variable)                        |
//! +-----------------------------------------------------+
//! |   Network Layer Reachability Information (variable) |
//! +-----------------------------------------------------+
//! ```

use std::net::Ipv4Addr;

use bytes::BytesMut;

use crate::attribute::{
    flags, type_code, AsPath, Attribute, AttributeValue, Community, LargeCommunity, MpReach,
    MpUnreach, Origin,
};
use crate::context::Context;
use crate::encode::{begin_u16, finish_u16, EncodeError};
use crate::error::{AttributeError, DecodeError, Treatment};
use crate::family::{Afi, Family};
use crate::parse::{be_u16, be_u8, take_n, OrDecodeError};
use crate::prefix::{self, Nlri};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    /// IPv4 unicast prefixes withdrawn in the classic field.
    pub withdrawn: Vec<Nlri>,
    /// In wire order.
    pub attributes: Vec<Attribute>,
    /// IPv4 unicast prefixes announced in the classic field.
    pub nlri: Vec<Nlri>,
    /// RFC 7606 errors found while decoding that did not reset the session
    /// (empty for UPDATEs we build; not encoded).
    pub errors: Vec<AttributeError>,
}

/// A set of the 256 attribute type codes.
#[derive(Default)]
struct TypeSet([u64; 4]);

impl TypeSet {
    /// Insert, returning whether it was new.
    fn insert(&mut self, code: u8) -> bool {
        let (word, bit) = (usize::from(code / 64), code % 64);
        match self.0.get_mut(word) {
            Some(w) => {
                let new = *w & (1 << bit) == 0;
                *w |= 1 << bit;
                new
            }
            None => false,
        }
    }

    fn contains(&self, code: u8) -> bool {
        let (word, bit) = (usize::from(code / 64), code % 64);
        self.0.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }
}

impl Update {
    /// RFC 4724 §2: the End-of-RIB marker for `family`: an empty UPDATE for
    /// IPv4 unicast, an UPDATE with an empty MP_UNREACH_NLRI otherwise.
    pub fn end_of_rib(family: Family) -> Update {
        if family == Family::IPV4_UNICAST {
            return Update::default();
        }
        Update {
            attributes: vec![Attribute::new(AttributeValue::MpUnreach(MpUnreach {
                family,
                withdrawn: Vec::new(),
            }))],
            ..Update::default()
        }
    }

    /// The family this UPDATE is the End-of-RIB marker of, if it is one.
    pub fn end_of_rib_family(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        match self.attributes.as_slice() {
            [] => Some(Family::IPV4_UNICAST),
            [a] => match &a.value {
                AttributeValue::MpUnreach(u) if u.withdrawn.is_empty() => Some(u.family),
                AttributeValue::Unknown {
                    type_code: type_code::MP_UNREACH_NLRI,
                    value,
                } => match **value {
                    [a1, a2, safi] => Some(Family::new(u16::from_be_bytes([a1, a2]), safi)),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        }
    }

    /// The strongest RFC 7606 treatment among the errors found, if any.
    pub fn treatment(&self) -> Option<Treatment> {
        self.errors.iter().map(|e| e.treatment).max()
    }

    pub fn attribute(&self, code: u8) -> Option<&AttributeValue> {
        self.attributes
            .iter()
            .map(|a| &a.value)
            .find(|v| v.type_code() == code)
    }

    pub fn origin(&self) -> Option<Origin> {
        match self.attribute(type_code::ORIGIN)? {
            AttributeValue::Origin(o) => Some(*o),
            _ => None,
        }
    }

    pub fn as_path(&self) -> Option<&AsPath> {
        match self.attribute(type_code::AS_PATH)? {
            AttributeValue::AsPath(p) => Some(p),
            _ => None,
        }
    }

    pub fn as4_path(&self) -> Option<&AsPath> {
        match self.attribute(type_code::AS4_PATH)? {
            AttributeValue::As4Path(p) => Some(p),
            _ => None,
        }
    }

    pub fn next_hop(&self) -> Option<Ipv4Addr> {
        match self.attribute(type_code::NEXT_HOP)? {
            AttributeValue::NextHop(a) => Some(*a),
            _ => None,
        }
    }

    pub fn multi_exit_disc(&self) -> Option<u32> {
        match self.attribute(type_code::MULTI_EXIT_DISC)? {
            AttributeValue::MultiExitDisc(v) => Some(*v),
            _ => None,
        }
    }

    pub fn local_pref(&self) -> Option<u32> {
        match self.attribute(type_code::LOCAL_PREF)? {
            AttributeValue::LocalPref(v) => Some(*v),
            _ => None,
        }
    }

    pub fn communities(&self) -> &[Community] {
        match self.attribute(type_code::COMMUNITIES) {
            Some(AttributeValue::Communities(c)) => c,
            _ => &[],
        }
    }

    pub fn large_communities(&self) -> &[LargeCommunity] {
        match self.attribute(type_code::LARGE_COMMUNITY) {
            Some(AttributeValue::LargeCommunities(c)) => c,
            _ => &[],
        }
    }

    pub fn mp_reach(&self) -> Option<&MpReach> {
        match self.attribute(type_code::MP_REACH_NLRI)? {
            AttributeValue::MpReach(r) => Some(r),
            _ => None,
        }
    }

    pub fn mp_unreach(&self) -> Option<&MpUnreach> {
        match self.attribute(type_code::MP_UNREACH_NLRI)? {
            AttributeValue::MpUnreach(u) => Some(u),
            _ => None,
        }
    }

    /// Every prefix announced, classic NLRI first, then MP_REACH_NLRI.
    pub fn announced(&self) -> impl Iterator<Item = &Nlri> {
        self.nlri.iter().chain(
            self.mp_reach()
                .map(|r| r.nlri.as_slice())
                .unwrap_or_default(),
        )
    }

    /// Every prefix withdrawn, classic field first, then MP_UNREACH_NLRI.
    pub fn withdrawn_routes(&self) -> impl Iterator<Item = &Nlri> {
        self.withdrawn.iter().chain(
            self.mp_unreach()
                .map(|u| u.withdrawn.as_slice())
                .unwrap_or_default(),
        )
    }

    /// Decode an UPDATE body. Errors that RFC 7606 handles without a
    /// session reset are recorded in [`Update::errors`]; the others are
    /// returned and mean: send their NOTIFICATION and close.
    pub(crate) fn decode(body: &[u8], ctx: &Context) -> Result<Update, DecodeError> {
        let list_error = |reason| move || DecodeError::MalformedAttributeList { reason };
        let (rest, withdrawn_len) =
            be_u16(body).or_fail(list_error("no withdrawn routes length"))?;
        let (rest, withdrawn) = take_n(rest, usize::from(withdrawn_len))
            .or_fail(list_error("withdrawn routes length overruns the message"))?;
        let (rest, attributes_len) =
            be_u16(rest).or_fail(list_error("no total path attribute length"))?;
        let (nlri, attributes) = take_n(rest, usize::from(attributes_len)).or_fail(list_error(
            "total path attribute length overruns the message",
        ))?;

        // RFC 7606 §5.3: NLRI that cannot be parsed reliably reset the
        // session.
        let network = |reason| move |()| DecodeError::InvalidNetworkField { reason };
        let withdrawn = prefix::prefixes(withdrawn, Afi::Ipv4, ctx.add_path.ipv4_unicast)
            .map_err(network("malformed prefix in withdrawn routes"))?;
        let nlri = prefix::prefixes(nlri, Afi::Ipv4, ctx.add_path.ipv4_unicast)
            .map_err(network("malformed prefix in NLRI"))?;

        let mut update = Update {
            withdrawn,
            nlri,
            ..Update::default()
        };
        let seen = update.decode_attributes(attributes, ctx)?;
        update.check_mandatory(&seen);
        Ok(update)
    }

    fn decode_attributes(
        &mut self,
        mut input: &[u8],
        ctx: &Context,
    ) -> Result<TypeSet, DecodeError> {
        let mut seen = TypeSet::default();
        while !input.is_empty() {
            let Some((flags, code, value, rest)) = split_attribute(input) else {
                // RFC 7606 §4: an attribute that overruns the total path
                // attribute length, or too few octets left for a header:
                // treat-as-withdraw, and stop parsing.
                self.errors.push(AttributeError {
                    type_code: input.get(1).copied().unwrap_or(0),
                    treatment: Treatment::TreatAsWithdraw,
                    error: DecodeError::MalformedAttributeList {
                        reason: "attribute overruns the total path attribute length",
                    },
                });
                break;
            };
            input = rest;
            if !seen.insert(code) {
                // RFC 7606 §3(g): a repeated MP attribute resets the session;
                // any other repeat is discarded after the first.
                let error = DecodeError::MalformedAttributeList {
                    reason: "attribute appears more than once",
                };
                if matches!(code, type_code::MP_REACH_NLRI | type_code::MP_UNREACH_NLRI) {
                    return Err(error);
                }
                self.errors.push(AttributeError {
                    type_code: code,
                    treatment: Treatment::AttributeDiscard,
                    error,
                });
                continue;
            }
            let decoded = Attribute::decode(flags, code, value, ctx);
            if let Some((error, treatment)) = decoded.error {
                if treatment == Treatment::SessionReset {
                    return Err(error);
                }
                self.errors.push(AttributeError {
                    type_code: code,
                    treatment,
                    error,
                });
                if treatment == Treatment::AttributeDiscard {
                    continue;
                }
            }
            if let Some(attribute) = decoded.attribute {
                self.attributes.push(attribute);
            }
        }
        Ok(seen)
    }

    /// RFC 7606 §3(d): a reachable prefix without ORIGIN or AS_PATH (or,
    /// for classic NLRI, NEXT_HOP) is treated as withdrawn.
    fn check_mandatory(&mut self, seen: &TypeSet) {
        let classic = !self.nlri.is_empty();
        let mp = self.mp_reach().is_some_and(|r| !r.nlri.is_empty());
        if !classic && !mp {
            return;
        }
        let mut required = vec![type_code::ORIGIN, type_code::AS_PATH];
        if classic {
            required.push(type_code::NEXT_HOP);
        }
        for code in required {
            if !seen.contains(code) {
                self.errors.push(AttributeError {
                    type_code: code,
                    treatment: Treatment::TreatAsWithdraw,
                    error: DecodeError::MissingWellKnownAttribute { type_code: code },
                });
            }
        }
    }

    pub(crate) fn encode_body(&self, ctx: &Context, out: &mut BytesMut) -> Result<(), EncodeError> {
        let at = begin_u16(out);
        prefix::encode_all(&self.withdrawn, out);
        finish_u16(out, at, at + 2, usize::from(u16::MAX), "withdrawn routes")?;
        let at = begin_u16(out);
        for attribute in &self.attributes {
            attribute.encode(ctx, out)?;
        }
        finish_u16(out, at, at + 2, usize::from(u16::MAX), "path attributes")?;
        prefix::encode_all(&self.nlri, out);
        Ok(())
    }
}

/// Split one attribute off the front: (flags, type, value, rest), or `None`
/// if its header or value does not fit.
fn split_attribute(input: &[u8]) -> Option<(u8, u8, &[u8], &[u8])> {
    let (rest, attr_flags) = be_u8(input).ok()?;
    let (rest, code) = be_u8(rest).ok()?;
    let (rest, len) = if attr_flags & flags::EXTENDED_LENGTH != 0 {
        be_u16(rest).ok()?
    } else {
        be_u8(rest).map(|(r, l)| (r, u16::from(l))).ok()?
    };
    let (rest, value) = take_n(rest, usize::from(len)).ok()?;
    Some((attr_flags, code, value, rest))
}
