//! OPEN message (RFC 4271 §4.2) with optional parameters (RFC 5492, and the
//! RFC 9072 extended form).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+
//! |    Version    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     My Autonomous System      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Hold Time           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         BGP Identifier                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Opt Parm Len  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |             Optional Parameters (variable)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::net::Ipv4Addr;

use bytes::{BufMut, Bytes, BytesMut};

use crate::capability::Capability;
use crate::encode::{begin_u16, begin_u8, finish_u16, finish_u8, EncodeError};
use crate::error::DecodeError;
use crate::family::Family;
use crate::parse::{be_u16, be_u8, ipv4, take_n, OrDecodeError, PResult};
use crate::types::{Asn, HoldTime};

/// The only version we speak.
pub const BGP_VERSION: u8 = 4;

/// Optional parameter type 2 (RFC 5492 §4).
const PARAM_CAPABILITIES: u8 = 2;
/// RFC 9072 §2: a non-extended length and type of 255 announce the
/// extended encoding.
const PARAM_EXTENDED: u8 = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub version: u8,
    /// The two-octet field as sent: AS_TRANS when the real ASN needs four
    /// octets (then see [`Open::asn`]).
    pub my_as: u16,
    /// Seconds, as sent. Whether it is acceptable (0 or >= 3) is the
    /// session's decision (RFC 4271 §6.2), not the decoder's.
    pub hold_time: u16,
    pub bgp_identifier: Ipv4Addr,
    /// In wire order; grouping of capabilities into parameters is kept so
    /// that re-encoding reproduces the bytes.
    pub parameters: Vec<OptionalParameter>,
    /// RFC 9072 extended optional parameters length encoding was used.
    pub extended_parameters: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionalParameter {
    Capabilities(Vec<Capability>),
    /// Any other parameter type. RFC 4271 §6.2 says to answer it with
    /// "Unsupported Optional Parameter"; the session decides.
    Unknown {
        param_type: u8,
        value: Bytes,
    },
}

impl Open {
    /// An OPEN for `asn` (AS_TRANS in My AS only when the ASN needs four
    /// octets; the four-octet-AS capability is added here so the two can
    /// never disagree) with `capabilities` in one parameter.
    pub fn new(
        asn: Asn,
        hold_time: HoldTime,
        bgp_identifier: Ipv4Addr,
        mut capabilities: Vec<Capability>,
    ) -> Open {
        capabilities.retain(|c| !matches!(c, Capability::FourOctetAs(_)));
        capabilities.push(Capability::FourOctetAs(asn.0));
        Open {
            version: BGP_VERSION,
            my_as: asn.two_octet(),
            hold_time: hold_time.seconds(),
            bgp_identifier,
            parameters: vec![OptionalParameter::Capabilities(capabilities)],
            extended_parameters: false,
        }
    }

    /// Every capability, across all parameters, in wire order.
    pub fn capabilities(&self) -> impl Iterator<Item = &Capability> {
        self.parameters.iter().flat_map(|p| match p {
            OptionalParameter::Capabilities(caps) => caps.as_slice(),
            OptionalParameter::Unknown { .. } => &[],
        })
    }

    /// The ASN from the four-octet-AS capability, if the peer sent one.
    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities().find_map(|c| match c {
            Capability::FourOctetAs(asn) => Some(*asn),
            _ => None,
        })
    }

    /// The peer's real ASN (RFC 6793 §4.1).
    pub fn asn(&self) -> Asn {
        Asn(self.four_octet_as().unwrap_or(u32::from(self.my_as)))
    }

    /// Families from the multiprotocol capabilities.
    pub fn multiprotocol_families(&self) -> impl Iterator<Item = Family> + '_ {
        self.capabilities().filter_map(|c| match c {
            Capability::Multiprotocol(f) => Some(*f),
            _ => None,
        })
    }

    pub fn has_capability(&self, code: u8) -> bool {
        self.capabilities().any(|c| c.code() == code)
    }

    pub(crate) fn decode(body: &[u8]) -> Result<Open, DecodeError> {
        let short = || DecodeError::MalformedOpen {
            reason: "shorter than its fixed fields",
        };
        let (rest, version) = be_u8(body).or_fail(short)?;
        // RFC 4271 §6.2: the version is checked first.
        if version != BGP_VERSION {
            return Err(DecodeError::UnsupportedVersion { version });
        }
        let (rest, my_as) = be_u16(rest).or_fail(short)?;
        let (rest, hold_time) = be_u16(rest).or_fail(short)?;
        let (rest, bgp_identifier) = ipv4(rest).or_fail(short)?;
        let (rest, opt_len) = be_u8(rest).or_fail(short)?;
        let (params, extended_parameters) = match (opt_len, rest.first()) {
            (255, Some(&PARAM_EXTENDED)) => {
                let (rest, _) = be_u8(rest).or_fail(short)?;
                let (rest, len) = be_u16(rest).or_fail(short)?;
                (exact(rest, usize::from(len))?, true)
            }
            _ => (exact(rest, usize::from(opt_len))?, false),
        };
        let mut parameters = Vec::new();
        let mut input = params;
        while !input.is_empty() {
            let (rest, (param_type, value)) =
                parameter(input, extended_parameters).or_fail(|| DecodeError::MalformedOpen {
                    reason: "optional parameter overruns the parameters length",
                })?;
            parameters.push(match param_type {
                PARAM_CAPABILITIES => {
                    OptionalParameter::Capabilities(Capability::decode_all(value)?)
                }
                _ => OptionalParameter::Unknown {
                    param_type,
                    value: Bytes::copy_from_slice(value),
                },
            });
            input = rest;
        }
        Ok(Open {
            version,
            my_as,
            hold_time,
            bgp_identifier,
            parameters,
            extended_parameters,
        })
    }

    pub(crate) fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u8(self.version);
        out.put_u16(self.my_as);
        out.put_u16(self.hold_time);
        out.put_u32(self.bgp_identifier.into());
        if self.extended_parameters {
            out.put_u8(255);
            out.put_u8(PARAM_EXTENDED);
            let at = begin_u16(out);
            self.encode_parameters(out, true)?;
            finish_u16(
                out,
                at,
                at + 2,
                usize::from(u16::MAX),
                "optional parameters",
            )
        } else {
            let at = begin_u8(out);
            self.encode_parameters(out, false)?;
            finish_u8(out, at, "optional parameters")
        }
    }

    fn encode_parameters(&self, out: &mut BytesMut, extended: bool) -> Result<(), EncodeError> {
        for param in &self.parameters {
            let param_type = match param {
                OptionalParameter::Capabilities(_) => PARAM_CAPABILITIES,
                OptionalParameter::Unknown { param_type, .. } => *param_type,
            };
            out.put_u8(param_type);
            let at = if extended {
                begin_u16(out)
            } else {
                begin_u8(out)
            };
            match param {
                OptionalParameter::Capabilities(caps) => {
                    for cap in caps {
                        cap.encode(out)?;
                    }
                }
                OptionalParameter::Unknown { value, .. } => out.put_slice(value),
            }
            if extended {
                finish_u16(out, at, at + 2, usize::from(u16::MAX), "optional parameter")?;
            } else {
                finish_u8(out, at, "optional parameter")?;
            }
        }
        Ok(())
    }
}

/// The optional parameters must fill the rest of the OPEN exactly.
fn exact(rest: &[u8], len: usize) -> Result<&[u8], DecodeError> {
    if rest.len() == len {
        Ok(rest)
    } else {
        Err(DecodeError::MalformedOpen {
            reason: "optional parameters length does not match the message length",
        })
    }
}

fn parameter(input: &[u8], extended: bool) -> PResult<'_, (u8, &[u8])> {
    let (input, param_type) = be_u8(input)?;
    let (input, len) = if extended {
        be_u16(input)?
    } else {
        let (input, len) = be_u8(input)?;
        (input, u16::from(len))
    };
    let (input, value) = take_n(input, usize::from(len))?;
    Ok((input, (param_type, value)))
}
