//! What the session is configured with (RFC 4271 §8.1.1 session
//! attributes, the ones anyvip needs).

use std::net::Ipv4Addr;
use std::time::Duration;

use anyvip_proto::{Asn, Family, HoldTime};

/// Configuration of one peering.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionConfig {
    pub local_asn: Asn,
    /// Our BGP Identifier (RFC 6286: a non-zero 32-bit value).
    pub router_id: Ipv4Addr,
    /// The AS the peer must announce in its OPEN (RFC 4271 §6.2).
    pub peer_asn: Asn,
    /// Offered in our OPEN; the session uses the smaller of this and the
    /// peer's (RFC 4271 §4.2). Zero turns hold and keepalive timers off.
    pub hold_time: HoldTime,
    /// Interval between our KEEPALIVEs; never more than a third of the
    /// negotiated hold time (RFC 4271 §4.4), which is also the default.
    pub keepalive: Option<Duration>,
    /// Families we offer with the multiprotocol capability (RFC 4760 §8).
    /// Empty means none is advertised, which RFC 4760 reads as IPv4 unicast
    /// only.
    pub families: Vec<Family>,
    /// Never connect; only accept the peer's connections (RFC 4271 §8.1.1
    /// PassiveTcpEstablishment, minus the eventual outgoing attempt).
    pub passive: bool,
    /// First ConnectRetry interval; it doubles with every consecutive
    /// failure up to `connect_retry_max` and is reset once the session is
    /// Established. At least one second.
    pub connect_retry: Duration,
    /// Ceiling of the backoff (RFC 4271 §10 suggests 120 s for the
    /// ConnectRetryTime itself).
    pub connect_retry_max: Duration,
    /// Advertise the route refresh capability (RFC 2918 §2).
    pub route_refresh: bool,
}

impl SessionConfig {
    /// Defaults: hold time 90 s (RFC 4271 §10), keepalive a third of it,
    /// IPv4 unicast, active, retry after 5 s doubling up to 120 s, route
    /// refresh advertised.
    pub fn new(local_asn: Asn, router_id: Ipv4Addr, peer_asn: Asn) -> SessionConfig {
        SessionConfig {
            local_asn,
            router_id,
            peer_asn,
            hold_time: HoldTime::new(90).unwrap_or(HoldTime::DISABLED),
            keepalive: None,
            families: vec![Family::IPV4_UNICAST],
            passive: false,
            connect_retry: Duration::from_secs(5),
            connect_retry_max: Duration::from_secs(120),
            route_refresh: true,
        }
    }

    /// Internal BGP: both ends in the same AS.
    pub fn is_ibgp(&self) -> bool {
        self.local_asn == self.peer_asn
    }

    /// The families we speak: the configured ones, or IPv4 unicast when we
    /// advertise no multiprotocol capability (RFC 4760 §1, §8).
    pub fn local_families(&self) -> Vec<Family> {
        if self.families.is_empty() {
            vec![Family::IPV4_UNICAST]
        } else {
            self.families.clone()
        }
    }
}
