use crate::family::Family;

/// What one session negotiated, as far as it changes the bytes on the wire.
///
/// The same context is used to decode what the peer sends and to encode what
/// we send: every capability here is only "on" when both sides advertised it
/// (RFC 6793 §4, RFC 7911 §4, RFC 8654 §3). It is never inferred from the
/// bytes of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Context {
    /// RFC 6793: AS numbers in AS_PATH and AGGREGATOR are four octets wide.
    pub four_octet_as: bool,
    /// RFC 7911: which families carry a path identifier before each prefix.
    pub add_path: AddPath,
    /// RFC 8654: messages may be up to 65535 octets long.
    pub extended_message: bool,
}

impl Context {
    /// The context of a session between two four-octet-AS speakers with no
    /// other options: what every modern router negotiates.
    pub const FOUR_OCTET_AS: Context = Context {
        four_octet_as: true,
        add_path: AddPath::NONE,
        extended_message: false,
    };

    /// The context of a session with an RFC 4271 speaker that does not
    /// support four-octet AS numbers.
    pub const TWO_OCTET_AS: Context = Context {
        four_octet_as: false,
        add_path: AddPath::NONE,
        extended_message: false,
    };

    /// Largest message length this session accepts and may send.
    pub fn max_message_len(&self) -> usize {
        if self.extended_message {
            crate::header::MAX_EXTENDED_LEN
        } else {
            crate::header::MAX_LEN
        }
    }
}

/// Families for which NLRI carry an RFC 7911 path identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddPath {
    pub ipv4_unicast: bool,
    pub ipv6_unicast: bool,
}

impl AddPath {
    pub const NONE: AddPath = AddPath {
        ipv4_unicast: false,
        ipv6_unicast: false,
    };

    /// Whether prefixes of `family` carry a path identifier.
    pub fn applies_to(&self, family: Family) -> bool {
        match family {
            Family::IPV4_UNICAST => self.ipv4_unicast,
            Family::IPV6_UNICAST => self.ipv6_unicast,
            _ => false,
        }
    }
}
