//! `[speaker]`: our AS, router ID and where passive peers connect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use anyvip_proto::Asn;

use super::schema;
use super::values::ipv4;

/// `router_id = "auto"`: derive it from the node (as when it is left out).
pub const AUTO: &str = "auto";

/// The BGP port (RFC 4271 §8.2.1).
pub const BGP_PORT: u16 = 179;

#[derive(Debug, Clone, PartialEq)]
pub struct Speaker {
    pub asn: Asn,
    /// The BGP Identifier. 0.0.0.0 while it is left to the node (`router_id`
    /// omitted or "auto") and not yet derived: [`super::resolve_router_id`]
    /// fills it in before anything uses it. RFC 6286 §2.1 forbids 0 as an
    /// identifier, so the value means nothing else.
    pub router_id: Ipv4Addr,
    /// Where passive peers may connect.
    pub listen: Vec<SocketAddr>,
}

impl super::Validator<'_> {
    pub(super) fn speaker(&mut self, s: schema::Speaker, any_passive: bool) -> Speaker {
        if s.asn == 0 || s.asn == u32::from(anyvip_proto::AS_TRANS) {
            self.error(
                "speaker.asn",
                format!("{} is reserved and cannot be a speaker's AS", s.asn),
            );
        }
        let router_id = match s.router_id.as_deref() {
            None | Some(AUTO) => Ipv4Addr::UNSPECIFIED,
            Some(text) => {
                let id = self
                    .check(
                        "speaker.router_id",
                        ipv4(text).map_err(|e| format!("{e}, or \"{AUTO}\"")),
                    )
                    .unwrap_or(Ipv4Addr::UNSPECIFIED);
                // RFC 6286 §2.1: the BGP Identifier is a non-zero 32-bit value.
                if id.is_unspecified() && self.errors.iter().all(|e| e.key != "speaker.router_id") {
                    self.error(
                        "speaker.router_id",
                        format!(
                            "must not be 0.0.0.0 (RFC 6286); \"{AUTO}\" derives it from the node"
                        ),
                    );
                }
                id
            }
        };
        let listen = match s.listen {
            Some(list) => list
                .iter()
                .enumerate()
                .filter_map(|(i, a)| self.check(&format!("speaker.listen[{i}]"), parse_listen(a)))
                .collect(),
            None if any_passive => vec![
                SocketAddr::from((Ipv4Addr::UNSPECIFIED, BGP_PORT)),
                SocketAddr::from((Ipv6Addr::UNSPECIFIED, BGP_PORT)),
            ],
            None => Vec::new(),
        };
        Speaker {
            asn: Asn(s.asn),
            router_id,
            listen,
        }
    }
}

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, BGP_PORT)))
        .map_err(|_| format!("\"{s}\" is not an address or address:port"))
}
