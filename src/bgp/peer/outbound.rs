//! What we send on an Established session: the UPDATEs that bring the peer
//! in line with the desired set, the End-of-RIB markers after the first
//! burst, and the replay a ROUTE-REFRESH asks for. Builds messages only;
//! the peer task hands them to the connection's writer.

use std::collections::BTreeMap;
use std::net::IpAddr;

use anyvip_fsm::{ConnectionId, Negotiated};
use anyvip_proto::{Asn, Family, Update};

use super::family_of_prefix;
use crate::bgp::announce::{Desired, Sent, SessionView};
use crate::config::Peer;

/// The session on its Established connection and what it has announced.
pub struct Outbound {
    pub connection: ConnectionId,
    view: SessionView,
    sent: Sent,
}

impl Outbound {
    /// A session that has announced nothing yet. `local` is the
    /// connection's own address: the default next hop.
    pub fn new(
        connection: ConnectionId,
        peer: &Peer,
        local_asn: Asn,
        internal: bool,
        negotiated: &Negotiated,
        local: IpAddr,
    ) -> Outbound {
        Outbound {
            connection,
            view: SessionView {
                local_asn,
                internal,
                four_octet_as: negotiated.context.four_octet_as,
                families: negotiated.families.clone(),
                local_address: local,
                next_hop_v4: peer.next_hop_v4,
                next_hop_v6: peer.next_hop_v6,
            },
            sent: Sent::default(),
        }
    }

    /// The first burst: everything desired, then End-of-RIB for every
    /// negotiated family (RFC 4724 §2: the peer knows our initial set is
    /// complete).
    pub fn initial(&mut self, desired: &Desired) -> Vec<Update> {
        let mut out = self.converge(desired);
        out.extend(self.view.families.iter().map(|f| Update::end_of_rib(*f)));
        out
    }

    /// The UPDATEs that move the peer to `desired`, withdrawals first.
    pub fn converge(&mut self, desired: &Desired) -> Vec<Update> {
        self.sent.converge(&self.view, desired)
    }

    /// RFC 2918 §4: answer a ROUTE-REFRESH for `family` by announcing again
    /// what we announce in it.
    pub fn refresh(&self, family: Family) -> Vec<Update> {
        self.sent
            .replay(&self.view)
            .into_iter()
            .filter(|u| u.announced().next().map(|n| family_of_prefix(&n.prefix)) == Some(family))
            .collect()
    }

    /// How many prefixes we announce, in all and by family name.
    pub fn prefixes_sent(&self) -> (usize, BTreeMap<String, u64>) {
        let mut by_family: BTreeMap<String, u64> = BTreeMap::new();
        let mut all = 0;
        for p in self.sent.prefixes() {
            all += 1;
            *by_family
                .entry(family_of_prefix(p).to_string())
                .or_default() += 1;
        }
        (all, by_family)
    }
}
