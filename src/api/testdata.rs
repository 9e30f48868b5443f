//! A daemon's snapshot and a stand-in main loop, for the API's unit tests.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyvip_bfd::Diagnostic;
use anyvip_fsm::State;
use ipnet::IpNet;
use tokio::sync::mpsc;

use crate::bfd::BfdStatus;
use crate::bgp::peer::PeerStatus;
use crate::control::{Control, Request, Snapshot, VipStatus};
use crate::health::latency::LatencyHistogram;
use crate::health::{CheckState, Health, Outcome, Probe};
use crate::steer::{Counter, Counters};
use crate::vip::Mode;

pub const VIP: &str = "192.0.2.100/32";

pub fn snapshot() -> Snapshot {
    let now = SystemTime::now();
    let ago = |s| now - Duration::from_secs(s);
    let mut latency = LatencyHistogram::default();
    for ms in [1, 2, 40] {
        latency.observe(Duration::from_millis(ms));
    }
    Snapshot {
        version: "0.1.0",
        started: ago(3700),
        config_file: PathBuf::from("/etc/anyvip/anyvip.toml"),
        router_id: std::net::Ipv4Addr::new(192, 0, 2, 11),
        router_id_source: "source address toward peer 192.0.2.1".to_string(),
        bfd_dropped: BTreeMap::from([("not_a_peer", 2), ("ttl", 1)]),
        last_reload: Some((ago(60), Err("peer[1].asn: 0 is reserved".to_string()))),
        peers: vec![
            PeerStatus {
                name: "tor1".to_string(),
                address: "192.0.2.1:179".parse().unwrap(),
                state: State::Established,
                since: ago(3600),
                last_error: None,
                established_transitions: 1,
                messages_received: 1200,
                messages_sent: 1201,
                updates_received: 1,
                updates_sent: 2,
                prefixes_received: BTreeMap::from([("ipv4-unicast".to_string(), 3)]),
                prefixes_sent: 1,
                prefixes_sent_by_family: BTreeMap::from([("ipv4-unicast".to_string(), 1)]),
                converged_version: 4,
                bfd: Some(BfdStatus {
                    state: anyvip_bfd::State::Up,
                    remote_state: anyvip_bfd::State::Up,
                    since: ago(3590),
                    last_diagnostic: Some(Diagnostic::ControlDetectionTimeExpired),
                    remote_diagnostic: Diagnostic::NoDiagnostic,
                    multihop: false,
                    interval: Duration::from_millis(100),
                    multiplier: 3,
                    tx_interval: Some(Duration::from_millis(100)),
                    rx_interval: Some(Duration::from_millis(300)),
                    detection_time: Some(Duration::from_millis(900)),
                    local_discriminator: 0x1234_5678,
                    remote_discriminator: Some(7),
                    transitions: BTreeMap::from([
                        (("up", "no_diagnostic"), 2),
                        (("down", "control_detection_time_expired"), 1),
                    ]),
                    packets_sent: 36_000,
                    packets_received: 12_000,
                    send_errors: 0,
                }),
            },
            PeerStatus {
                name: "tor \"2\"".to_string(),
                address: "[2001:db8::2]:1790".parse().unwrap(),
                state: State::Active,
                since: ago(5),
                last_error: Some(
                    "NOTIFICATION received: Cease / Administrative Shutdown \"maintenance\""
                        .to_string(),
                ),
                established_transitions: 3,
                messages_received: 10,
                messages_sent: 11,
                updates_received: 0,
                updates_sent: 1,
                prefixes_received: BTreeMap::new(),
                prefixes_sent: 0,
                prefixes_sent_by_family: BTreeMap::new(),
                converged_version: 4,
                bfd: None,
            },
        ],
        vips: vec![VipStatus {
            prefix: VIP.parse().unwrap(),
            mode: Mode::Announced,
            healthy: true,
            drained: false,
            checks: vec!["apiserver".to_string()],
            since: ago(3500),
            reason: "all checks up".to_string(),
            transitions: 1,
        }],
        checks: vec![CheckState {
            name: Arc::from("apiserver"),
            kind: "https",
            health: Health::Up,
            since: ago(3500),
            last: Some(Probe {
                outcome: Outcome::pass("HTTP/1.1 200"),
                latency: Duration::from_micros(1500),
                at: ago(1),
            }),
            consecutive: 7000,
            progress: (0, 2),
            last_error: Some("connect: Connection refused".to_string()),
            probes: 7003,
            failures: 3,
            transitions: 1,
            latency,
        }],
        counters: Some(Counters {
            guard: Counter {
                packets: 5,
                bytes: 300,
            },
            steered: Counter {
                packets: 42,
                bytes: 2520,
            },
            loopback_guard: Counter::default(),
        }),
        dataplane: Some(crate::dataplane::DataplaneStatus {
            counters: None,
            checked: Some(ago(1)),
            in_sync: true,
            nft_repairs: 1,
            address_repairs: 0,
            last_drift: Some((ago(30), "table inet anyvip is missing".to_string())),
            last_error: None,
        }),
    }
}

/// A stand-in for the daemon's main loop: answers status with
/// [`snapshot`] (as changed by drains), knows one VIP, and refuses reloads.
pub fn daemon() -> Control {
    let (control, mut requests) = Control::new();
    tokio::spawn(async move {
        let mut snap = snapshot();
        let vip: IpNet = VIP.parse().unwrap();
        while let Some(r) = requests.recv().await {
            match r {
                Request::Status(reply) => {
                    let _ = reply.send(snap.clone());
                }
                Request::Drain { prefix, reply } | Request::Resume { prefix, reply } => {
                    let result = match prefix {
                        Some(p) if p != vip => Err(format!("{p} is not a configured VIP")),
                        _ => {
                            snap.vips[0].drained = !snap.vips[0].drained;
                            snap.vips[0].mode = if snap.vips[0].drained {
                                Mode::Draining
                            } else {
                                Mode::Announced
                            };
                            Ok(vec![vip])
                        }
                    };
                    let _ = reply.send(result);
                }
                Request::Reload(reply) => {
                    let _ = reply.send(Err("peer[0].asn: 0 is reserved".to_string()));
                }
            }
        }
    });
    control
}

/// A daemon that is gone: every request fails as stopping.
pub fn gone() -> Control {
    let (control, requests): (Control, mpsc::Receiver<Request>) = Control::new();
    drop(requests);
    control
}
