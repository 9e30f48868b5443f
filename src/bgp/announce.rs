//! What we announce: the routes the daemon wants out, and the UPDATEs that
//! carry them to one peer (RFC 4271 §5, RFC 4760, RFC 6793 §4.2.2).
//!
//! Pure: each Established session (the peer task's outbound side) owns a
//! [`Sent`] and feeds it every new desired set; it gets back the UPDATEs
//! to send, withdrawals first.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyvip_proto::attribute::{
    AsPath, Community, ExtendedCommunity, LargeCommunity, MpNextHop, MpReach, MpUnreach, Origin,
};
use anyvip_proto::{Asn, Attribute, AttributeValue, Family, Nlri, Update};
use ipnet::IpNet;

/// One route as the daemon wants it announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub med: Option<u32>,
    /// Sent on iBGP sessions only.
    pub local_pref: u32,
    /// Extra copies of our AS on eBGP sessions.
    pub prepend: u8,
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
    pub extended_communities: Vec<ExtendedCommunity>,
}

/// Every route the daemon wants announced right now, by prefix.
pub type Desired = BTreeMap<IpNet, Route>;

/// What one established session needs to know to build UPDATEs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub local_asn: Asn,
    pub internal: bool,
    /// Negotiated: AS numbers go four octets wide; otherwise AS_TRANS and
    /// AS4_PATH (RFC 6793 §4.2.2).
    pub four_octet_as: bool,
    pub families: Vec<Family>,
    /// The session's local address: the default next hop.
    pub local_address: IpAddr,
    pub next_hop_v4: Option<Ipv4Addr>,
    pub next_hop_v6: Option<Ipv6Addr>,
}

impl SessionView {
    fn family_of(prefix: &IpNet) -> Family {
        match prefix {
            IpNet::V4(_) => Family::IPV4_UNICAST,
            IpNet::V6(_) => Family::IPV6_UNICAST,
        }
    }

    /// Whether this session carries `prefix` at all.
    pub fn carries(&self, prefix: &IpNet) -> bool {
        self.families.contains(&Self::family_of(prefix)) && self.next_hop(prefix).is_some()
    }

    fn next_hop(&self, prefix: &IpNet) -> Option<IpAddr> {
        match (prefix, self.local_address) {
            (IpNet::V4(_), _) if self.next_hop_v4.is_some() => self.next_hop_v4.map(IpAddr::V4),
            (IpNet::V4(_), IpAddr::V4(a)) => Some(IpAddr::V4(a)),
            (IpNet::V6(_), _) if self.next_hop_v6.is_some() => self.next_hop_v6.map(IpAddr::V6),
            (IpNet::V6(_), IpAddr::V6(a)) => Some(IpAddr::V6(a)),
            _ => None,
        }
    }

    /// RFC 4271 §5.1.2: on eBGP our AS (plus prepends) leads the path; on
    /// iBGP the originating speaker sends an empty AS_PATH.
    fn as_path_attributes(&self, route: &Route) -> Vec<AttributeValue> {
        if self.internal {
            return vec![AttributeValue::AsPath(AsPath::default())];
        }
        let path = AsPath::sequence(std::iter::repeat_n(
            self.local_asn.0,
            1 + usize::from(route.prepend),
        ));
        if self.four_octet_as {
            return vec![AttributeValue::AsPath(path)];
        }
        let (two, four) = path.for_two_octet_peer();
        let mut out = vec![AttributeValue::AsPath(two)];
        out.extend(four.map(AttributeValue::As4Path));
        out
    }

    /// The UPDATE announcing `prefix` with `route`'s attributes. `None` if
    /// this session does not carry the prefix's family.
    pub fn announce(&self, prefix: &IpNet, route: &Route) -> Option<Update> {
        if !self.carries(prefix) {
            return None;
        }
        let next_hop = self.next_hop(prefix)?;
        let mut values = vec![AttributeValue::Origin(Origin::Igp)];
        values.extend(self.as_path_attributes(route));
        let mut nlri = Vec::new();
        match (prefix, next_hop) {
            (IpNet::V4(_), IpAddr::V4(nh)) => {
                values.push(AttributeValue::NextHop(nh));
                nlri.push(Nlri::new(*prefix));
            }
            (IpNet::V6(_), IpAddr::V6(global)) => {
                values.push(AttributeValue::MpReach(MpReach {
                    family: Family::IPV6_UNICAST,
                    next_hop: MpNextHop::Ipv6 {
                        global,
                        link_local: None,
                    },
                    nlri: vec![Nlri::new(*prefix)],
                }));
            }
            _ => return None,
        }
        if let Some(med) = route.med {
            values.push(AttributeValue::MultiExitDisc(med));
        }
        if self.internal {
            values.push(AttributeValue::LocalPref(route.local_pref));
        }
        if !route.communities.is_empty() {
            values.push(AttributeValue::Communities(route.communities.clone()));
        }
        if !route.extended_communities.is_empty() {
            values.push(AttributeValue::ExtendedCommunities(
                route.extended_communities.clone(),
            ));
        }
        if !route.large_communities.is_empty() {
            values.push(AttributeValue::LargeCommunities(
                route.large_communities.clone(),
            ));
        }
        // RFC 4271 §5: attributes in ascending type order is what routers
        // expect to see (and what makes captures easy to diff).
        values.sort_by_key(AttributeValue::type_code);
        Some(Update {
            attributes: values.into_iter().map(Attribute::new).collect(),
            nlri,
            ..Update::default()
        })
    }

    /// The UPDATE withdrawing `prefix`.
    pub fn withdraw(&self, prefix: &IpNet) -> Option<Update> {
        if !self.families.contains(&Self::family_of(prefix)) {
            return None;
        }
        Some(match prefix {
            IpNet::V4(_) => Update {
                withdrawn: vec![Nlri::new(*prefix)],
                ..Update::default()
            },
            IpNet::V6(_) => Update {
                attributes: vec![Attribute::new(AttributeValue::MpUnreach(MpUnreach {
                    family: Family::IPV6_UNICAST,
                    withdrawn: vec![Nlri::new(*prefix)],
                }))],
                ..Update::default()
            },
        })
    }
}

/// What one session has announced, to diff the next desired set against.
#[derive(Debug, Default)]
pub struct Sent {
    routes: BTreeMap<IpNet, Route>,
}

impl Sent {
    /// The UPDATEs that move the peer from what we sent to `desired`:
    /// withdrawals first (a failing VIP leaves before anything else goes
    /// out), then new or changed announcements.
    pub fn converge(&mut self, session: &SessionView, desired: &Desired) -> Vec<Update> {
        let mut out = Vec::new();
        let gone: Vec<IpNet> = self
            .routes
            .keys()
            .filter(|p| !desired.contains_key(p))
            .copied()
            .collect();
        for prefix in gone {
            self.routes.remove(&prefix);
            out.extend(session.withdraw(&prefix));
        }
        for (prefix, route) in desired {
            if !session.carries(prefix) || self.routes.get(prefix) == Some(route) {
                continue;
            }
            if let Some(update) = session.announce(prefix, route) {
                self.routes.insert(*prefix, route.clone());
                out.push(update);
            }
        }
        out
    }

    /// Everything we announce, again: the answer to a ROUTE-REFRESH
    /// (RFC 2918 §4).
    pub fn replay(&self, session: &SessionView) -> Vec<Update> {
        self.routes
            .iter()
            .filter_map(|(p, r)| session.announce(p, r))
            .collect()
    }

    /// The prefixes announced, for status and metrics.
    pub fn prefixes(&self) -> impl Iterator<Item = &IpNet> + '_ {
        self.routes.keys()
    }
}

#[cfg(test)]
mod tests;
