//! `anyvip status` as text: aligned tables in the manner of
//! `birdc show protocols`.

use std::fmt::Write;

use super::json;

/// Columns padded to their widest cell; the last column is not padded.
pub(super) fn table(out: &mut String, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// "42s", "3m12s", "2h05m", "3d04h".
pub fn age(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// "0.4ms", "12ms", "1.20s".
pub fn latency(seconds: f64) -> String {
    if seconds < 0.01 {
        format!("{:.1}ms", seconds * 1000.0)
    } else if seconds < 1.0 {
        format!("{:.0}ms", seconds * 1000.0)
    } else {
        format!("{seconds:.2}s")
    }
}

fn received(p: &json::Peer) -> u64 {
    p.prefixes_received.values().sum()
}

/// The whole status, as `anyvip status` prints it.
pub fn status(s: &json::Status) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "anyvip {}, up {}, config {}",
        s.version,
        age(s.uptime_seconds),
        s.config_file
    );
    if let Some(id) = &s.router_id {
        let _ = match s.router_id_source.as_deref() {
            Some("configured") | None => writeln!(out, "router ID {id}"),
            Some(source) => writeln!(out, "router ID {id} (auto: {source})"),
        };
    }
    if let Some(r) = &s.last_reload {
        match &r.error {
            None => {
                let _ = writeln!(out, "last reload {} ago: ok", age(r.age_seconds));
            }
            Some(e) => {
                let _ = writeln!(
                    out,
                    "last reload {} ago: REFUSED (running the previous configuration): {e}",
                    age(r.age_seconds)
                );
            }
        }
    }
    out.push('\n');

    let mut rows = vec![vec![
        "Peer".to_string(),
        "Address".to_string(),
        "State".to_string(),
        "Since".to_string(),
        "Sent".to_string(),
        "Rcvd".to_string(),
        "Info".to_string(),
    ]];
    for p in &s.peers {
        let address = if p.port == crate::config::BGP_PORT {
            p.address.clone()
        } else if p.address.contains(':') {
            format!("[{}]:{}", p.address, p.port)
        } else {
            format!("{}:{}", p.address, p.port)
        };
        rows.push(vec![
            p.name.clone(),
            address,
            p.state.clone(),
            age(p.age_seconds),
            p.prefixes_sent.to_string(),
            received(p).to_string(),
            p.last_error.clone().unwrap_or_default(),
        ]);
    }
    if s.peers.is_empty() {
        rows.push(vec!["(no peers)".to_string()]);
    }
    table(&mut out, &rows);
    out.push('\n');
    super::bfd_status::table(&mut out, s);

    let mut rows = vec![vec![
        "VIP".to_string(),
        "Mode".to_string(),
        "Health".to_string(),
        "Since".to_string(),
        "Checks".to_string(),
        "Info".to_string(),
    ]];
    for v in &s.vips {
        let health = match (v.healthy, v.drained) {
            (true, false) => "up",
            (true, true) => "up, drained",
            (false, false) => "down",
            (false, true) => "down, drained",
        };
        let checks = if v.checks.is_empty() {
            "(always)".to_string()
        } else {
            v.checks
                .iter()
                .map(|c| format!("{} {}", c.name, c.health.as_deref().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        rows.push(vec![
            v.prefix.clone(),
            v.mode.clone(),
            health.to_string(),
            age(v.age_seconds),
            checks,
            v.reason.clone(),
        ]);
    }
    if s.vips.is_empty() {
        rows.push(vec!["(no VIPs)".to_string()]);
    }
    table(&mut out, &rows);

    if !s.checks.is_empty() {
        out.push('\n');
        let mut rows = vec![vec![
            "Check".to_string(),
            "Kind".to_string(),
            "Health".to_string(),
            "Since".to_string(),
            "Last".to_string(),
            "Latency".to_string(),
            "Probes".to_string(),
            "Failed".to_string(),
            "Result".to_string(),
        ]];
        for c in &s.checks {
            let (last, lat, result) = match &c.last {
                Some(p) => (
                    format!(
                        "{} {} ago",
                        if p.pass { "pass" } else { "FAIL" },
                        age(p.age_seconds)
                    ),
                    latency(p.latency_seconds),
                    p.reason.clone(),
                ),
                None => ("-".to_string(), "-".to_string(), "no probe yet".to_string()),
            };
            let health = if c.progress.done > 0 {
                let towards = if c.health == "up" { "down" } else { "up" };
                format!(
                    "{} ({}/{} to {towards})",
                    c.health, c.progress.done, c.progress.needed
                )
            } else {
                c.health.clone()
            };
            rows.push(vec![
                c.name.clone(),
                c.kind.clone(),
                health,
                age(c.age_seconds),
                last,
                lat,
                c.probes.to_string(),
                c.failures.to_string(),
                result,
            ]);
        }
        table(&mut out, &rows);
    }

    if let Some(n) = &s.nft_counters {
        out.push('\n');
        let _ = writeln!(
            out,
            "nftables: steered {} new connections; guard dropped {} packets to VIPs, loopback guard {}",
            n.steered.packets, n.guard.packets, n.loopback_guard.packets
        );
    }
    if let Some(d) = &s.dataplane {
        if s.nft_counters.is_none() {
            out.push('\n');
        }
        let state = if d.in_sync { "in sync" } else { "OUT OF SYNC" };
        let mut line = format!(
            "data plane: {state}; repaired {} nftables table(s), {} address(es)",
            d.nft_repairs, d.address_repairs
        );
        if let (Some(what), Some(age)) = (&d.last_drift, d.last_drift_age_seconds) {
            let _ = write!(line, "; last drift {age}s ago: {what}");
        }
        if let Some(e) = &d.last_error {
            let _ = write!(line, "; error: {e}");
        }
        let _ = writeln!(out, "{line}");
    }
    out
}

/// One line per VIP, for `drain` and `resume`.
pub fn vips(v: &json::Vips) -> String {
    let mut rows = Vec::new();
    for v in &v.vips {
        rows.push(vec![v.prefix.clone(), v.mode.clone(), v.reason.clone()]);
    }
    let mut out = String::new();
    table(&mut out, &rows);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_short() {
        assert_eq!(age(0), "0s");
        assert_eq!(age(59), "59s");
        assert_eq!(age(192), "3m12s");
        assert_eq!(age(2 * 3600 + 5 * 60 + 9), "2h05m");
        assert_eq!(age(3 * 86_400 + 4 * 3600), "3d04h");
        assert_eq!(latency(0.00042), "0.4ms");
        assert_eq!(latency(0.012), "12ms");
        assert_eq!(latency(1.2), "1.20s");
    }

    #[test]
    fn columns_line_up() {
        let mut out = String::new();
        table(
            &mut out,
            &[
                vec!["a".into(), "bb".into(), "c".into()],
                vec!["aaaa".into(), "b".into(), "".into()],
            ],
        );
        assert_eq!(out, "a     bb  c\naaaa  b\n");
    }
}

#[cfg(test)]
mod status_tests {
    use super::super::testdata;
    use super::*;

    #[test]
    fn status_shows_peers_vips_and_checks() {
        let s = json::Status::new(&testdata::snapshot(), std::time::SystemTime::now());
        let text = status(&s);
        eprintln!("{text}");
        let line = |start: &str| {
            text.lines()
                .find(|l| l.starts_with(start))
                .unwrap_or_else(|| panic!("no line {start:?} in\n{text}"))
                .split_whitespace()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            line("tor1"),
            ["tor1", "192.0.2.1", "Established", "1h00m", "1", "3"]
        );
        assert!(line("tor \"2\"").starts_with(&[
            "tor",
            "\"2\"",
            "[2001:db8::2]:1790",
            "Active",
            "5s",
            "0",
            "0",
            "NOTIFICATION"
        ]));
        assert_eq!(
            line("192.0.2.100/32"),
            [
                "192.0.2.100/32",
                "announced",
                "up",
                "58m20s",
                "apiserver",
                "up",
                "all",
                "checks",
                "up"
            ]
        );
        assert_eq!(
            line("apiserver"),
            [
                "apiserver",
                "https",
                "up",
                "58m20s",
                "pass",
                "1s",
                "ago",
                "1.5ms",
                "7003",
                "3",
                "HTTP/1.1",
                "200"
            ]
        );
        assert!(text.contains("REFUSED"), "{text}");
        assert_eq!(
            text.lines().nth(1),
            Some("router ID 192.0.2.11 (auto: source address toward peer 192.0.2.1)"),
            "{text}"
        );
        // Aligned: every row of a table starts its columns at the same place.
        let header = text.lines().find(|l| l.starts_with("Peer ")).unwrap();
        let tor1 = text.lines().find(|l| l.starts_with("tor1")).unwrap();
        assert_eq!(header.find("State"), tor1.find("Established"));
    }
}
