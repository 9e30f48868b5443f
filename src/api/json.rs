//! The API's JSON documents. The server builds them from a [`Snapshot`];
//! the CLI reads them back (unknown fields are ignored, so an older CLI
//! still reads a newer daemon's answer).
//!
//! Times are RFC 3339 UTC (`since`, `at`) together with how long ago that
//! was as of the answer (`age_seconds`), so a reader needs no clock of its
//! own; durations are in seconds.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::control::{Snapshot, VipStatus};
use crate::health::{CheckState, Probe};

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    /// When the daemon started, and its uptime.
    pub started: String,
    pub uptime_seconds: u64,
    pub config_file: String,
    /// The BGP Identifier in use, and where it came from: "configured", or
    /// how `router_id = "auto"` derived it (e.g. "source address toward
    /// peer 192.0.2.1"). Absent from daemons older than these fields.
    #[serde(default)]
    pub router_id: Option<String>,
    #[serde(default)]
    pub router_id_source: Option<String>,
    /// The last reload (SIGHUP or `POST /v1/reload`), if any.
    pub last_reload: Option<Reload>,
    pub peers: Vec<Peer>,
    pub vips: Vec<Vip>,
    pub checks: Vec<Check>,
    /// The nftables counters; `null` when the data plane is not managed
    /// or could not be read.
    pub nft_counters: Option<NftCounters>,
    /// The data plane's reconciler; `null` when it is not managed.
    #[serde(default)]
    pub dataplane: Option<Dataplane>,
}

/// What the reconciler last saw of the node's addresses and nftables table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataplane {
    /// As it should be at the last look (or just repaired).
    pub in_sync: bool,
    /// Seconds since the table was last read; `null` if never.
    pub checked_age_seconds: Option<u64>,
    /// Tables installed again (missing or changed by someone else).
    pub nft_repairs: u64,
    /// VIP addresses added again (removed by someone else).
    pub address_repairs: u64,
    /// The last drift found: what, and how long ago.
    pub last_drift: Option<String>,
    pub last_drift_age_seconds: Option<u64>,
    /// The last error reading or repairing, while it lasts.
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reload {
    pub at: String,
    pub age_seconds: u64,
    pub ok: bool,
    /// Why it was refused (the running configuration stayed).
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Peer {
    pub name: String,
    pub address: String,
    pub port: u16,
    /// RFC 4271 name: Idle, Connect, Active, OpenSent, OpenConfirm,
    /// Established.
    pub state: String,
    /// When `state` was entered (for Established: the session's uptime).
    pub since: String,
    pub age_seconds: u64,
    pub established_transitions: u64,
    pub messages_received: u64,
    pub messages_sent: u64,
    pub updates_received: u64,
    pub updates_sent: u64,
    /// Prefixes announced on this session now, in all and by family.
    pub prefixes_sent: u64,
    pub prefixes_sent_by_family: BTreeMap<String, u64>,
    /// Prefixes the peer announced to us since start, by family (counted,
    /// never kept).
    pub prefixes_received: BTreeMap<String, u64>,
    /// The last error or NOTIFICATION (cleared when the session comes up).
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vip {
    pub prefix: String,
    /// `announced`, `draining` (announced with GRACEFUL_SHUTDOWN, until the
    /// drain delay has passed) or `withdrawn`.
    pub mode: String,
    /// All its checks are up (or `always = true`).
    pub healthy: bool,
    /// An operator (or a stop) asked for it to be drained.
    pub drained: bool,
    /// When `mode` last changed.
    pub since: String,
    pub age_seconds: u64,
    /// Why it is in `mode`.
    pub reason: String,
    pub transitions: u64,
    pub checks: Vec<VipCheck>,
}

/// One of a VIP's checks, as the VIP sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VipCheck {
    pub name: String,
    /// `up` or `down` (`null`: no such check is running).
    pub health: Option<String>,
    pub last: Option<ProbeResult>,
}

/// A check's last probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub pass: bool,
    pub reason: String,
    pub latency_seconds: f64,
    pub at: String,
    pub age_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    /// `https`, `http`, `tcp`, `exec` or `file`.
    pub kind: String,
    /// `up` or `down` (after rise/fall).
    pub health: String,
    pub since: String,
    pub age_seconds: u64,
    /// `null` until the first probe has finished.
    pub last: Option<ProbeResult>,
    /// Consecutive probes with the last probe's result.
    pub consecutive: u32,
    /// Passes towards up (while down) or failures towards down (while
    /// up), and how many it takes.
    pub progress: Progress,
    /// The reason of the latest failure, kept after recovery.
    pub last_error: Option<String>,
    pub probes: u64,
    pub failures: u64,
    pub transitions: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub done: u32,
    pub needed: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NftCounters {
    /// Packets to a VIP that this node would have forwarded (dropped).
    pub guard: NftCounter,
    /// New connections steered (DNAT) to the local apiserver.
    pub steered: NftCounter,
    /// Packets from the network to 127/8 that were not steered (dropped).
    pub loopback_guard: NftCounter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NftCounter {
    pub packets: u64,
    pub bytes: u64,
}

/// `POST /v1/drain` and `POST /v1/resume`: the VIPs affected, as they are
/// right after the request (a drained VIP is `draining` until the drain
/// delay has passed, then `withdrawn`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vips {
    pub vips: Vec<Vip>,
}

/// `POST /v1/reload` when it applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reloaded {
    pub ok: bool,
}

/// Every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Error {
    pub error: String,
}

/// RFC 3339 in UTC, whole seconds.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn age(now: SystemTime, t: SystemTime) -> u64 {
    now.duration_since(t).unwrap_or(Duration::ZERO).as_secs()
}

impl Status {
    pub fn new(s: &Snapshot, now: SystemTime) -> Status {
        Status {
            version: s.version.to_string(),
            started: timestamp(s.started),
            uptime_seconds: age(now, s.started),
            config_file: s.config_file.display().to_string(),
            router_id: Some(s.router_id.to_string()),
            router_id_source: Some(s.router_id_source.clone()),
            last_reload: s.last_reload.as_ref().map(|(at, r)| Reload {
                at: timestamp(*at),
                age_seconds: age(now, *at),
                ok: r.is_ok(),
                error: r.as_ref().err().cloned(),
            }),
            peers: s
                .peers
                .iter()
                .map(|p| Peer {
                    name: p.name.clone(),
                    address: p.address.ip().to_string(),
                    port: p.address.port(),
                    state: p.state.name().to_string(),
                    since: timestamp(p.since),
                    age_seconds: age(now, p.since),
                    established_transitions: p.established_transitions,
                    messages_received: p.messages_received,
                    messages_sent: p.messages_sent,
                    updates_received: p.updates_received,
                    updates_sent: p.updates_sent,
                    prefixes_sent: p.prefixes_sent as u64,
                    prefixes_sent_by_family: p.prefixes_sent_by_family.clone(),
                    prefixes_received: p.prefixes_received.clone(),
                    last_error: p.last_error.clone(),
                })
                .collect(),
            vips: s.vips.iter().map(|v| vip(v, &s.checks, now)).collect(),
            checks: s.checks.iter().map(|c| check(c, now)).collect(),
            nft_counters: s.counters.map(|c| NftCounters {
                guard: NftCounter {
                    packets: c.guard.packets,
                    bytes: c.guard.bytes,
                },
                steered: NftCounter {
                    packets: c.steered.packets,
                    bytes: c.steered.bytes,
                },
                loopback_guard: NftCounter {
                    packets: c.loopback_guard.packets,
                    bytes: c.loopback_guard.bytes,
                },
            }),
            dataplane: s.dataplane.as_ref().map(|d| Dataplane {
                in_sync: d.in_sync,
                checked_age_seconds: d.checked.map(|t| age(now, t)),
                nft_repairs: d.nft_repairs,
                address_repairs: d.address_repairs,
                last_drift: d.last_drift.as_ref().map(|(_, what)| what.clone()),
                last_drift_age_seconds: d.last_drift.as_ref().map(|(t, _)| age(now, *t)),
                last_error: d.last_error.clone(),
            }),
        }
    }
}

pub fn vip(v: &VipStatus, checks: &[CheckState], now: SystemTime) -> Vip {
    Vip {
        prefix: v.prefix.to_string(),
        mode: v.mode.name().to_string(),
        healthy: v.healthy,
        drained: v.drained,
        since: timestamp(v.since),
        age_seconds: age(now, v.since),
        reason: v.reason.clone(),
        transitions: v.transitions,
        checks: v
            .checks
            .iter()
            .map(|name| {
                let state = checks.iter().find(|c| &*c.name == name.as_str());
                VipCheck {
                    name: name.clone(),
                    health: state.map(|c| c.health.to_string()),
                    last: state.and_then(|c| c.last.as_ref()).map(|p| probe(p, now)),
                }
            })
            .collect(),
    }
}

fn probe(p: &Probe, now: SystemTime) -> ProbeResult {
    ProbeResult {
        pass: p.outcome.pass,
        reason: p.outcome.reason.clone(),
        latency_seconds: p.latency.as_secs_f64(),
        at: timestamp(p.at),
        age_seconds: age(now, p.at),
    }
}

fn check(c: &CheckState, now: SystemTime) -> Check {
    Check {
        name: c.name.to_string(),
        kind: c.kind.to_string(),
        health: c.health.to_string(),
        since: timestamp(c.since),
        age_seconds: age(now, c.since),
        last: c.last.as_ref().map(|p| probe(p, now)),
        consecutive: c.consecutive,
        progress: Progress {
            done: c.progress.0,
            needed: c.progress.1,
        },
        last_error: c.last_error.clone(),
        probes: c.probes,
        failures: c.failures,
        transitions: c.transitions,
    }
}
