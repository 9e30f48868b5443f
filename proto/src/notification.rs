//! NOTIFICATION message (RFC 4271 §4.5) with every registered error code and
//! subcode, and the RFC 9003 shutdown communication.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Error code    | Error subcode |   Data (variable)             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::DecodeError;

/// NOTIFICATION error codes (IANA "BGP Error (Notification) Codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    MessageHeader,
    Open,
    Update,
    HoldTimerExpired,
    /// RFC 4271 §6.6, subcodes from RFC 6608.
    FiniteStateMachine,
    /// RFC 4486 subcodes.
    Cease,
    /// RFC 7313 §5.
    RouteRefresh,
    Unknown(u8),
}

impl From<u8> for ErrorCode {
    fn from(value: u8) -> Self {
        match value {
            1 => ErrorCode::MessageHeader,
            2 => ErrorCode::Open,
            3 => ErrorCode::Update,
            4 => ErrorCode::HoldTimerExpired,
            5 => ErrorCode::FiniteStateMachine,
            6 => ErrorCode::Cease,
            7 => ErrorCode::RouteRefresh,
            other => ErrorCode::Unknown(other),
        }
    }
}

impl From<ErrorCode> for u8 {
    fn from(code: ErrorCode) -> u8 {
        match code {
            ErrorCode::MessageHeader => 1,
            ErrorCode::Open => 2,
            ErrorCode::Update => 3,
            ErrorCode::HoldTimerExpired => 4,
            ErrorCode::FiniteStateMachine => 5,
            ErrorCode::Cease => 6,
            ErrorCode::RouteRefresh => 7,
            ErrorCode::Unknown(other) => other,
        }
    }
}

/// Subcode 0 of any code: "Unspecific".
pub const UNSPECIFIC: u8 = 0;

/// Message Header Error subcodes (RFC 4271 §4.5).
pub mod header {
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;
}

/// OPEN Message Error subcodes (RFC 4271 §4.5, RFC 5492 §5, RFC 9234 §4.2).
pub mod open {
    pub const UNSUPPORTED_VERSION_NUMBER: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
    pub const ROLE_MISMATCH: u8 = 11;
}

/// UPDATE Message Error subcodes (RFC 4271 §4.5).
pub mod update {
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
    pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
    pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
    pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
    pub const INVALID_ORIGIN_ATTRIBUTE: u8 = 6;
    pub const INVALID_NEXT_HOP_ATTRIBUTE: u8 = 8;
    pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;
}

/// Finite State Machine Error subcodes (RFC 6608 §3).
pub mod fsm {
    pub const UNEXPECTED_MESSAGE_IN_OPEN_SENT: u8 = 1;
    pub const UNEXPECTED_MESSAGE_IN_OPEN_CONFIRM: u8 = 2;
    pub const UNEXPECTED_MESSAGE_IN_ESTABLISHED: u8 = 3;
}

/// Cease subcodes (RFC 4486 §4, RFC 8538 §5, RFC 9384).
pub mod cease {
    pub const MAXIMUM_PREFIXES_REACHED: u8 = 1;
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 8;
    pub const HARD_RESET: u8 = 9;
    pub const BFD_DOWN: u8 = 10;
}

/// ROUTE-REFRESH Message Error subcodes (RFC 7313 §5).
pub mod route_refresh {
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;
}

/// RFC 9003 §2: a shutdown communication is at most 255 octets of UTF-8.
pub const MAX_SHUTDOWN_COMMUNICATION: usize = 255;

/// A NOTIFICATION. Data of any length is kept as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub code: ErrorCode,
    pub subcode: u8,
    pub data: Bytes,
}

/// Why a shutdown communication could not be built or read (RFC 9003 §2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShutdownCommunicationError {
    #[error("shutdown communication is {0} octets, more than the 255 RFC 9003 allows")]
    TooLong(usize),
    #[error("shutdown communication length octet says {declared}, but {available} octets follow")]
    Truncated { declared: usize, available: usize },
    #[error("shutdown communication is not valid UTF-8")]
    NotUtf8,
}

impl Notification {
    pub fn new(code: ErrorCode, subcode: u8, data: impl Into<Bytes>) -> Notification {
        Notification {
            code,
            subcode,
            data: data.into(),
        }
    }

    /// RFC 4271 §6.5: Hold Timer Expired carries no subcode or data.
    pub fn hold_timer_expired() -> Notification {
        Notification::new(ErrorCode::HoldTimerExpired, UNSPECIFIC, Bytes::new())
    }

    /// Cease with an RFC 9003 shutdown communication; only Administrative
    /// Shutdown and Administrative Reset carry one.
    pub fn cease_with_message(
        subcode: u8,
        message: &str,
    ) -> Result<Notification, ShutdownCommunicationError> {
        let len = message.len();
        let len_octet = u8::try_from(len).map_err(|_| ShutdownCommunicationError::TooLong(len))?;
        let mut data = BytesMut::with_capacity(len + 1);
        data.put_u8(len_octet);
        data.put_slice(message.as_bytes());
        Ok(Notification::new(ErrorCode::Cease, subcode, data.freeze()))
    }

    /// The RFC 9003 shutdown communication, for a Cease / Administrative
    /// Shutdown or Administrative Reset. `None` when this NOTIFICATION cannot
    /// carry one or carries none (length zero). A malformed one is reported
    /// as an error for the log; RFC 9003 §4 says it must not reset anything
    /// else.
    pub fn shutdown_communication(&self) -> Option<Result<&str, ShutdownCommunicationError>> {
        if self.code != ErrorCode::Cease
            || !matches!(
                self.subcode,
                cease::ADMINISTRATIVE_SHUTDOWN | cease::ADMINISTRATIVE_RESET
            )
        {
            return None;
        }
        let (&len, text) = self.data.split_first()?;
        let declared = usize::from(len);
        if declared == 0 {
            return None;
        }
        let Some(text) = text.get(..declared) else {
            return Some(Err(ShutdownCommunicationError::Truncated {
                declared,
                available: text.len(),
            }));
        };
        Some(std::str::from_utf8(text).map_err(|_| ShutdownCommunicationError::NotUtf8))
    }

    /// Body of a NOTIFICATION message (after the 19-octet header).
    pub(crate) fn decode(body: &[u8]) -> Result<Notification, DecodeError> {
        match body {
            [code, subcode, data @ ..] => Ok(Notification {
                code: ErrorCode::from(*code),
                subcode: *subcode,
                data: Bytes::copy_from_slice(data),
            }),
            _ => Err(DecodeError::BadMessageLength {
                length: u16::try_from(body.len() + crate::header::HEADER_LEN).unwrap_or(u16::MAX),
            }),
        }
    }

    pub(crate) fn encode_body(&self, out: &mut BytesMut) {
        out.put_u8(self.code.into());
        out.put_u8(self.subcode);
        out.put_slice(&self.data);
    }

    /// Name of the code and subcode as the RFCs spell them.
    pub fn describe(&self) -> String {
        let code = match self.code {
            ErrorCode::MessageHeader => "Message Header Error",
            ErrorCode::Open => "OPEN Message Error",
            ErrorCode::Update => "UPDATE Message Error",
            ErrorCode::HoldTimerExpired => "Hold Timer Expired",
            ErrorCode::FiniteStateMachine => "Finite State Machine Error",
            ErrorCode::Cease => "Cease",
            ErrorCode::RouteRefresh => "ROUTE-REFRESH Message Error",
            ErrorCode::Unknown(_) => "Unknown Error",
        };
        match subcode_name(self.code, self.subcode) {
            Some(sub) => format!("{code} / {sub}"),
            None if self.subcode == UNSPECIFIC => code.to_string(),
            None => format!("{code} / subcode {}", self.subcode),
        }
    }
}

fn subcode_name(code: ErrorCode, subcode: u8) -> Option<&'static str> {
    Some(match (code, subcode) {
        (ErrorCode::MessageHeader, header::CONNECTION_NOT_SYNCHRONIZED) => {
            "Connection Not Synchronized"
        }
        (ErrorCode::MessageHeader, header::BAD_MESSAGE_LENGTH) => "Bad Message Length",
        (ErrorCode::MessageHeader, header::BAD_MESSAGE_TYPE) => "Bad Message Type",
        (ErrorCode::Open, open::UNSUPPORTED_VERSION_NUMBER) => "Unsupported Version Number",
        (ErrorCode::Open, open::BAD_PEER_AS) => "Bad Peer AS",
        (ErrorCode::Open, open::BAD_BGP_IDENTIFIER) => "Bad BGP Identifier",
        (ErrorCode::Open, open::UNSUPPORTED_OPTIONAL_PARAMETER) => "Unsupported Optional Parameter",
        (ErrorCode::Open, open::UNACCEPTABLE_HOLD_TIME) => "Unacceptable Hold Time",
        (ErrorCode::Open, open::UNSUPPORTED_CAPABILITY) => "Unsupported Capability",
        (ErrorCode::Open, open::ROLE_MISMATCH) => "Role Mismatch",
        (ErrorCode::Update, update::MALFORMED_ATTRIBUTE_LIST) => "Malformed Attribute List",
        (ErrorCode::Update, update::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE) => {
            "Unrecognized Well-known Attribute"
        }
        (ErrorCode::Update, update::MISSING_WELL_KNOWN_ATTRIBUTE) => "Missing Well-known Attribute",
        (ErrorCode::Update, update::ATTRIBUTE_FLAGS_ERROR) => "Attribute Flags Error",
        (ErrorCode::Update, update::ATTRIBUTE_LENGTH_ERROR) => "Attribute Length Error",
        (ErrorCode::Update, update::INVALID_ORIGIN_ATTRIBUTE) => "Invalid ORIGIN Attribute",
        (ErrorCode::Update, update::INVALID_NEXT_HOP_ATTRIBUTE) => "Invalid NEXT_HOP Attribute",
        (ErrorCode::Update, update::OPTIONAL_ATTRIBUTE_ERROR) => "Optional Attribute Error",
        (ErrorCode::Update, update::INVALID_NETWORK_FIELD) => "Invalid Network Field",
        (ErrorCode::Update, update::MALFORMED_AS_PATH) => "Malformed AS_PATH",
        (ErrorCode::FiniteStateMachine, fsm::UNEXPECTED_MESSAGE_IN_OPEN_SENT) => {
            "Receive Unexpected Message in OpenSent State"
        }
        (ErrorCode::FiniteStateMachine, fsm::UNEXPECTED_MESSAGE_IN_OPEN_CONFIRM) => {
            "Receive Unexpected Message in OpenConfirm State"
        }
        (ErrorCode::FiniteStateMachine, fsm::UNEXPECTED_MESSAGE_IN_ESTABLISHED) => {
            "Receive Unexpected Message in Established State"
        }
        (ErrorCode::Cease, cease::MAXIMUM_PREFIXES_REACHED) => "Maximum Number of Prefixes Reached",
        (ErrorCode::Cease, cease::ADMINISTRATIVE_SHUTDOWN) => "Administrative Shutdown",
        (ErrorCode::Cease, cease::PEER_DECONFIGURED) => "Peer De-configured",
        (ErrorCode::Cease, cease::ADMINISTRATIVE_RESET) => "Administrative Reset",
        (ErrorCode::Cease, cease::CONNECTION_REJECTED) => "Connection Rejected",
        (ErrorCode::Cease, cease::OTHER_CONFIGURATION_CHANGE) => "Other Configuration Change",
        (ErrorCode::Cease, cease::CONNECTION_COLLISION_RESOLUTION) => {
            "Connection Collision Resolution"
        }
        (ErrorCode::Cease, cease::OUT_OF_RESOURCES) => "Out of Resources",
        (ErrorCode::Cease, cease::HARD_RESET) => "Hard Reset",
        (ErrorCode::Cease, cease::BFD_DOWN) => "BFD Down",
        (ErrorCode::RouteRefresh, route_refresh::INVALID_MESSAGE_LENGTH) => {
            "Invalid Message Length"
        }
        _ => return None,
    })
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}/{})",
            self.describe(),
            u8::from(self.code),
            self.subcode
        )?;
        match self.shutdown_communication() {
            Some(Ok(text)) => write!(f, ": \"{}\"", text.escape_debug()),
            Some(Err(e)) => write!(f, ": {e}"),
            None => Ok(()),
        }
    }
}
