//! Why a received packet was discarded (RFC 5880 §6.8.6), one value per
//! rule so the caller can count each.

/// A reason to discard a received Control packet. The variants follow the
/// order of RFC 5880 §6.8.6; the caller adds its own reasons that are not
/// BFD's (TTL below 255, a source that is no configured peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Discard {
    /// Empty, or too short to hold even the Length field.
    Truncated,
    /// "If the version number is not correct (1)".
    Version,
    /// "If the Length field is less than the minimum correct value (24 if
    /// the A bit is clear, or 26 if the A bit is set)".
    LengthTooShort,
    /// "If the Length field is greater than the payload of the
    /// encapsulating protocol".
    LengthExceedsPayload,
    /// The authentication section's Auth Len is below 2 or runs past
    /// Length (§4.2: it counts Auth Type and Auth Len themselves).
    AuthenticationMalformed,
    /// "If the Detect Mult field is zero".
    DetectMultiplierZero,
    /// "If the Multipoint (M) bit is nonzero".
    Multipoint,
    /// "If the My Discriminator field is zero".
    MyDiscriminatorZero,
    /// "If the Your Discriminator field is nonzero ... If no session is
    /// found": no session has that local discriminator.
    YourDiscriminatorUnknown,
    /// "If the Your Discriminator field is zero and the State field is not
    /// Down or AdminDown".
    YourDiscriminatorZero,
    /// "If the A bit is set and no authentication is in use": anyvip has
    /// no authentication.
    AuthenticationNotConfigured,
}

impl Discard {
    /// Every reason, for metrics that want a zero for each.
    pub const ALL: [Discard; 11] = [
        Discard::Truncated,
        Discard::Version,
        Discard::LengthTooShort,
        Discard::LengthExceedsPayload,
        Discard::AuthenticationMalformed,
        Discard::DetectMultiplierZero,
        Discard::Multipoint,
        Discard::MyDiscriminatorZero,
        Discard::YourDiscriminatorUnknown,
        Discard::YourDiscriminatorZero,
        Discard::AuthenticationNotConfigured,
    ];

    /// A name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Discard::Truncated => "truncated",
            Discard::Version => "version",
            Discard::LengthTooShort => "length_too_short",
            Discard::LengthExceedsPayload => "length_exceeds_payload",
            Discard::AuthenticationMalformed => "authentication_malformed",
            Discard::DetectMultiplierZero => "detect_multiplier_zero",
            Discard::Multipoint => "multipoint",
            Discard::MyDiscriminatorZero => "my_discriminator_zero",
            Discard::YourDiscriminatorUnknown => "your_discriminator_unknown",
            Discard::YourDiscriminatorZero => "your_discriminator_zero",
            Discard::AuthenticationNotConfigured => "authentication_not_configured",
        }
    }
}

impl std::fmt::Display for Discard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
