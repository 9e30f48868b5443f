//! The OPEN we send, and the checks on the one we receive (RFC 4271 §6.2,
//! in its order), which either reject it with a NOTIFICATION or produce
//! what the session negotiated.

use bytes::{BufMut, Bytes, BytesMut};

use anyvip_proto::capability::code;
use anyvip_proto::notification::open as subcode;
use anyvip_proto::{
    Asn, Capability, Context, DecodeError, ErrorCode, Family, HoldTime, Notification, Open,
    OptionalParameter, AS_TRANS, BGP_VERSION,
};

use crate::action::Negotiated;
use crate::config::SessionConfig;

/// Our OPEN: version 4, our AS (AS_TRANS in the two-octet field only when
/// it does not fit, RFC 6793 §4.2.1), our hold time and identifier, and the
/// capabilities: multiprotocol for each configured family (RFC 4760 §8),
/// route refresh (RFC 2918 §2) if configured, four-octet AS (RFC 6793 §3,
/// added by [`Open::new`]). Nothing else is offered, so nothing else can
/// be negotiated.
pub fn local_open(config: &SessionConfig) -> Open {
    let mut capabilities: Vec<Capability> = Vec::new();
    for family in &config.families {
        let cap = Capability::Multiprotocol(*family);
        if !capabilities.contains(&cap) {
            capabilities.push(cap);
        }
    }
    if config.route_refresh {
        capabilities.push(Capability::RouteRefresh);
    }
    Open::new(
        config.local_asn,
        config.hold_time,
        config.router_id,
        capabilities,
    )
}

fn open_error(subcode: u8, data: Bytes) -> Notification {
    Notification::new(ErrorCode::Open, subcode, data)
}

/// Check the peer's OPEN in the order of RFC 4271 §6.2 (version, AS, hold
/// time, BGP Identifier, optional parameters), then what the capabilities
/// must give us. The first failure is the NOTIFICATION to send.
pub fn check_open(config: &SessionConfig, open: &Open) -> Result<Negotiated, Notification> {
    // The decoder already answers other versions with 2/1; an OPEN built
    // by other means is held to the same rule.
    if open.version != BGP_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            version: open.version,
        }
        .notification());
    }

    let peer_asn = peer_asn(open)?;
    // RFC 4271 §6.2: "If the Autonomous System field of the OPEN message
    // is unacceptable, then the Error Subcode MUST be set to Bad Peer AS."
    if peer_asn != config.peer_asn {
        return Err(open_error(subcode::BAD_PEER_AS, Bytes::new()));
    }

    // RFC 4271 §6.2: "An implementation MUST reject Hold Time values of
    // one or two seconds."
    let Some(peer_hold) = HoldTime::new(open.hold_time) else {
        return Err(open_error(subcode::UNACCEPTABLE_HOLD_TIME, Bytes::new()));
    };

    // RFC 6286 §2.2: "If the BGP Identifier field of the OPEN message is
    // zero, or if it is the same as the BGP Identifier of the local BGP
    // speaker and the message is from an internal peer, then the Error
    // Subcode is set to 'Bad BGP Identifier'."
    if open.bgp_identifier.is_unspecified()
        || (config.is_ibgp() && open.bgp_identifier == config.router_id)
    {
        return Err(open_error(subcode::BAD_BGP_IDENTIFIER, Bytes::new()));
    }

    // RFC 4271 §6.2: "If one of the Optional Parameters in the OPEN
    // message is not recognized, then the Error Subcode MUST be set to
    // Unsupported Optional Parameters." Unknown capabilities inside the
    // Capabilities parameter are ignored instead (RFC 5492 §3).
    if open
        .parameters
        .iter()
        .any(|p| matches!(p, OptionalParameter::Unknown { .. }))
    {
        return Err(open_error(
            subcode::UNSUPPORTED_OPTIONAL_PARAMETER,
            Bytes::new(),
        ));
    }

    let families = common_families(config, open);
    if families.is_empty() {
        // RFC 5492 §5: a speaker MAY end a peering that lacks a capability
        // it needs; the Data field "MUST list the set of capabilities" that
        // caused it: here, our multiprotocol capabilities.
        return Err(open_error(
            subcode::UNSUPPORTED_CAPABILITY,
            multiprotocol_capabilities(&config.local_families()),
        ));
    }

    // RFC 4271 §4.2: "the smaller of its configured Hold Time and the Hold
    // Time received in the OPEN message"; zero on either side means no
    // hold timer and no keepalives (never a timer of length zero).
    let hold_time = config.hold_time.min(peer_hold).duration();
    // RFC 4271 §4.4: "A reasonable maximum time between KEEPALIVE messages
    // would be one third of the Hold Time interval."
    let keepalive = hold_time.map(|hold| {
        let third = hold / 3;
        config
            .keepalive
            .filter(|k| !k.is_zero())
            .map_or(third, |k| k.min(third))
    });

    Ok(Negotiated {
        peer_asn,
        peer_router_id: open.bgp_identifier,
        hold_time,
        keepalive,
        // We always send the four-octet AS capability, so it is on exactly
        // when the peer sent it too (RFC 6793 §4).
        context: if open.four_octet_as().is_some() {
            Context::FOUR_OCTET_AS
        } else {
            Context::TWO_OCTET_AS
        },
        families,
        peer_route_refresh: open.has_capability(code::ROUTE_REFRESH),
        peer_capabilities: open.capabilities().cloned().collect(),
    })
}

/// The peer's AS number, or Bad Peer AS when the OPEN contradicts itself.
fn peer_asn(open: &Open) -> Result<Asn, Notification> {
    let bad = || open_error(subcode::BAD_PEER_AS, Bytes::new());
    let asn = match open.four_octet_as() {
        // RFC 6793 §4.2.1: a four-octet speaker whose AS does not fit in
        // two octets puts AS_TRANS in My Autonomous System, and one whose
        // AS fits puts the AS itself there.
        Some(asn) if asn > u32::from(u16::MAX) && open.my_as != AS_TRANS => return Err(bad()),
        Some(asn) if asn <= u32::from(u16::MAX) && u32::from(open.my_as) != asn => {
            return Err(bad())
        }
        Some(asn) => asn,
        None => u32::from(open.my_as),
    };
    // RFC 7607 §2: an OPEN with peer AS zero is answered with Bad Peer AS.
    if asn == 0 {
        return Err(bad());
    }
    Ok(Asn(asn))
}

/// Our families that the peer speaks too, in our order.
///
/// RFC 4760 §1: a speaker that advertises no multiprotocol capability
/// speaks IPv4 unicast only. One that advertises any speaks exactly what it
/// advertised: IPv4 unicast is then not implied.
fn common_families(config: &SessionConfig, open: &Open) -> Vec<Family> {
    let mut peer: Vec<Family> = open.multiprotocol_families().collect();
    if peer.is_empty() {
        peer.push(Family::IPV4_UNICAST);
    }
    let mut common: Vec<Family> = Vec::new();
    for family in config.local_families() {
        if peer.contains(&family) && !common.contains(&family) {
            common.push(family);
        }
    }
    common
}

/// Multiprotocol capability TLVs (RFC 4760 §8: code 1, length 4, AFI,
/// reserved, SAFI) for the data field of an Unsupported Capability error.
fn multiprotocol_capabilities(families: &[Family]) -> Bytes {
    let mut out = BytesMut::with_capacity(families.len() * 6);
    for family in families {
        out.put_u8(code::MULTIPROTOCOL);
        out.put_u8(4);
        out.put_u16(family.afi.into());
        out.put_u8(0);
        out.put_u8(family.safi.into());
    }
    out.freeze()
}
