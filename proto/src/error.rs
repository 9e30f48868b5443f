//! Decode errors, and the one place where each becomes the NOTIFICATION the
//! RFCs prescribe.

use bytes::{BufMut, Bytes, BytesMut};

use crate::header::{HEADER_LEN, MAX_LEN};
use crate::notification::{self, ErrorCode, Notification};

/// The most data a NOTIFICATION (header, code and subcode, data) can carry
/// and still fit any session's maximum message length.
const MAX_NOTIFICATION_DATA: usize = MAX_LEN - HEADER_LEN - 2;

/// Everything that can be wrong with bytes a peer sent.
///
/// Variants that carry bytes carry exactly what the RFC says goes into the
/// NOTIFICATION's data field (the erroneous attribute, length, type, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("marker is not all ones")]
    ConnectionNotSynchronized,
    #[error("bad message length {length}")]
    BadMessageLength { length: u16 },
    #[error("bad message type {message_type}")]
    BadMessageType { message_type: u8 },

    #[error("unsupported BGP version {version}")]
    UnsupportedVersion { version: u8 },
    #[error("malformed OPEN: {reason}")]
    MalformedOpen { reason: &'static str },
    #[error("malformed capability (code {code})")]
    MalformedCapability { code: u8, capability: Bytes },

    #[error("malformed attribute list: {reason}")]
    MalformedAttributeList { reason: &'static str },
    #[error("unrecognized well-known attribute {type_code}")]
    UnrecognizedWellKnownAttribute { type_code: u8, attribute: Bytes },
    #[error("missing well-known attribute {type_code}")]
    MissingWellKnownAttribute { type_code: u8 },
    #[error("attribute {type_code} has wrong flags")]
    AttributeFlags { type_code: u8, attribute: Bytes },
    #[error("attribute {type_code} has a wrong length")]
    AttributeLength { type_code: u8, attribute: Bytes },
    #[error("invalid ORIGIN")]
    InvalidOrigin { attribute: Bytes },
    #[error("invalid NEXT_HOP")]
    InvalidNextHop { attribute: Bytes },
    #[error("optional attribute {type_code} is malformed")]
    OptionalAttribute { type_code: u8, attribute: Bytes },
    #[error("invalid network field: {reason}")]
    InvalidNetworkField { reason: &'static str },
    #[error("malformed AS_PATH: {reason}")]
    MalformedAsPath { reason: &'static str },

    #[error("ROUTE-REFRESH of invalid length")]
    RouteRefreshLength { message: Bytes },
}

impl DecodeError {
    /// The NOTIFICATION to send for this error (RFC 4271 §6, RFC 5492,
    /// RFC 7313 §5): code, subcode and the data field the RFC names.
    pub fn notification(&self) -> Notification {
        use notification::{header, open, route_refresh, update, UNSPECIFIC};
        let (code, subcode, data) = match self {
            DecodeError::ConnectionNotSynchronized => (
                ErrorCode::MessageHeader,
                header::CONNECTION_NOT_SYNCHRONIZED,
                Bytes::new(),
            ),
            // RFC 4271 §6.1: "the Data field MUST contain the erroneous Length field".
            DecodeError::BadMessageLength { length } => (
                ErrorCode::MessageHeader,
                header::BAD_MESSAGE_LENGTH,
                Bytes::copy_from_slice(&length.to_be_bytes()),
            ),
            DecodeError::BadMessageType { message_type } => (
                ErrorCode::MessageHeader,
                header::BAD_MESSAGE_TYPE,
                Bytes::copy_from_slice(&[*message_type]),
            ),
            // RFC 4271 §6.2: data is the largest supported version below the
            // one the peer bid, as two octets. We only speak version 4.
            DecodeError::UnsupportedVersion { .. } => (
                ErrorCode::Open,
                open::UNSUPPORTED_VERSION_NUMBER,
                Bytes::from_static(&[0, crate::open::BGP_VERSION]),
            ),
            DecodeError::MalformedOpen { .. } => (ErrorCode::Open, UNSPECIFIC, Bytes::new()),
            DecodeError::MalformedCapability { capability, .. } => {
                (ErrorCode::Open, UNSPECIFIC, capability.clone())
            }
            DecodeError::MalformedAttributeList { .. } => (
                ErrorCode::Update,
                update::MALFORMED_ATTRIBUTE_LIST,
                Bytes::new(),
            ),
            DecodeError::UnrecognizedWellKnownAttribute { attribute, .. } => (
                ErrorCode::Update,
                update::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                attribute.clone(),
            ),
            // RFC 4271 §6.3: "the Data field MUST contain the Attribute Type
            // Code of the missing, well-known attribute".
            DecodeError::MissingWellKnownAttribute { type_code } => (
                ErrorCode::Update,
                update::MISSING_WELL_KNOWN_ATTRIBUTE,
                Bytes::copy_from_slice(&[*type_code]),
            ),
            DecodeError::AttributeFlags { attribute, .. } => (
                ErrorCode::Update,
                update::ATTRIBUTE_FLAGS_ERROR,
                attribute.clone(),
            ),
            DecodeError::AttributeLength { attribute, .. } => (
                ErrorCode::Update,
                update::ATTRIBUTE_LENGTH_ERROR,
                attribute.clone(),
            ),
            DecodeError::InvalidOrigin { attribute } => (
                ErrorCode::Update,
                update::INVALID_ORIGIN_ATTRIBUTE,
                attribute.clone(),
            ),
            DecodeError::InvalidNextHop { attribute } => (
                ErrorCode::Update,
                update::INVALID_NEXT_HOP_ATTRIBUTE,
                attribute.clone(),
            ),
            DecodeError::OptionalAttribute { attribute, .. } => (
                ErrorCode::Update,
                update::OPTIONAL_ATTRIBUTE_ERROR,
                attribute.clone(),
            ),
            DecodeError::InvalidNetworkField { .. } => (
                ErrorCode::Update,
                update::INVALID_NETWORK_FIELD,
                Bytes::new(),
            ),
            DecodeError::MalformedAsPath { .. } => {
                (ErrorCode::Update, update::MALFORMED_AS_PATH, Bytes::new())
            }
            // RFC 7313 §5: the data field carries the complete message, as
            // much of it as a NOTIFICATION can hold: a ROUTE-REFRESH may be
            // up to the maximum message length itself, and a NOTIFICATION
            // that does not fit could not be sent at all.
            DecodeError::RouteRefreshLength { message } => {
                let mut data = message.clone();
                data.truncate(MAX_NOTIFICATION_DATA);
                (
                    ErrorCode::RouteRefresh,
                    route_refresh::INVALID_MESSAGE_LENGTH,
                    data,
                )
            }
        };
        Notification::new(code, subcode, data)
    }
}

impl From<&DecodeError> for Notification {
    fn from(error: &DecodeError) -> Notification {
        error.notification()
    }
}

/// RFC 7606 §2: how a malformed UPDATE is handled, weakest first, so that
/// several errors in one UPDATE fold with `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Treatment {
    /// The attribute is dropped and the UPDATE processed without it.
    AttributeDiscard,
    /// Every prefix in the UPDATE (NLRI and MP_REACH_NLRI) is handled as
    /// withdrawn; the session stays up.
    TreatAsWithdraw,
    /// A NOTIFICATION is sent and the session closed.
    SessionReset,
}

/// One RFC 7606 error found in a received UPDATE that did not reset the
/// session: which attribute, what was wrong, and how it was treated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeError {
    pub type_code: u8,
    pub treatment: Treatment,
    pub error: DecodeError,
}

/// The whole attribute (flags, type, length, value) as it appeared on the
/// wire: the data field of most UPDATE NOTIFICATIONs.
pub(crate) fn attribute_bytes(flags: u8, type_code: u8, value: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(value.len() + 4);
    out.put_u8(flags);
    out.put_u8(type_code);
    match u8::try_from(value.len()) {
        Ok(len) if flags & crate::attribute::flags::EXTENDED_LENGTH == 0 => out.put_u8(len),
        _ => out.put_u16(u16::try_from(value.len()).unwrap_or(u16::MAX)),
    }
    out.put_slice(value);
    out.freeze()
}
