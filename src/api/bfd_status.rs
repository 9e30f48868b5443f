//! A peer's BFD session in the API: the JSON document ([`PeerBfd`], under
//! each peer of `GET /v1/status`) and its table in `anyvip status`.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::json::{self, timestamp};
use super::table;
use crate::bfd::BfdStatus;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerBfd {
    /// RFC 5880 state: `admin_down`, `down`, `init` or `up`.
    pub state: String,
    /// The router's state, as its last packet said.
    pub remote_state: String,
    /// When `state` was entered.
    pub since: String,
    pub age_seconds: u64,
    /// RFC 5883 multihop (port 4784) rather than single hop (3784).
    pub multihop: bool,
    /// Configured: our interval (transmit and receive) and multiplier.
    pub interval_seconds: f64,
    pub multiplier: u8,
    /// Negotiated (RFC 5880 §6.8.2): what we send at, what the router
    /// sends at, and the silence that makes the session Down; `null`
    /// until the router has been heard.
    pub tx_interval_seconds: Option<f64>,
    pub rx_interval_seconds: Option<f64>,
    pub detection_time_seconds: Option<f64>,
    /// Why the session last went down (RFC 5880 diagnostic, e.g.
    /// `control_detection_time_expired`); `null`: never.
    pub last_diagnostic: Option<String>,
    pub remote_diagnostic: String,
    pub local_discriminator: u32,
    pub remote_discriminator: Option<u32>,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub send_errors: u64,
    pub transitions: Vec<Transition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub to: String,
    pub diagnostic: String,
    pub count: u64,
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl PeerBfd {
    pub fn new(b: &BfdStatus, now: SystemTime) -> PeerBfd {
        PeerBfd {
            state: b.state.as_str().to_string(),
            remote_state: b.remote_state.as_str().to_string(),
            since: timestamp(b.since),
            age_seconds: now.duration_since(b.since).unwrap_or_default().as_secs(),
            multihop: b.multihop,
            interval_seconds: seconds(b.interval),
            multiplier: b.multiplier,
            tx_interval_seconds: b.tx_interval.map(seconds),
            rx_interval_seconds: b.rx_interval.map(seconds),
            detection_time_seconds: b.detection_time.map(seconds),
            last_diagnostic: b.last_diagnostic.map(|d| d.as_str().to_string()),
            remote_diagnostic: b.remote_diagnostic.as_str().to_string(),
            local_discriminator: b.local_discriminator,
            remote_discriminator: b.remote_discriminator,
            packets_sent: b.packets_sent,
            packets_received: b.packets_received,
            send_errors: b.send_errors,
            transitions: b
                .transitions
                .iter()
                .map(|((to, diagnostic), count)| Transition {
                    to: (*to).to_string(),
                    diagnostic: (*diagnostic).to_string(),
                    count: *count,
                })
                .collect(),
        }
    }
}

fn ms(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) => format!("{}ms", (s * 1000.0).round()),
        None => "-".to_string(),
    }
}

/// The BFD table of `anyvip status`, after the peers; nothing when no
/// peer runs BFD.
pub fn table(out: &mut String, s: &json::Status) {
    let mut rows = vec![vec![
        "BFD peer".to_string(),
        "State".to_string(),
        "Since".to_string(),
        "TX".to_string(),
        "RX".to_string(),
        "Detect".to_string(),
        "Last diagnostic".to_string(),
    ]];
    for p in &s.peers {
        let Some(b) = &p.bfd else {
            continue;
        };
        rows.push(vec![
            p.name.clone(),
            b.state.clone(),
            table::age(b.age_seconds),
            ms(b.tx_interval_seconds),
            ms(b.rx_interval_seconds),
            ms(b.detection_time_seconds),
            b.last_diagnostic.clone().unwrap_or_else(|| "-".to_string()),
        ]);
    }
    if rows.len() == 1 {
        return;
    }
    table::table(out, &rows);
    if !s.bfd_dropped.is_empty() {
        let dropped: Vec<String> = s
            .bfd_dropped
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        let _ = writeln!(out, "BFD packets dropped: {}", dropped.join(", "));
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::super::testdata;
    use super::*;

    #[test]
    fn status_shows_each_bfd_session_with_its_negotiated_timers() {
        let s = json::Status::new(&testdata::snapshot(), SystemTime::now());
        let b = s.peers.first().and_then(|p| p.bfd.clone()).unwrap();
        assert_eq!(b.state, "up");
        assert_eq!(b.detection_time_seconds, Some(0.9));
        assert_eq!(
            b.last_diagnostic.as_deref(),
            Some("control_detection_time_expired")
        );
        assert_eq!(s.peers.get(1).and_then(|p| p.bfd.clone()), None);
        let text = table::status(&s);
        let row: Vec<&str> = text
            .lines()
            .find(|l| l.starts_with("tor1 ") && l.contains("up"))
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(
            row,
            [
                "tor1",
                "up",
                "59m50s",
                "100ms",
                "300ms",
                "900ms",
                "control_detection_time_expired"
            ]
        );
        assert!(
            text.contains("BFD packets dropped: not_a_peer 2, ttl 1"),
            "{text}"
        );
        // A reader of an older daemon's answer (no bfd fields) still works.
        let mut value = serde_json::to_value(&s).unwrap();
        value["peers"][0].as_object_mut().unwrap().remove("bfd");
        value.as_object_mut().unwrap().remove("bfd_dropped");
        let old: json::Status = serde_json::from_value(value).unwrap();
        assert_eq!(old.peers[0].bfd, None);
    }
}
