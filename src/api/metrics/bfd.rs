//! The BFD metrics: per session state, transitions by diagnostic, packets
//! sent and received; datagrams dropped by reason.

use anyvip_bfd::{Discard, State};
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use super::{counter, family, flag, gauge, Labels, SnapshotCollector};
use crate::bfd::{BfdStatus, DROP_NOT_A_PEER, DROP_RECEIVE_ERROR, DROP_TTL};
use crate::bgp::peer::PeerStatus;

const STATES: [State; 4] = [State::AdminDown, State::Down, State::Init, State::Up];

impl SnapshotCollector {
    pub(super) fn bfd(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sessions: Vec<(&PeerStatus, &BfdStatus)> = self
            .snapshot
            .peers
            .iter()
            .filter_map(|p| Some((p, p.bfd.as_ref()?)))
            .collect();
        let id = |p: &PeerStatus| -> Labels {
            vec![
                ("peer", p.name.clone()),
                ("address", p.address.ip().to_string()),
            ]
        };
        family(
            e,
            "bfd_session_state",
            "BFD session state (RFC 5880): 1 for the state the session is in, 0 for the others.",
            None,
            sessions.iter().flat_map(|(p, b)| {
                STATES.iter().map(move |st| {
                    let mut l = id(p);
                    l.push(("state", st.as_str().to_string()));
                    (l, flag(b.state == *st))
                })
            }),
        )?;
        family(
            e,
            "bfd_detection_time",
            "The negotiated BFD detection time (absent until the router has been heard).",
            Some(&Unit::Seconds),
            sessions
                .iter()
                .filter_map(|(p, b)| Some((id(p), gauge(b.detection_time?.as_secs_f64())))),
        )?;
        family(
            e,
            "bfd_transitions",
            "BFD state changes, by new state and RFC 5880 diagnostic.",
            None,
            sessions.iter().flat_map(|(p, b)| {
                b.transitions.iter().map(move |((to, diagnostic), n)| {
                    let mut l = id(p);
                    l.push(("state", (*to).to_string()));
                    l.push(("diagnostic", (*diagnostic).to_string()));
                    (l, counter(*n))
                })
            }),
        )?;
        family(
            e,
            "bfd_packets_sent",
            "BFD Control packets sent.",
            None,
            sessions
                .iter()
                .map(|(p, b)| (id(p), counter(b.packets_sent))),
        )?;
        family(
            e,
            "bfd_packets_received",
            "BFD Control packets received and accepted by the session.",
            None,
            sessions
                .iter()
                .map(|(p, b)| (id(p), counter(b.packets_received))),
        )?;
        family(
            e,
            "bfd_send_errors",
            "BFD Control packets the socket refused to send.",
            None,
            sessions
                .iter()
                .map(|(p, b)| (id(p), counter(b.send_errors))),
        )?;
        if sessions.is_empty() && self.snapshot.bfd_dropped.is_empty() {
            return Ok(());
        }
        let reasons = Discard::ALL.iter().map(|d| d.as_str()).chain([
            DROP_TTL,
            DROP_NOT_A_PEER,
            DROP_RECEIVE_ERROR,
        ]);
        let dropped = &self.snapshot.bfd_dropped;
        family(
            e,
            "bfd_packets_dropped",
            "BFD datagrams dropped, by reason: an RFC 5880 §6.8.6 rule, ttl (single hop below 255, RFC 5881 §5), not_a_peer (no BFD peer has that address), receive_error.",
            None,
            reasons.map(|r| {
                (
                    vec![("reason", r.to_string())],
                    counter(dropped.get(r).copied().unwrap_or(0)),
                )
            }),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::render;
    use crate::api::testdata;

    #[test]
    fn bfd_sessions_and_drops_are_exported() {
        let text = render(&testdata::snapshot(), false);
        for line in [
            "anyvip_bfd_session_state{peer=\"tor1\",address=\"192.0.2.1\",state=\"up\"} 1",
            "anyvip_bfd_session_state{peer=\"tor1\",address=\"192.0.2.1\",state=\"down\"} 0",
            "anyvip_bfd_detection_time_seconds{peer=\"tor1\",address=\"192.0.2.1\"} 0.9",
            "anyvip_bfd_transitions_total{peer=\"tor1\",address=\"192.0.2.1\",state=\"down\",diagnostic=\"control_detection_time_expired\"} 1",
            "anyvip_bfd_packets_sent_total{peer=\"tor1\",address=\"192.0.2.1\"} 36000",
            "anyvip_bfd_packets_dropped_total{reason=\"not_a_peer\"} 2",
            "anyvip_bfd_packets_dropped_total{reason=\"version\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
        }
        // A peer without BFD has no BFD series.
        assert!(
            !text.contains("anyvip_bfd_session_state{peer=\"tor \\\"2\\\"\""),
            "{text}"
        );
    }
}
