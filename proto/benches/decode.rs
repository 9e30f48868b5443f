//! Decode throughput on real traffic: every UPDATE of 15 minutes of RIPE RIS
//! route-collector data, with our codec and, on the same bytes in the same
//! run, with bgpkit-parser's BGP message parser.
//!
//! `cargo bench -p anyvip-proto --bench decode`
//!
//! Both parsers get the whole message (marker and header included), the
//! session context of its MRT record (four-octet AS or not, add-path) and do
//! a full decode of header, attributes and prefixes. Throughput is counted
//! in prefixes (announced + withdrawn, classic and MP). After criterion's
//! report, one plain line per parser gives prefixes/s from an interleaved
//! re-measurement, and the ratio ours/bgpkit.

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyvip_proto::{AddPath, Context, Message};
use bgpkit_parser::models::{AsnLength, BgpMessage};
use bgpkit_parser::parser::bgp::messages::parse_bgp_message;
use bytes::Bytes;
use criterion::{Criterion, Throughput};

const RIS_FILE: &str = "ris/updates.20160811.1600.gz";
const EXPECTED_UPDATES: usize = 17_216;
/// BGP message type code of UPDATE (RFC 4271 §4.1), at offset 18.
const UPDATE: u8 = 2;

/// One UPDATE as recorded, with the session context both parsers use.
struct Sample {
    message: Bytes,
    ctx: Context,
    asn_len: AsnLength,
    add_path: bool,
}

fn load() -> Option<Vec<Sample>> {
    let dir = support::testdata_dir()?;
    let samples: Vec<Sample> = support::mrt::read(&dir.join(RIS_FILE))
        .into_iter()
        .filter(|r| r.message.get(18) == Some(&UPDATE))
        .map(|r| Sample {
            ctx: Context {
                four_octet_as: r.four_octet_as,
                add_path: AddPath {
                    ipv4_unicast: r.add_path,
                    ipv6_unicast: r.add_path,
                },
                extended_message: false,
            },
            asn_len: if r.four_octet_as {
                AsnLength::Bits32
            } else {
                AsnLength::Bits16
            },
            add_path: r.add_path,
            message: Bytes::from(r.message),
        })
        .collect();
    assert_eq!(samples.len(), EXPECTED_UPDATES, "UPDATEs in {RIS_FILE}");
    Some(samples)
}

/// Decode every sample with anyvip-proto; the number of prefixes seen.
fn decode_ours(samples: &[Sample]) -> usize {
    let mut prefixes = 0;
    for s in samples {
        match Message::decode_from(black_box(&s.message[..]), &s.ctx) {
            Ok(Some((Message::Update(update), used))) => {
                prefixes += update.announced().count() + update.withdrawn_routes().count();
                black_box((&update, used));
            }
            other => {
                black_box(&other);
            }
        }
    }
    prefixes
}

/// Decode every sample with bgpkit-parser; the number of prefixes seen.
fn decode_bgpkit(samples: &[Sample]) -> usize {
    let mut prefixes = 0;
    for s in samples {
        // A cheap reference-counted handle on the same bytes: the parser
        // consumes its input.
        let mut data = black_box(s.message.clone());
        match parse_bgp_message(&mut data, s.add_path, &s.asn_len) {
            Ok(BgpMessage::Update(update)) => {
                let attrs = &update.attributes;
                prefixes += update.announced_prefixes.len()
                    + update.withdrawn_prefixes.len()
                    + attrs.get_reachable_nlri().map_or(0, |n| n.prefixes.len())
                    + attrs.get_unreachable_nlri().map_or(0, |n| n.prefixes.len());
                black_box(&update);
            }
            other => {
                black_box(&other);
            }
        }
    }
    prefixes
}

type Decoder = fn(&[Sample]) -> usize;

const PARSERS: [(&str, Decoder); 2] = [
    ("anyvip-proto", decode_ours),
    ("bgpkit-parser", decode_bgpkit),
];

fn main() {
    let Some(samples) = load() else { return };
    let ours = decode_ours(&samples);
    let theirs = decode_bgpkit(&samples);
    assert_eq!(
        ours, theirs,
        "both parsers must see the same prefixes (anyvip-proto {ours}, bgpkit-parser {theirs})"
    );
    let prefixes = ours;
    println!(
        "{} UPDATEs, {} octets, {prefixes} prefixes (announced + withdrawn) per pass",
        samples.len(),
        samples.iter().map(|s| s.message.len()).sum::<usize>()
    );

    let mut criterion = Criterion::default()
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    let mut group = criterion.benchmark_group("decode_ris_updates");
    group.throughput(Throughput::Elements(prefixes as u64));
    for (name, decode) in PARSERS {
        group.bench_function(name, |b| b.iter(|| decode(black_box(&samples))));
    }
    group.finish();
    criterion.final_summary();

    // `cargo bench -- --test` (and clippy's test builds) only check that
    // the benchmark runs: no summary then.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    summary(&samples, prefixes);
}

/// Re-measure both parsers in alternation (so that noise from other work
/// on the machine hits both alike) and print one line per parser.
fn summary(samples: &[Sample], prefixes: usize) {
    const ROUNDS: usize = 31;
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..ROUNDS {
        for ((_, decode), t) in PARSERS.iter().zip(times.iter_mut()) {
            let start = Instant::now();
            black_box(decode(black_box(samples)));
            t.push(start.elapsed());
        }
    }
    let rates: Vec<f64> = times
        .iter_mut()
        .map(|t| {
            t.sort();
            let median = t[t.len() / 2];
            prefixes as f64 / median.as_secs_f64()
        })
        .collect();
    println!();
    for ((name, _), rate) in PARSERS.iter().zip(&rates) {
        println!(
            "summary: {name:<13} {:>12.0} prefixes/s  (median of {ROUNDS} passes of {prefixes} prefixes)",
            rate
        );
    }
    println!(
        "summary: ratio ours/bgpkit = {:.2} (above 1: anyvip-proto is faster)",
        rates[0] / rates[1]
    );
}
