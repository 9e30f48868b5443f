//! The BGP-4 wire format as anyvip speaks and hears it.
//!
//! This crate is pure: no I/O, no async runtime, no `unsafe`, and no panic on
//! any input. Decoding uses `nom` over complete frames (see [`frame`]);
//! encoding writes into [`bytes::BytesMut`] and is fallible wherever a value
//! can exceed its field. Every decode error converts, in one place
//! ([`DecodeError::notification`]), into the NOTIFICATION the RFCs say to
//! send; received UPDATEs are additionally classified per RFC 7606
//! ([`Treatment`]).
//!
//! What a session negotiated (four-octet AS, add-path, extended messages)
//! travels in a [`Context`]; widths are never guessed from the bytes.

#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

pub mod attribute;
pub mod capability;
mod context;
mod encode;
mod error;
mod family;
mod header;
mod message;
pub mod notification;
mod open;
mod parse;
mod prefix;
mod route_refresh;
mod types;
mod update;

pub use attribute::{Attribute, AttributeValue};
pub use capability::Capability;
pub use context::{AddPath, Context};
pub use encode::EncodeError;
pub use error::{AttributeError, DecodeError, Treatment};
pub use family::{Afi, Family, Safi};
pub use header::{frame, Frame, MessageType, HEADER_LEN, MARKER, MAX_EXTENDED_LEN, MAX_LEN};
pub use message::Message;
pub use notification::{ErrorCode, Notification};
pub use open::{Open, OptionalParameter, BGP_VERSION};
pub use prefix::Nlri;
pub use route_refresh::{RouteRefresh, RouteRefreshSubtype};
pub use types::{Asn, HoldTime, AS_TRANS};
pub use update::Update;
