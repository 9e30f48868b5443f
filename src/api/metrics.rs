//! Prometheus metrics on `[api] metrics` (plain HTTP, `GET /metrics`).
//!
//! Every scrape asks the main loop for a [`Snapshot`] and renders it with
//! `prometheus-client` (the Prometheus project's own Rust client: the
//! OpenMetrics encoder and the 0.0.4 text encoder, kept up to date with
//! the formats, escaping done right). Nothing is counted twice: the
//! counters already live where the events happen (peer tasks, check tasks,
//! the VIP lifecycle) and a scrape reads them, so the metrics cannot drift
//! from `anyvip status`. A peer or check that a reload replaces starts
//! again from zero, which Prometheus treats as a counter reset.
//!
//! Check latency is a real histogram (`anyvip_check_latency_seconds`):
//! each check task records every probe in fixed buckets, so no probe
//! between two scrapes is missed; the last probe's latency is a gauge too.
//!
//! The format follows the scraper's `Accept` header: OpenMetrics 1.0 when
//! asked for (Prometheus asks for it), the 0.0.4 text format otherwise
//! (curl, older tools).
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `anyvip_build_info` | info | `version` |
//! | `anyvip_start_time_seconds` | gauge | |
//! | `anyvip_config_last_reload_successful` | gauge (0/1; 1 before any reload) | |
//! | `anyvip_config_last_reload_timestamp_seconds` | gauge (after a reload) | |
//! | `anyvip_peer_state` | gauge, 1 for the current state | `peer`, `address`, `state` |
//! | `anyvip_peer_last_state_change_timestamp_seconds` | gauge | `peer`, `address` |
//! | `anyvip_peer_established_transitions_total` | counter | `peer`, `address` |
//! | `anyvip_peer_messages_received_total`, `_sent_total` | counter | `peer`, `address` |
//! | `anyvip_peer_updates_received_total`, `_sent_total` | counter | `peer`, `address` |
//! | `anyvip_peer_prefixes_advertised` | gauge | `peer`, `address`, `family` |
//! | `anyvip_peer_prefixes_received_total` | counter | `peer`, `address`, `family` |
//! | `anyvip_vip_state` | gauge, 1 for the current mode | `prefix`, `state` |
//! | `anyvip_vip_healthy`, `anyvip_vip_drained` | gauge (0/1) | `prefix` |
//! | `anyvip_vip_transitions_total` | counter | `prefix` |
//! | `anyvip_vip_last_transition_timestamp_seconds` | gauge | `prefix` |
//! | `anyvip_check_up` | gauge (0/1, after rise/fall) | `check`, `kind` |
//! | `anyvip_check_last_probe_success` | gauge (0/1) | `check` |
//! | `anyvip_check_last_latency_seconds` | gauge | `check` |
//! | `anyvip_check_latency_seconds` | histogram | `check` |
//! | `anyvip_check_probes_total`, `_failures_total`, `_transitions_total` | counter | `check` |
//! | `anyvip_nft_packets_total`, `anyvip_nft_bytes_total` | counter (when the data plane is managed) | `counter` = `guard`, `steered`, `loopback_guard` |

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyvip_fsm::State;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;

use super::connections::{Admission, Limits};
use crate::bgp::peer::PeerStatus;
use crate::control::{Control, Snapshot, VipStatus};
use crate::health::CheckState;
use crate::vip::Mode;

/// OpenMetrics 1.0's media type.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The Prometheus 0.0.4 text format's.
pub const PROMETHEUS_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Who the metrics endpoint serves, and for how long (the same rules as
/// the control socket: see [`super::connections`]).
const LIMITS: Limits = Limits {
    name: "metrics",
    // A few scrapers at once (Prometheus HA pairs, an operator with curl),
    // with room to spare; together with the control socket's cap far fewer
    // file descriptors than the daemon has.
    max_connections: 64,
    // Over the network: room for a slow link, still short enough that
    // connections nobody uses are gone soon.
    header_read_timeout: Duration::from_secs(10),
    // A scrape that takes longer is cut (it only reads a snapshot).
    lifetime: Duration::from_secs(30),
    // Prometheus reuses its connection between scrapes.
    keep_alive: true,
};

const STATES: [State; 6] = [
    State::Idle,
    State::Connect,
    State::Active,
    State::OpenSent,
    State::OpenConfirm,
    State::Established,
];
const MODES: [Mode; 3] = [Mode::Announced, Mode::Draining, Mode::Withdrawn];
/// Always exported (0 when absent), so the series do not come and go with
/// the session.
const FAMILIES: [&str; 2] = ["ipv4-unicast", "ipv6-unicast"];

/// The metrics text for one snapshot; `openmetrics` picks the format.
pub fn render(snapshot: &Snapshot, openmetrics: bool) -> String {
    let mut registry = Registry::with_prefix("anyvip");
    registry.register_collector(Box::new(SnapshotCollector {
        snapshot: snapshot.clone(),
    }));
    let mut out = String::new();
    let written = if openmetrics {
        prometheus_client::encoding::text::encode(&mut out, &registry)
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
    };
    // Writing to a String cannot fail; a collector error would be a bug.
    if let Err(e) = written {
        tracing::error!(error = %e, "cannot encode the metrics");
    }
    out
}

#[derive(Debug)]
struct SnapshotCollector {
    snapshot: Snapshot,
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

type Labels = Vec<(&'static str, String)>;
/// A counter family read off each item: (name, help, value).
type CounterOf<T> = (&'static str, &'static str, fn(&T) -> u64);

/// One metric family: its descriptor, then one sample per label set.
fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    samples: impl IntoIterator<Item = (Labels, M)>,
) -> Result<(), std::fmt::Error> {
    let mut samples = samples.into_iter().peekable();
    let Some((_, first)) = samples.peek() else {
        return Ok(());
    };
    let metric_type = first.metric_type();
    let mut metric = encoder.encode_descriptor(name, help, unit, metric_type)?;
    for (labels, m) in samples {
        m.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

fn counter(v: u64) -> ConstCounter<u64> {
    ConstCounter::new(v)
}

fn gauge(v: f64) -> ConstGauge<f64> {
    ConstGauge::new(v)
}

fn flag(b: bool) -> ConstGauge<i64> {
    ConstGauge::new(i64::from(b))
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.snapshot;
        {
            let labels = [("version", s.version)];
            let mut m = e.encode_descriptor(
                "build",
                "The running anyvip's version.",
                None,
                MetricType::Info,
            )?;
            m.encode_info(&labels)?;
        }
        family(
            &mut e,
            "start_time",
            "When the daemon started, in seconds since the epoch.",
            Some(&Unit::Seconds),
            [(vec![], gauge(unix_seconds(s.started)))],
        )?;
        family(
            &mut e,
            "config_last_reload_successful",
            "Whether the last configuration reload applied (1 before any reload).",
            None,
            [(
                vec![],
                flag(s.last_reload.as_ref().is_none_or(|(_, r)| r.is_ok())),
            )],
        )?;
        family(
            &mut e,
            "config_last_reload_timestamp",
            "When the configuration was last reloaded (or refused), in seconds since the epoch.",
            Some(&Unit::Seconds),
            s.last_reload
                .iter()
                .map(|(at, _)| (vec![], gauge(unix_seconds(*at)))),
        )?;
        self.peers(&mut e)?;
        self.vips(&mut e)?;
        self.checks(&mut e)?;
        if let Some(c) = &s.counters {
            let all = [
                ("guard", c.guard),
                ("steered", c.steered),
                ("loopback_guard", c.loopback_guard),
            ];
            family(
                &mut e,
                "nft_packets",
                "Packets counted by anyvip's nftables table: guard = to a VIP this node would have forwarded (dropped), steered = new connections DNATed to the local apiserver, loopback_guard = from the network to 127/8 and not steered (dropped).",
                None,
                all.iter()
                    .map(|(n, c)| (vec![("counter", n.to_string())], counter(c.packets))),
            )?;
            family(
                &mut e,
                "nft_bytes",
                "Bytes counted by anyvip's nftables table (see anyvip_nft_packets_total).",
                None,
                all.iter()
                    .map(|(n, c)| (vec![("counter", n.to_string())], counter(c.bytes))),
            )?;
        }
        if let Some(d) = &s.dataplane {
            family(
                &mut e,
                "dataplane_repairs",
                "Drift the reconciler repaired on the node: nft = table inet anyvip installed again because it was missing or changed, address = a VIP address added again after someone removed it.",
                None,
                [("nft", d.nft_repairs), ("address", d.address_repairs)]
                    .into_iter()
                    .map(|(what, n)| (vec![("what", what.to_string())], counter(n))),
            )?;
            family(
                &mut e,
                "dataplane_in_sync",
                "1 if the node's VIP addresses and nftables table were as they should be at the reconciler's last look.",
                None,
                [(vec![], flag(d.in_sync))],
            )?;
        }
        Ok(())
    }
}

impl SnapshotCollector {
    fn peers(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let peers = &self.snapshot.peers;
        let id = |p: &PeerStatus| -> Labels {
            vec![
                ("peer", p.name.clone()),
                ("address", p.address.ip().to_string()),
            ]
        };
        family(
            e,
            "peer_state",
            "BGP session state: 1 for the state the session is in, 0 for the others.",
            None,
            peers.iter().flat_map(|p| {
                STATES.iter().map(move |st| {
                    let mut l = id(p);
                    l.push(("state", st.name().to_string()));
                    (l, flag(p.state == *st))
                })
            }),
        )?;
        family(
            e,
            "peer_last_state_change_timestamp",
            "When the session entered its current state, in seconds since the epoch.",
            Some(&Unit::Seconds),
            peers.iter().map(|p| (id(p), gauge(unix_seconds(p.since)))),
        )?;
        let counters: [CounterOf<PeerStatus>; 5] = [
            (
                "peer_established_transitions",
                "Times the session reached Established.",
                |p| p.established_transitions,
            ),
            (
                "peer_messages_received",
                "BGP messages received from the peer.",
                |p| p.messages_received,
            ),
            (
                "peer_messages_sent",
                "BGP messages sent to the peer.",
                |p| p.messages_sent,
            ),
            (
                "peer_updates_received",
                "UPDATE messages received from the peer.",
                |p| p.updates_received,
            ),
            (
                "peer_updates_sent",
                "UPDATE messages sent to the peer.",
                |p| p.updates_sent,
            ),
        ];
        for (name, help, get) in counters {
            family(
                e,
                name,
                help,
                None,
                peers.iter().map(|p| (id(p), counter(get(p)))),
            )?;
        }
        let by_family = |m: &std::collections::BTreeMap<String, u64>| {
            let mut all: Vec<(String, u64)> = FAMILIES
                .iter()
                .filter(|f| !m.contains_key(**f))
                .map(|f| (f.to_string(), 0))
                .collect();
            all.extend(m.iter().map(|(f, n)| (f.clone(), *n)));
            all.sort();
            all
        };
        family(
            e,
            "peer_prefixes_advertised",
            "Prefixes anyvip currently announces on the session.",
            None,
            peers.iter().flat_map(|p| {
                by_family(&p.prefixes_sent_by_family)
                    .into_iter()
                    .map(move |(f, n)| {
                        let mut l = id(p);
                        l.push(("family", f));
                        (l, ConstGauge::new(n as i64))
                    })
            }),
        )?;
        family(
            e,
            "peer_prefixes_received",
            "Prefixes the peer announced to anyvip (counted, never kept).",
            None,
            peers.iter().flat_map(|p| {
                by_family(&p.prefixes_received)
                    .into_iter()
                    .map(move |(f, n)| {
                        let mut l = id(p);
                        l.push(("family", f));
                        (l, counter(n))
                    })
            }),
        )?;
        Ok(())
    }

    fn vips(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let vips = &self.snapshot.vips;
        let id = |v: &VipStatus| -> Labels { vec![("prefix", v.prefix.to_string())] };
        family(
            e,
            "vip_state",
            "How the VIP is announced: 1 for its current state (announced, draining, withdrawn), 0 for the others.",
            None,
            vips.iter().flat_map(|v| {
                MODES.iter().map(move |m| {
                    let mut l = id(v);
                    l.push(("state", m.name().to_string()));
                    (l, flag(v.mode == *m))
                })
            }),
        )?;
        family(
            e,
            "vip_healthy",
            "Whether all the VIP's checks are up (or it is always announced).",
            None,
            vips.iter().map(|v| (id(v), flag(v.healthy))),
        )?;
        family(
            e,
            "vip_drained",
            "Whether an operator (or a stop) drained the VIP.",
            None,
            vips.iter().map(|v| (id(v), flag(v.drained))),
        )?;
        family(
            e,
            "vip_transitions",
            "Changes of the VIP's state.",
            None,
            vips.iter().map(|v| (id(v), counter(v.transitions))),
        )?;
        family(
            e,
            "vip_last_transition_timestamp",
            "When the VIP entered its current state, in seconds since the epoch.",
            Some(&Unit::Seconds),
            vips.iter().map(|v| (id(v), gauge(unix_seconds(v.since)))),
        )?;
        Ok(())
    }

    fn checks(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let checks = &self.snapshot.checks;
        let id = |c: &CheckState| -> Labels { vec![("check", c.name.to_string())] };
        family(
            e,
            "check_up",
            "Whether the check is up (after rise/fall).",
            None,
            checks.iter().map(|c| {
                let mut l = id(c);
                l.push(("kind", c.kind.to_string()));
                (l, flag(c.health.is_up()))
            }),
        )?;
        family(
            e,
            "check_last_probe_success",
            "Whether the check's last probe passed.",
            None,
            checks
                .iter()
                .filter_map(|c| c.last.as_ref().map(|p| (id(c), flag(p.outcome.pass)))),
        )?;
        family(
            e,
            "check_last_latency",
            "How long the check's last probe took.",
            Some(&Unit::Seconds),
            checks.iter().filter_map(|c| {
                c.last
                    .as_ref()
                    .map(|p| (id(c), gauge(p.latency.as_secs_f64())))
            }),
        )?;
        if !checks.is_empty() {
            let mut m = e.encode_descriptor(
                "check_latency",
                "How long the check's probes took (each probe, since the check started).",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?;
            for c in checks {
                let labels = id(c);
                let buckets: Vec<(f64, u64)> = c.latency.buckets().collect();
                m.encode_family(&labels)?
                    .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                        c.latency.sum_seconds,
                        c.latency.count(),
                        &buckets,
                        None,
                    )?;
            }
        }
        let counters: [CounterOf<CheckState>; 3] = [
            ("check_probes", "Probes the check has run.", |c| c.probes),
            ("check_failures", "Probes that failed.", |c| c.failures),
            (
                "check_transitions",
                "Changes of the check's health (up <-> down).",
                |c| c.transitions,
            ),
        ];
        for (name, help, get) in counters {
            family(
                e,
                name,
                help,
                None,
                checks.iter().map(|c| (id(c), counter(get(c)))),
            )?;
        }
        Ok(())
    }
}

/// The metrics listener, bound (so a busy port fails `anyvip run` at once).
pub struct MetricsServer {
    listener: TcpListener,
}

impl MetricsServer {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("metrics: cannot listen on {addr}: {e}"))
        })?;
        Ok(MetricsServer { listener })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve until the task is dropped.
    pub async fn serve(self, control: Control) {
        let mut admission = Admission::new(LIMITS);
        loop {
            let stream = match self.listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    admission.accept_failed(&e).await;
                    continue;
                }
            };
            let slot = admission.admit().await;
            let control = control.clone();
            tokio::spawn(slot.serve(TokioIo::new(stream), move |req| {
                let control = control.clone();
                async move { handle(req, &control).await }
            }));
        }
    }
}

async fn handle(req: Request<Incoming>, control: &Control) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: &str| {
        let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
        *r.status_mut() = status;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    };
    match req.uri().path() {
        "/metrics" => {}
        "/" => return text(StatusCode::OK, "anyvip: metrics are at /metrics\n"),
        _ => {
            return text(
                StatusCode::NOT_FOUND,
                "not found: metrics are at /metrics\n",
            )
        }
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let Some(snapshot) = control.status().await else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "anyvip is stopping\n");
    };
    let openmetrics = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let body = render(&snapshot, openmetrics);
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(if openmetrics {
            OPENMETRICS
        } else {
            PROMETHEUS_TEXT
        }),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::super::testdata;
    use super::*;

    fn scrape(text: &str) -> prometheus_parse::Scrape {
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
        // The parser skips what it cannot read: every sample line must
        // have become a sample (histograms fold their bucket lines).
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty() && !l.contains("_bucket{"))
            .count();
        let parsed: usize = scrape
            .samples
            .iter()
            .map(|s| match &s.value {
                prometheus_parse::Value::Histogram(_) => 0,
                _ => 1,
            })
            .sum();
        assert_eq!(samples, parsed, "lines the parser did not read:\n{text}");
        scrape
    }

    fn value(s: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&prometheus_parse::Sample> = s
            .samples
            .iter()
            .filter(|x| {
                x.metric == metric && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v))
            })
            .collect();
        assert_eq!(found.len(), 1, "{metric} {labels:?}: {found:?}");
        match &found[0].value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            other => panic!("{metric}: {other:?}"),
        }
    }

    #[test]
    fn text_format_names_types_and_values() {
        let text = render(&testdata::snapshot(), false);
        let s = scrape(&text);
        let tor1 = [("peer", "tor1"), ("address", "192.0.2.1")];
        for (metric, labels, expected) in [
            (
                "anyvip_peer_state",
                vec![("peer", "tor1"), ("state", "Established")],
                1.0,
            ),
            (
                "anyvip_peer_state",
                vec![("peer", "tor1"), ("state", "Active")],
                0.0,
            ),
            ("anyvip_peer_messages_received_total", tor1.to_vec(), 1200.0),
            ("anyvip_peer_updates_sent_total", tor1.to_vec(), 2.0),
            (
                "anyvip_peer_established_transitions_total",
                tor1.to_vec(),
                1.0,
            ),
            (
                "anyvip_peer_prefixes_advertised",
                vec![("peer", "tor1"), ("family", "ipv4-unicast")],
                1.0,
            ),
            (
                "anyvip_peer_prefixes_advertised",
                vec![("peer", "tor1"), ("family", "ipv6-unicast")],
                0.0,
            ),
            (
                "anyvip_peer_prefixes_received_total",
                vec![("peer", "tor1"), ("family", "ipv4-unicast")],
                3.0,
            ),
            (
                "anyvip_vip_state",
                vec![("prefix", testdata::VIP), ("state", "announced")],
                1.0,
            ),
            (
                "anyvip_vip_state",
                vec![("prefix", testdata::VIP), ("state", "draining")],
                0.0,
            ),
            ("anyvip_vip_healthy", vec![("prefix", testdata::VIP)], 1.0),
            (
                "anyvip_vip_transitions_total",
                vec![("prefix", testdata::VIP)],
                1.0,
            ),
            (
                "anyvip_check_up",
                vec![("check", "apiserver"), ("kind", "https")],
                1.0,
            ),
            (
                "anyvip_check_probes_total",
                vec![("check", "apiserver")],
                7003.0,
            ),
            (
                "anyvip_check_failures_total",
                vec![("check", "apiserver")],
                3.0,
            ),
            (
                "anyvip_check_last_latency_seconds",
                vec![("check", "apiserver")],
                0.0015,
            ),
            (
                "anyvip_nft_packets_total",
                vec![("counter", "steered")],
                42.0,
            ),
            ("anyvip_nft_bytes_total", vec![("counter", "guard")], 300.0),
            ("anyvip_config_last_reload_successful", vec![], 0.0),
        ] {
            assert_eq!(value(&s, metric, &labels), expected, "{metric} {labels:?}");
        }
        // Typed as Prometheus would see them.
        let counter = s
            .samples
            .iter()
            .find(|x| x.metric == "anyvip_peer_messages_sent_total")
            .unwrap();
        assert!(matches!(
            counter.value,
            prometheus_parse::Value::Counter(1201.0)
        ));
        let histogram = s
            .samples
            .iter()
            .find(|x| x.metric == "anyvip_check_latency_seconds")
            .unwrap();
        let prometheus_parse::Value::Histogram(buckets) = &histogram.value else {
            panic!("{histogram:?}");
        };
        let le = |b: f64| buckets.iter().find(|h| h.less_than == b).unwrap().count;
        assert_eq!(
            (le(0.001), le(0.0025), le(0.05), le(f64::INFINITY)),
            (1.0, 2.0, 3.0, 3.0)
        );
        assert!(text.contains("anyvip_check_latency_seconds_count{check=\"apiserver\"} 3\n"));
        // A label value with quotes is escaped, not cut.
        assert!(text.contains(r#"peer="tor \"2\"""#), "{text}");
        assert!(text.contains("anyvip_build_info{version=\"0.1.0\"} 1"));
        assert!(text.contains("# TYPE anyvip_peer_messages_sent_total counter"));
    }

    #[test]
    fn openmetrics_when_asked_for() {
        let text = render(&testdata::snapshot(), true);
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains("# TYPE anyvip_peer_messages_sent counter\n"));
        assert!(text.contains("# TYPE anyvip_check_latency_seconds histogram\n"));
        assert!(text.contains("# UNIT anyvip_check_latency_seconds seconds\n"));
        assert!(text.contains(
            "anyvip_peer_messages_sent_total{peer=\"tor1\",address=\"192.0.2.1\"} 1201\n"
        ));
        assert!(text.contains("# TYPE anyvip_build info\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("anyvip_"), "{line}");
        }
    }

    #[test]
    fn nothing_for_what_is_not_there() {
        let mut snap = testdata::snapshot();
        snap.counters = None;
        snap.checks.clear();
        snap.last_reload = None;
        let text = render(&snap, false);
        scrape(&text);
        assert!(!text.contains("anyvip_nft_"));
        assert!(!text.contains("anyvip_check_"));
        assert!(!text.contains("anyvip_config_last_reload_timestamp"));
        assert!(text.contains("anyvip_config_last_reload_successful 1\n"));
    }
}
