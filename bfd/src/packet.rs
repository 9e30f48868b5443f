//! The BFD Control packet (RFC 5880 §4.1) and its optional authentication
//! section (§4.2).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       My Discriminator                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                      Your Discriminator                       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Desired Min TX Interval                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                   Required Min RX Interval                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Required Min Echo RX Interval                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! An optional Authentication Section MAY be present (A bit set):
//!
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Auth Type   |   Auth Len    |    Authentication Data...     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Intervals are in microseconds on the wire and here (`u32`), so every
//! packet survives a round trip bit for bit. The Length field is not stored:
//! the encoder derives it from the authentication section, the decoder
//! checks it (§6.8.6) and uses it to find the end of that section.

use crate::discard::Discard;

/// RFC 5880 §4.1: "This document defines protocol version 1."
pub const VERSION: u8 = 1;
/// Length of the mandatory section.
pub const MANDATORY_LEN: usize = 24;
/// The smallest Length with the A bit set: the mandatory section plus Auth
/// Type and Auth Len (RFC 5880 §6.8.6).
const MIN_LEN_WITH_AUTH: usize = MANDATORY_LEN + 2;
/// Authentication data that still fits the one-octet Length field.
pub const MAX_AUTH_DATA_LEN: usize = u8::MAX as usize - MIN_LEN_WITH_AUTH;

const POLL: u8 = 0x20;
const FINAL: u8 = 0x10;
const CONTROL_PLANE_INDEPENDENT: u8 = 0x08;
const AUTHENTICATION_PRESENT: u8 = 0x04;
const DEMAND: u8 = 0x02;
const MULTIPOINT: u8 = 0x01;

/// Session state (RFC 5880 §4.1 "Sta", §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    AdminDown,
    Down,
    Init,
    Up,
}

impl State {
    /// The two-bit code on the wire.
    pub fn code(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }

    /// All four two-bit values are states; higher bits are ignored.
    pub fn from_code(code: u8) -> State {
        match code & 0x03 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    /// A name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            State::AdminDown => "admin_down",
            State::Down => "down",
            State::Init => "init",
            State::Up => "up",
        }
    }
}

/// Diagnostic codes (RFC 5880 §4.1; IANA "BFD Diagnostic Codes").
/// Unassigned codes survive a round trip in [`Diagnostic::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Diagnostic {
    /// 0
    NoDiagnostic,
    /// 1: no packet within the Detection Time.
    ControlDetectionTimeExpired,
    /// 2
    EchoFunctionFailed,
    /// 3: the peer said Down or AdminDown.
    NeighborSignaledSessionDown,
    /// 4
    ForwardingPlaneReset,
    /// 5
    PathDown,
    /// 6
    ConcatenatedPathDown,
    /// 7: taken down on purpose (a planned stop).
    AdministrativelyDown,
    /// 8
    ReverseConcatenatedPathDown,
    /// 9 (RFC 6428, MPLS-TP).
    MisConnectivityDefect,
    /// Any other five-bit code; only the low five bits are encoded.
    Unknown(u8),
}

impl Diagnostic {
    /// The five-bit code on the wire.
    pub fn code(self) -> u8 {
        match self {
            Diagnostic::NoDiagnostic => 0,
            Diagnostic::ControlDetectionTimeExpired => 1,
            Diagnostic::EchoFunctionFailed => 2,
            Diagnostic::NeighborSignaledSessionDown => 3,
            Diagnostic::ForwardingPlaneReset => 4,
            Diagnostic::PathDown => 5,
            Diagnostic::ConcatenatedPathDown => 6,
            Diagnostic::AdministrativelyDown => 7,
            Diagnostic::ReverseConcatenatedPathDown => 8,
            Diagnostic::MisConnectivityDefect => 9,
            Diagnostic::Unknown(code) => code & 0x1f,
        }
    }

    /// The diagnostic for a five-bit code; higher bits are ignored.
    pub fn from_code(code: u8) -> Diagnostic {
        match code & 0x1f {
            0 => Diagnostic::NoDiagnostic,
            1 => Diagnostic::ControlDetectionTimeExpired,
            2 => Diagnostic::EchoFunctionFailed,
            3 => Diagnostic::NeighborSignaledSessionDown,
            4 => Diagnostic::ForwardingPlaneReset,
            5 => Diagnostic::PathDown,
            6 => Diagnostic::ConcatenatedPathDown,
            7 => Diagnostic::AdministrativelyDown,
            8 => Diagnostic::ReverseConcatenatedPathDown,
            9 => Diagnostic::MisConnectivityDefect,
            other => Diagnostic::Unknown(other),
        }
    }

    /// A name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Diagnostic::NoDiagnostic => "no_diagnostic",
            Diagnostic::ControlDetectionTimeExpired => "control_detection_time_expired",
            Diagnostic::EchoFunctionFailed => "echo_function_failed",
            Diagnostic::NeighborSignaledSessionDown => "neighbor_signaled_session_down",
            Diagnostic::ForwardingPlaneReset => "forwarding_plane_reset",
            Diagnostic::PathDown => "path_down",
            Diagnostic::ConcatenatedPathDown => "concatenated_path_down",
            Diagnostic::AdministrativelyDown => "administratively_down",
            Diagnostic::ReverseConcatenatedPathDown => "reverse_concatenated_path_down",
            Diagnostic::MisConnectivityDefect => "mis_connectivity_defect",
            Diagnostic::Unknown(_) => "unknown",
        }
    }
}

/// Authentication types (RFC 5880 §4.1 "Auth Type"; IANA "BFD
/// Authentication Types").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthType {
    /// 0
    Reserved,
    /// 1 (§4.2.2)
    SimplePassword,
    /// 2 (§4.3)
    KeyedMd5,
    /// 3 (§4.3)
    MeticulousKeyedMd5,
    /// 4 (§4.4)
    KeyedSha1,
    /// 5 (§4.4)
    MeticulousKeyedSha1,
    Unknown(u8),
}

impl AuthType {
    pub fn code(self) -> u8 {
        match self {
            AuthType::Reserved => 0,
            AuthType::SimplePassword => 1,
            AuthType::KeyedMd5 => 2,
            AuthType::MeticulousKeyedMd5 => 3,
            AuthType::KeyedSha1 => 4,
            AuthType::MeticulousKeyedSha1 => 5,
            AuthType::Unknown(code) => code,
        }
    }

    pub fn from_code(code: u8) -> AuthType {
        match code {
            0 => AuthType::Reserved,
            1 => AuthType::SimplePassword,
            2 => AuthType::KeyedMd5,
            3 => AuthType::MeticulousKeyedMd5,
            4 => AuthType::KeyedSha1,
            5 => AuthType::MeticulousKeyedSha1,
            other => AuthType::Unknown(other),
        }
    }
}

/// The authentication section (RFC 5880 §4.2), recognised but not
/// verified: anyvip configures no authentication, so a session discards
/// every packet that carries one (§6.8.6).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Authentication {
    auth_type: AuthType,
    /// Everything after Auth Type and Auth Len (key id, sequence number,
    /// digest or password, depending on the type).
    data: Vec<u8>,
}

/// Authentication data longer than [`MAX_AUTH_DATA_LEN`] would overflow
/// the Length field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "BFD authentication data of {0} bytes is longer than the {MAX_AUTH_DATA_LEN} that fit a packet"
)]
pub struct AuthenticationTooLong(pub usize);

impl Authentication {
    pub fn new(
        auth_type: AuthType,
        data: Vec<u8>,
    ) -> Result<Authentication, AuthenticationTooLong> {
        if data.len() > MAX_AUTH_DATA_LEN {
            return Err(AuthenticationTooLong(data.len()));
        }
        Ok(Authentication { auth_type, data })
    }

    pub fn auth_type(&self) -> AuthType {
        self.auth_type
    }

    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The Auth Len field: the whole section, type and length included.
    fn len_field(&self) -> u8 {
        u8::try_from(self.data.len() + 2).unwrap_or(u8::MAX)
    }
}

/// A BFD Control packet (RFC 5880 §4.1). The A bit is
/// `authentication.is_some()`; Version is always [`VERSION`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ControlPacket {
    pub diagnostic: Diagnostic,
    pub state: State,
    /// P: the sender asks for a Final (a Poll Sequence, §6.5).
    pub poll: bool,
    /// F: the answer to a Poll.
    pub final_: bool,
    /// C: the sender's BFD does not share fate with its control plane.
    pub control_plane_independent: bool,
    /// D: the sender wishes to run Demand mode (§6.6).
    pub demand: bool,
    /// M: reserved for multipoint; must be zero (§6.8.6 discards it).
    pub multipoint: bool,
    pub detect_multiplier: u8,
    pub my_discriminator: u32,
    pub your_discriminator: u32,
    /// Microseconds.
    pub desired_min_tx_us: u32,
    /// Microseconds.
    pub required_min_rx_us: u32,
    /// Microseconds; zero means the sender does not take Echo packets.
    pub required_min_echo_rx_us: u32,
    pub authentication: Option<Authentication>,
}

impl ControlPacket {
    /// Decode one packet: the UDP payload, whole.
    ///
    /// Performs the first three reception checks of RFC 5880 §6.8.6, in
    /// order — version, Length against the A bit, Length against the bytes
    /// received — plus the consistency of the authentication section's own
    /// length. The remaining per-packet checks are [`ControlPacket::check`].
    /// Bytes past Length are ignored, as are bytes between the mandatory
    /// section and Length when A is clear. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<ControlPacket, Discard> {
        let (&first, _) = bytes.split_first().ok_or(Discard::Truncated)?;
        // "If the version number is not correct (1), the packet MUST be
        // discarded."
        if first >> 5 != VERSION {
            return Err(Discard::Version);
        }
        let (&[version_diag, state_flags, detect_multiplier, length], rest) =
            bytes.split_first_chunk::<4>().ok_or(Discard::Truncated)?;
        let length = usize::from(length);
        let authenticated = state_flags & AUTHENTICATION_PRESENT != 0;
        // "If the Length field is less than the minimum correct value (24 if
        // the A bit is clear, or 26 if the A bit is set), the packet MUST be
        // discarded."
        let minimum = if authenticated {
            MIN_LEN_WITH_AUTH
        } else {
            MANDATORY_LEN
        };
        if length < minimum {
            return Err(Discard::LengthTooShort);
        }
        // "If the Length field is greater than the payload of the
        // encapsulating protocol, the packet MUST be discarded."
        if length > bytes.len() {
            return Err(Discard::LengthExceedsPayload);
        }
        let mut fields = Reader(rest);
        let my_discriminator = fields.u32()?;
        let your_discriminator = fields.u32()?;
        let desired_min_tx_us = fields.u32()?;
        let required_min_rx_us = fields.u32()?;
        let required_min_echo_rx_us = fields.u32()?;
        let authentication = if authenticated {
            let section = bytes.get(MANDATORY_LEN..length).ok_or(Discard::Truncated)?;
            Some(decode_authentication(section)?)
        } else {
            None
        };
        Ok(ControlPacket {
            diagnostic: Diagnostic::from_code(version_diag),
            state: State::from_code(state_flags >> 6),
            poll: state_flags & POLL != 0,
            final_: state_flags & FINAL != 0,
            control_plane_independent: state_flags & CONTROL_PLANE_INDEPENDENT != 0,
            demand: state_flags & DEMAND != 0,
            multipoint: state_flags & MULTIPOINT != 0,
            detect_multiplier,
            my_discriminator,
            your_discriminator,
            desired_min_tx_us,
            required_min_rx_us,
            required_min_echo_rx_us,
            authentication,
        })
    }

    /// The reception checks of RFC 5880 §6.8.6 that need the packet but no
    /// session, in the RFC's order: Detect Mult zero, Multipoint set, My
    /// Discriminator zero, and Your Discriminator zero in a packet whose
    /// State is neither Down nor AdminDown.
    ///
    /// Between the last two the RFC selects the session by a non-zero Your
    /// Discriminator: that lookup is the caller's, and
    /// [`Session::handle_packet`](crate::Session::handle_packet) checks the
    /// match again. The two rules never both apply to one packet.
    pub fn check(&self) -> Result<(), Discard> {
        if self.detect_multiplier == 0 {
            return Err(Discard::DetectMultiplierZero);
        }
        if self.multipoint {
            return Err(Discard::Multipoint);
        }
        if self.my_discriminator == 0 {
            return Err(Discard::MyDiscriminatorZero);
        }
        if self.your_discriminator == 0 && !matches!(self.state, State::Down | State::AdminDown) {
            return Err(Discard::YourDiscriminatorZero);
        }
        Ok(())
    }

    /// The encoded length: 24, plus the authentication section.
    pub fn encoded_len(&self) -> usize {
        MANDATORY_LEN
            + self
                .authentication
                .as_ref()
                .map_or(0, |auth| usize::from(auth.len_field()))
    }

    /// Encode for a UDP payload. The Unknown diagnostic keeps its low five
    /// bits.
    pub fn encode(&self) -> Vec<u8> {
        let length = self.encoded_len();
        let mut out = Vec::with_capacity(length);
        let flags = [
            (self.poll, POLL),
            (self.final_, FINAL),
            (self.control_plane_independent, CONTROL_PLANE_INDEPENDENT),
            (self.authentication.is_some(), AUTHENTICATION_PRESENT),
            (self.demand, DEMAND),
            (self.multipoint, MULTIPOINT),
        ]
        .into_iter()
        .filter(|(set, _)| *set)
        .fold(0, |acc, (_, bit)| acc | bit);
        out.push(VERSION << 5 | self.diagnostic.code());
        out.push(self.state.code() << 6 | flags);
        out.push(self.detect_multiplier);
        // At most 24 + 2 + MAX_AUTH_DATA_LEN = 255 (Authentication::new).
        out.push(u8::try_from(length).unwrap_or(u8::MAX));
        for field in [
            self.my_discriminator,
            self.your_discriminator,
            self.desired_min_tx_us,
            self.required_min_rx_us,
            self.required_min_echo_rx_us,
        ] {
            out.extend_from_slice(&field.to_be_bytes());
        }
        if let Some(auth) = &self.authentication {
            out.push(auth.auth_type.code());
            out.push(auth.len_field());
            out.extend_from_slice(&auth.data);
        }
        out
    }
}

/// The authentication section: from offset 24 up to Length.
fn decode_authentication(section: &[u8]) -> Result<Authentication, Discard> {
    let (&[auth_type, auth_len], _) = section
        .split_first_chunk::<2>()
        .ok_or(Discard::AuthenticationMalformed)?;
    // Auth Len counts Auth Type and itself and must fit inside Length.
    let data = section
        .get(2..usize::from(auth_len))
        .ok_or(Discard::AuthenticationMalformed)?;
    Ok(Authentication {
        auth_type: AuthType::from_code(auth_type),
        data: data.to_vec(),
    })
}

/// Big-endian fields from the front of a slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u32(&mut self) -> Result<u32, Discard> {
        let (field, rest) = self.0.split_first_chunk::<4>().ok_or(Discard::Truncated)?;
        self.0 = rest;
        Ok(u32::from_be_bytes(*field))
    }
}
