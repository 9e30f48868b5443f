//! Message framing (RFC 4271 §4.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                                                               +
//! |                           Marker                              |
//! +                                                               +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Length               |      Type     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use crate::context::Context;
use crate::error::DecodeError;

pub const MARKER: [u8; 16] = [0xff; 16];
pub const HEADER_LEN: usize = 19;
/// RFC 4271 §4.1: the maximum message size is 4096 octets.
pub const MAX_LEN: usize = 4096;
/// RFC 8654: with the Extended Message capability, up to 65535 octets.
pub const MAX_EXTENDED_LEN: usize = 65535;

/// Smallest legal length of each message type (RFC 4271 §6.1, RFC 2918 §3).
const OPEN_MIN_LEN: usize = 29;
const UPDATE_MIN_LEN: usize = 23;
const NOTIFICATION_MIN_LEN: usize = 21;
const KEEPALIVE_LEN: usize = 19;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    Open,
    Update,
    Notification,
    Keepalive,
    RouteRefresh,
}

impl MessageType {
    fn from_u8(value: u8) -> Option<MessageType> {
        Some(match value {
            1 => MessageType::Open,
            2 => MessageType::Update,
            3 => MessageType::Notification,
            4 => MessageType::Keepalive,
            5 => MessageType::RouteRefresh,
            _ => return None,
        })
    }

    /// The type code on the wire (RFC 4271 §4.1).
    pub fn code(self) -> u8 {
        match self {
            MessageType::Open => 1,
            MessageType::Update => 2,
            MessageType::Notification => 3,
            MessageType::Keepalive => 4,
            MessageType::RouteRefresh => 5,
        }
    }
}

/// One complete message found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub message_type: MessageType,
    /// The message after the 19-octet header.
    pub body: &'a [u8],
    /// The whole message, header included (what to consume from the buffer).
    pub message: &'a [u8],
}

/// Find the message at the start of `buf`.
///
/// `Ok(None)` means "need more bytes". A bad marker, a length outside
/// 19..=max (or below the minimum of its type) or an unknown type is an
/// error as soon as the header has arrived: a length of 5 is never waited
/// on.
pub fn frame<'a>(buf: &'a [u8], ctx: &Context) -> Result<Option<Frame<'a>>, DecodeError> {
    // Check what we have of the marker even before the header is complete,
    // so a desynchronised stream fails on its first bytes.
    let marker_seen = buf.get(..MARKER.len()).unwrap_or(buf);
    if marker_seen.iter().any(|&b| b != 0xff) {
        return Err(DecodeError::ConnectionNotSynchronized);
    }
    let Some(&[len_hi, len_lo, type_code]) = buf.get(16..HEADER_LEN) else {
        return Ok(None);
    };
    let length = u16::from_be_bytes([len_hi, len_lo]);
    let len = usize::from(length);
    if !(HEADER_LEN..=ctx.max_message_len()).contains(&len) {
        return Err(DecodeError::BadMessageLength { length });
    }
    let message_type = MessageType::from_u8(type_code).ok_or(DecodeError::BadMessageType {
        message_type: type_code,
    })?;
    let length_ok = match message_type {
        MessageType::Open => len >= OPEN_MIN_LEN,
        MessageType::Update => len >= UPDATE_MIN_LEN,
        MessageType::Notification => len >= NOTIFICATION_MIN_LEN,
        MessageType::Keepalive => len == KEEPALIVE_LEN,
        // RFC 7313 §5: a ROUTE-REFRESH of the wrong length is a
        // ROUTE-REFRESH Message Error, decided once the body is here.
        MessageType::RouteRefresh => true,
    };
    if !length_ok {
        return Err(DecodeError::BadMessageLength { length });
    }
    let Some(message) = buf.get(..len) else {
        return Ok(None);
    };
    let body = message.get(HEADER_LEN..).unwrap_or_default();
    Ok(Some(Frame {
        message_type,
        body,
        message,
    }))
}
