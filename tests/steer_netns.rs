//! The node's data plane against the real kernel, in network namespaces:
//! VIP addresses with our mark (src/address.rs) and the nftables table
//! with the DNAT and the loop guard (src/steer). Each test builds its own
//! small topology (tests/netns_util), needs root, and skips loudly without
//! it (CI runs as root). Nothing here touches the root namespace.
//!
//! Addresses: VIPs from the documentation ranges, links from 198.18.0.0/15
//! and fd18::/16; all of them exist only inside the test's namespaces.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod netns_util;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyvip::address::{AddressError, Addresses, Ensured, Removed};
use anyvip::steer::{Counters, GuardMode, Nft, Ruleset, SteerConfig, SteerError, VipRule};
use ipnet::IpNet;
use netns_util::{block_on, in_ns, wait_until, Lab};
use serde_json::Value;
use socket2::{Domain, Protocol, Socket, Type};

const VIP4: &str = "192.0.2.100";
const VIP6: &str = "2001:db8::100";
const PORT: u16 = 9999;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn vip4() -> IpNet {
    net(&format!("{VIP4}/32"))
}

fn vip6() -> IpNet {
    net(&format!("{VIP6}/128"))
}

fn sock(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

fn sorted(mut v: Vec<IpNet>) -> Vec<IpNet> {
    v.sort();
    v
}

fn guard_only(vips: &[IpNet], mode: GuardMode) -> Ruleset {
    Ruleset::new(
        vips.iter()
            .map(|&prefix| VipRule {
                prefix,
                steer: None,
            })
            .collect(),
        mode,
    )
    .unwrap()
}

fn counters(ns: &str) -> Counters {
    in_ns(ns, || Nft::new().counters().unwrap()).expect("table inet anyvip is installed")
}

/// `ip -j address show` in `ns`, flattened to (interface, addr_info) pairs.
fn addresses(lab: &Lab, ns: &str) -> Vec<(String, Value)> {
    let doc: Value = serde_json::from_str(&lab.ip(ns, &["-j", "address", "show"])).unwrap();
    doc.as_array()
        .unwrap()
        .iter()
        .flat_map(|link| {
            let name = link["ifname"].as_str().unwrap().to_string();
            link["addr_info"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |a| (name.clone(), a))
        })
        .collect()
}

fn count_of(addrs: &[(String, Value)], interface: &str, local: &str) -> usize {
    addrs
        .iter()
        .filter(|(i, a)| i == interface && a["local"] == local)
        .count()
}

/// Without its "handle"s (which change on every replace).
fn strip_handles(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| *k != "handle")
                .map(|(k, v)| (k.clone(), strip_handles(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_handles).collect()),
        other => other.clone(),
    }
}

/// The (chain, expr) of every rule in an `nft -j list` document.
fn rules_of(doc: &Value) -> Vec<(String, Value)> {
    doc["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i.get("rule"))
        .map(|r| {
            (
                r["chain"].as_str().unwrap().to_string(),
                strip_handles(&r["expr"]),
            )
        })
        .collect()
}

/// Sorted chain names.
fn chains_of(doc: &Value) -> Vec<String> {
    let mut names: Vec<String> = doc["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i.get("chain"))
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------- addresses

#[test]
fn addresses_carry_our_mark_and_only_ours_are_removed() {
    let Some(mut lab) = Lab::new("addresses_carry_our_mark_and_only_ours_are_removed") else {
        return;
    };
    let n = lab.ns("node");
    // Someone else's addresses, one of them equal to what we will be asked
    // to remove later.
    lab.ip(&n, &["address", "add", "192.0.2.50/32", "dev", "lo"]);
    lab.ip(&n, &["address", "add", "2001:db8::50/128", "dev", "lo"]);
    let (other4, other6) = (net("192.0.2.50/32"), net("2001:db8::50/128"));

    in_ns(&n, || {
        block_on(async {
            assert!(matches!(
                Addresses::new("nosuch0").await,
                Err(AddressError::NoInterface(_))
            ));
            let a = Addresses::new("lo").await.unwrap();
            assert_eq!(
                a.ensure(vip4()).await.unwrap(),
                Ensured::Added { marked: true }
            );
            assert_eq!(
                a.ensure(vip6()).await.unwrap(),
                Ensured::Added { marked: true },
                "IFA_PROTO kept (kernel >= 6.3)"
            );
            assert_eq!(a.ensure(vip4()).await.unwrap(), Ensured::Present);
            assert_eq!(a.ensure(vip6()).await.unwrap(), Ensured::Present);
            assert_eq!(a.ensure(other4).await.unwrap(), Ensured::Foreign);
            assert_eq!(a.ensure(other6).await.unwrap(), Ensured::Foreign);
            assert_eq!(sorted(a.owned().await.unwrap()), [vip4(), vip6()]);
            // A restarted daemon (a new connection) recognises them.
            let b = Addresses::new("lo").await.unwrap();
            assert_eq!(sorted(b.owned().await.unwrap()), [vip4(), vip6()]);
        })
    });

    // As the kernel shows them: one copy each, labelled, IPv6 without DAD.
    let addrs = addresses(&lab, &n);
    assert_eq!(count_of(&addrs, "lo", VIP4), 1);
    assert_eq!(count_of(&addrs, "lo", VIP6), 1);
    let v4 = addrs.iter().find(|(_, a)| a["local"] == VIP4).unwrap();
    assert_eq!(v4.1["label"], "lo:anyvip");
    let v6 = addrs.iter().find(|(_, a)| a["local"] == VIP6).unwrap();
    assert_eq!(v6.1["nodad"], true, "{}", v6.1);
    // Adding an IPv4 VIP made the node deaf to ARP for it (see the ARP test).
    assert_eq!(lab.sysctl_get(&n, "net.ipv4.conf.all.arp_ignore"), "1");
    assert_eq!(lab.sysctl_get(&n, "net.ipv4.conf.all.arp_announce"), "2");

    in_ns(&n, || {
        block_on(async {
            let a = Addresses::new("lo").await.unwrap();
            assert_eq!(a.remove(vip4()).await.unwrap(), Removed::Removed);
            assert_eq!(a.remove(vip4()).await.unwrap(), Removed::Absent);
            assert_eq!(a.remove(vip6()).await.unwrap(), Removed::Removed);
            assert_eq!(a.remove(other4).await.unwrap(), Removed::Foreign);
            assert_eq!(a.remove(other6).await.unwrap(), Removed::Foreign);
            assert_eq!(a.owned().await.unwrap(), []);
        })
    });
    let addrs = addresses(&lab, &n);
    assert_eq!(count_of(&addrs, "lo", VIP4), 0);
    assert_eq!(count_of(&addrs, "lo", VIP6), 0);
    assert_eq!(count_of(&addrs, "lo", "192.0.2.50"), 1, "not ours: kept");
    assert_eq!(count_of(&addrs, "lo", "2001:db8::50"), 1, "not ours: kept");
    assert_eq!(count_of(&addrs, "lo", "127.0.0.1"), 1);
}

#[test]
fn reconcile_after_a_crash_adopts_removes_and_never_touches_others() {
    let Some(mut lab) = Lab::new("reconcile_after_a_crash_adopts_removes_and_never_touches_others")
    else {
        return;
    };
    let n = lab.ns("node");
    // A second interface, where an earlier configuration put a VIP.
    lab.ip(
        &n,
        &["link", "add", "n0", "type", "veth", "peer", "name", "n1"],
    );
    lab.ip(&n, &["link", "set", "n0", "up"]);

    let stale4 = net("192.0.2.1/32");
    let keep4 = net("192.0.2.2/32");
    let elsewhere4 = net("192.0.2.3/32");
    let foreign_wanted4 = net("192.0.2.4/32");
    let new4 = net("192.0.2.5/32");
    let stale6 = net("2001:db8::1/128");
    let keep6 = net("2001:db8::2/128");
    let new6 = net("2001:db8::5/128");

    // The crashed run: addresses added, never removed.
    in_ns(&n, || {
        block_on(async {
            let lo = Addresses::new("lo").await.unwrap();
            for p in [stale4, keep4, stale6, keep6] {
                assert!(matches!(lo.ensure(p).await.unwrap(), Ensured::Added { .. }));
            }
            let n0 = Addresses::new("n0").await.unwrap();
            assert!(matches!(
                n0.ensure(elsewhere4).await.unwrap(),
                Ensured::Added { .. }
            ));
        })
    });
    // The operator's own addresses.
    lab.ip(&n, &["address", "add", "192.0.2.9/32", "dev", "lo"]);
    lab.ip(&n, &["address", "add", "192.0.2.4/32", "dev", "lo"]);
    lab.ip(&n, &["address", "add", "2001:db8::9/128", "dev", "lo"]);

    let wanted = [keep4, keep6, foreign_wanted4, new4, new6];
    let (first, second, owned) = in_ns(&n, || {
        block_on(async {
            let lo = Addresses::new("lo").await.unwrap();
            let first = lo.reconcile(&wanted).await.unwrap();
            let second = lo.reconcile(&wanted).await.unwrap();
            (first, second, lo.owned().await.unwrap())
        })
    });
    assert_eq!(sorted(first.removed), [stale4, elsewhere4, stale6]);
    assert_eq!(sorted(first.adopted), [keep4, keep6]);
    assert_eq!(first.foreign, [foreign_wanted4]);
    assert_eq!(sorted(first.added), [new4, new6]);
    // Again: nothing to do.
    assert_eq!(second.removed, []);
    assert_eq!(second.added, []);
    assert_eq!(sorted(second.adopted), [keep4, new4, keep6, new6]);
    assert_eq!(second.foreign, [foreign_wanted4]);
    assert_eq!(sorted(owned), [keep4, new4, keep6, new6]);

    let addrs = addresses(&lab, &n);
    for (interface, addr, copies) in [
        ("lo", "192.0.2.1", 0),
        ("lo", "192.0.2.2", 1),
        ("n0", "192.0.2.3", 0),
        ("lo", "192.0.2.4", 1),
        ("lo", "192.0.2.5", 1),
        ("lo", "192.0.2.9", 1),
        ("lo", "2001:db8::1", 0),
        ("lo", "2001:db8::2", 1),
        ("lo", "2001:db8::5", 1),
        ("lo", "2001:db8::9", 1),
        ("lo", "127.0.0.1", 1),
        ("lo", "::1", 1),
    ] {
        assert_eq!(
            count_of(&addrs, interface, addr),
            copies,
            "{addr} on {interface}"
        );
    }
    let unmarked = addrs
        .iter()
        .find(|(_, a)| a["local"] == "192.0.2.4")
        .unwrap();
    assert_eq!(
        unmarked.1["label"], "lo",
        "the foreign address was not re-marked"
    );
}

// ------------------------------------------------------------------ nftables

#[test]
fn nft_missing_is_a_clear_error() {
    let rs = guard_only(&[vip4()], GuardMode::Drop);
    let err = Nft::with_binary("/nonexistent/anyvip-test/nft")
        .install(&rs)
        .unwrap_err();
    assert!(matches!(err, SteerError::NftMissing { .. }), "{err:?}");
    assert!(
        err.to_string().contains("apt-get install nftables"),
        "{err}"
    );
}

#[test]
fn table_is_replaced_atomically_idempotently_and_alone() {
    let Some(mut lab) = Lab::new("table_is_replaced_atomically_idempotently_and_alone") else {
        return;
    };
    let n = lab.ns("node");
    // Other people's tables, and junk an earlier anyvip left in ours.
    for cmd in [
        "add table inet other",
        "add chain inet other fw1 { type filter hook forward priority 0; policy accept; }",
        "add rule inet other fw1 ip daddr 192.0.2.100 counter accept",
        "add table ip nat",
        "add chain ip nat post { type nat hook postrouting priority srcnat; }",
        "add rule ip nat post oifname \"n9\" masquerade",
        "add table inet anyvip",
        "add chain inet anyvip junk { type filter hook input priority 0; }",
        "add rule inet anyvip junk counter",
        "add set inet anyvip junkset { type ipv4_addr; }",
    ] {
        lab.exec(&n, &["nft", cmd]);
    }
    let others = || {
        [
            lab.exec(&n, &["nft", "-j", "list", "table", "inet", "other"]),
            lab.exec(&n, &["nft", "-j", "list", "table", "ip", "nat"]),
        ]
    };
    let before = others();

    let rs = Ruleset::new(
        vec![
            VipRule {
                prefix: vip4(),
                steer: Some(SteerConfig {
                    port: 6443,
                    to: sock("127.0.0.1", 7443),
                }),
            },
            VipRule {
                prefix: vip6(),
                steer: None,
            },
        ],
        GuardMode::Drop,
    )
    .unwrap();
    let (first, t1, second, t2) = in_ns(&n, || {
        let nft = Nft::new();
        let first = nft.install(&rs).unwrap();
        let t1 = nft.table().unwrap().unwrap();
        let second = nft.install(&rs).unwrap();
        let t2 = nft.table().unwrap().unwrap();
        (first, t1, second, t2)
    });
    assert!(first.replaced, "the earlier run's table was found");
    assert_eq!(
        first
            .sysctls
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>(),
        ["net.ipv4.conf.all.route_localnet: 0 -> 1"]
    );
    assert!(second.replaced);
    assert_eq!(second.sysctls, [], "nothing left to change");
    assert_eq!(
        chains_of(&t1),
        [
            "guard_forward",
            "guard_prerouting",
            "loopback_guard",
            "steer_output",
            "steer_prerouting",
        ],
        "the junk chain is gone"
    );
    assert!(
        !t1["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.get("set").is_some()),
        "the junk set is gone"
    );
    // Guard: 1 rule per VIP before routing, 2 in forward; 1 DNAT per hook;
    // 1 loopback guard.
    assert_eq!(rules_of(&t1).len(), 9, "{:#?}", rules_of(&t1));
    assert_eq!(rules_of(&t1), rules_of(&t2), "re-install: no duplicates");
    assert_eq!(strip_handles(&t1), strip_handles(&t2));

    // Clean stop, keeping the guard; then the operator's opt-out.
    let (kept, after_remove, removed_again) = in_ns(&n, || {
        let nft = Nft::new();
        nft.stop(&rs, true).unwrap();
        let kept = nft.table().unwrap().unwrap();
        nft.stop(&rs, false).unwrap();
        (kept, nft.table().unwrap(), nft.remove().unwrap())
    });
    assert_eq!(
        chains_of(&kept),
        ["guard_forward", "guard_prerouting", "loopback_guard"]
    );
    assert_eq!(after_remove, None);
    assert!(!removed_again);

    assert_eq!(
        others(),
        before,
        "other tables untouched (handles included)"
    );
}

// ---------------------------------------------------------------------- DNAT

/// Accepts connections on `listener` until dropped; each gets one line
/// naming `tag`.
struct Server {
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(listener: TcpListener, tag: &'static str) -> Server {
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let (s, a) = (stop.clone(), accepted.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        a.fetch_add(1, Ordering::Relaxed);
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.write_all(format!("{tag}\n").as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Server {
            stop,
            accepted,
            thread: Some(thread),
        }
    }

    fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connect (from the calling thread's namespace) and read the greeting.
fn fetch(to: SocketAddr, timeout: Duration) -> std::io::Result<String> {
    let mut conn = TcpStream::connect_timeout(&to, timeout)?;
    conn.set_read_timeout(Some(timeout))?;
    let mut out = String::new();
    conn.read_to_string(&mut out)?;
    Ok(out.trim().to_string())
}

#[test]
fn dnat_steers_vip_port_to_the_local_apiserver_from_network_and_node() {
    let Some(mut lab) =
        Lab::new("dnat_steers_vip_port_to_the_local_apiserver_from_network_and_node")
    else {
        return;
    };
    let (c, n) = (lab.ns("client"), lab.ns("node"));
    lab.veth(&c, "c0", &n, "n0");
    lab.ip(&c, &["address", "add", "198.18.1.1/30", "dev", "c0"]);
    lab.ip(&n, &["address", "add", "198.18.1.2/30", "dev", "n0"]);
    lab.ip(&c, &["address", "add", "fd18:1::1/64", "dev", "c0"]);
    lab.ip(&n, &["address", "add", "fd18:1::2/64", "dev", "n0"]);
    lab.ip(&c, &["route", "add", "192.0.2.100/32", "via", "198.18.1.2"]);
    lab.ip(
        &c,
        &["route", "add", "2001:db8::100/128", "via", "fd18:1::2"],
    );

    // The stand-in apiservers: IPv4 only on loopback, IPv6 on all addresses.
    let api4 = Server::start(
        in_ns(&n, || TcpListener::bind("127.0.0.1:7443").unwrap()),
        "api4",
    );
    let api6 = Server::start(
        in_ns(&n, || TcpListener::bind("[::]:7444").unwrap()),
        "api6",
    );
    let rs = Ruleset::new(
        vec![
            VipRule {
                prefix: vip4(),
                steer: Some(SteerConfig {
                    port: 6443,
                    to: sock("127.0.0.1", 7443),
                }),
            },
            VipRule {
                prefix: vip6(),
                // Keep the VIP, change the port.
                steer: Some(SteerConfig {
                    port: 6443,
                    to: sock("::", 7444),
                }),
            },
        ],
        GuardMode::Drop,
    )
    .unwrap();
    in_ns(&n, || {
        block_on(async {
            let lo = Addresses::new("lo").await.unwrap();
            lo.ensure(vip4()).await.unwrap();
            lo.ensure(vip6()).await.unwrap();
        });
        Nft::new().install(&rs).unwrap();
    });
    assert_eq!(lab.sysctl_get(&n, "net.ipv4.conf.all.route_localnet"), "1");

    let t = Duration::from_secs(5);
    // From the network...
    let (from_c4, from_c6) = in_ns(&c, || {
        (
            fetch(sock(VIP4, 6443), t).unwrap(),
            fetch(sock(VIP6, 6443), t).unwrap(),
        )
    });
    assert_eq!((from_c4.as_str(), from_c6.as_str()), ("api4", "api6"));
    // ... and from the node itself.
    let (from_n4, from_n6) = in_ns(&n, || {
        (
            fetch(sock(VIP4, 6443), t).unwrap(),
            fetch(sock(VIP6, 6443), t).unwrap(),
        )
    });
    assert_eq!((from_n4.as_str(), from_n6.as_str()), ("api4", "api6"));
    assert_eq!((api4.accepted(), api6.accepted()), (2, 2));
    assert_eq!(counters(&n).steered.packets, 4, "one per new connection");

    // route_localnet=1 must not expose the node's loopback services to the
    // network: send to 127.0.0.1 straight from the client (which needs its
    // own routing bent to do so).
    lab.sysctl(&c, "net.ipv4.conf.all.route_localnet", "1");
    lab.ip(&c, &["rule", "add", "pref", "1000", "lookup", "local"]);
    lab.ip(&c, &["rule", "del", "pref", "0"]);
    lab.ip(
        &c,
        &[
            "rule",
            "add",
            "pref",
            "10",
            "to",
            "127.0.0.1/32",
            "lookup",
            "100",
        ],
    );
    lab.ip(
        &c,
        &[
            "route",
            "add",
            "127.0.0.1/32",
            "via",
            "198.18.1.2",
            "dev",
            "c0",
            "table",
            "100",
        ],
    );
    let short = Duration::from_millis(700);
    let direct = in_ns(&c, || fetch(sock("127.0.0.1", 7443), short));
    assert!(
        direct.is_err(),
        "127.0.0.1 reached from the network: {direct:?}"
    );
    assert!(counters(&n).loopback_guard.packets >= 1);
    // Control: it is the loopback guard that stops it.
    in_ns(&n, || Nft::new().remove().unwrap());
    let exposed = in_ns(&c, || fetch(sock("127.0.0.1", 7443), t));
    assert_eq!(
        exposed.unwrap(),
        "api4",
        "control: route_localnet alone exposes it"
    );
    // Even a ruleset that needs no route_localnet keeps the guard while the
    // sysctl is on.
    let plain = guard_only(&[vip4(), vip6()], GuardMode::Drop);
    in_ns(&n, || Nft::new().install(&plain).unwrap());
    assert!(in_ns(&c, || fetch(sock("127.0.0.1", 7443), short)).is_err());
    in_ns(&n, || Nft::new().install(&rs).unwrap());

    // Withdrawn (VIP off the node): no DNAT, neither for the network (the
    // guard drops it) nor for the node's own clients (they would go to the
    // routers; here the node has no route at all).
    in_ns(&n, || {
        block_on(async {
            let lo = Addresses::new("lo").await.unwrap();
            assert_eq!(lo.remove(vip4()).await.unwrap(), Removed::Removed);
        })
    });
    let guard_before = counters(&n).guard.packets;
    let accepted_before = api4.accepted();
    assert!(in_ns(&c, || fetch(sock(VIP4, 6443), short)).is_err());
    let local = in_ns(&n, || fetch(sock(VIP4, 6443), short));
    assert!(
        matches!(&local, Err(e) if e.kind() == ErrorKind::NetworkUnreachable),
        "{local:?}"
    );
    assert_eq!(api4.accepted(), accepted_before);
    assert!(counters(&n).guard.packets > guard_before);
}

// --------------------------------------------------------------------- guard

/// Send `count` UDP datagrams to `to:PORT` from the calling thread's
/// namespace, with the given TTL / hop limit.
fn send_udp(to: &str, count: usize, ttl: u32) {
    let ip: IpAddr = to.parse().unwrap();
    let (domain, any) = match ip {
        IpAddr::V4(_) => (Domain::IPV4, sock("0.0.0.0", 0)),
        IpAddr::V6(_) => (Domain::IPV6, sock("::", 0)),
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    s.bind(&any.into()).unwrap();
    match ip {
        IpAddr::V4(_) => s.set_ttl_v4(ttl).unwrap(),
        IpAddr::V6(_) => s.set_unicast_hops_v6(ttl).unwrap(),
    }
    let dest = SocketAddr::new(ip, PORT).into();
    for _ in 0..count {
        s.send_to(b"anyvip guard test", &dest).unwrap();
    }
}

/// Datagrams that arrive within 400 ms of silence.
fn drain(socket: &UdpSocket) -> usize {
    socket
        .set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let mut buf = [0u8; 64];
    let mut n = 0;
    while socket.recv(&mut buf).is_ok() {
        n += 1;
    }
    n
}

struct Chain {
    lab: Lab,
    client: String,
    router: String,
    node: String,
    far: String,
}

/// client — router — node — far. The router sends the VIPs to the node
/// (where they are withdrawn: not on `lo`); the node forwards them to the
/// far side, which has them on `lo` and would receive them.
fn chain(test: &str) -> Option<Chain> {
    let mut lab = Lab::new(test)?;
    let (c, r, n, f) = (
        lab.ns("client"),
        lab.ns("router"),
        lab.ns("node"),
        lab.ns("far"),
    );
    lab.veth(&c, "c0", &r, "r0");
    lab.veth(&r, "r1", &n, "n0");
    lab.veth(&n, "n1", &f, "f0");
    for (ns, dev, v4, v6) in [
        (&c, "c0", "198.18.1.1/30", "fd18:1::1/64"),
        (&r, "r0", "198.18.1.2/30", "fd18:1::2/64"),
        (&r, "r1", "198.18.2.1/30", "fd18:2::1/64"),
        (&n, "n0", "198.18.2.2/30", "fd18:2::2/64"),
        (&n, "n1", "198.18.3.1/30", "fd18:3::1/64"),
        (&f, "f0", "198.18.3.2/30", "fd18:3::2/64"),
    ] {
        lab.ip(ns, &["address", "add", v4, "dev", dev]);
        lab.ip(ns, &["address", "add", v6, "dev", dev, "nodad"]);
    }
    lab.forwarding(&r);
    lab.forwarding(&n);
    for (ns, args) in [
        (&c, ["route", "add", "default", "via", "198.18.1.2"]),
        (&c, ["route", "add", "default", "via", "fd18:1::2"]),
        (&r, ["route", "add", "192.0.2.100/32", "via", "198.18.2.2"]),
        (
            &r,
            ["route", "add", "2001:db8::100/128", "via", "fd18:2::2"],
        ),
        (&n, ["route", "add", "198.18.1.0/30", "via", "198.18.2.1"]),
        (&n, ["route", "add", "fd18:1::/64", "via", "fd18:2::1"]),
        (&n, ["route", "add", "192.0.2.100/32", "via", "198.18.3.2"]),
        (
            &n,
            ["route", "add", "2001:db8::100/128", "via", "fd18:3::2"],
        ),
        (&f, ["route", "add", "default", "via", "198.18.3.1"]),
        (&f, ["route", "add", "default", "via", "fd18:3::1"]),
    ] {
        lab.ip(ns, &args);
    }
    lab.ip(&f, &["address", "add", "192.0.2.100/32", "dev", "lo"]);
    lab.ip(
        &f,
        &["address", "add", "2001:db8::100/128", "dev", "lo", "nodad"],
    );
    // A busy machine can take a moment before the address is usable:
    // wait for it instead of failing the first bind.
    assert!(
        wait_until(Duration::from_secs(10), || in_ns(&f, || {
            UdpSocket::bind(sock(VIP6, 0)).is_ok()
        })),
        "2001:db8::100 never became usable on the far side"
    );
    Some(Chain {
        lab,
        client: c,
        router: r,
        node: n,
        far: f,
    })
}

#[test]
fn guard_never_forwards_vip_traffic_and_stays_after_a_clean_stop() {
    let Some(t) = chain("guard_never_forwards_vip_traffic_and_stays_after_a_clean_stop") else {
        return;
    };
    let (lab, c, r, n, f) = (&t.lab, &t.client, &t.router, &t.node, &t.far);
    let far4 = in_ns(f, || UdpSocket::bind(sock(VIP4, PORT)).unwrap());
    let far6 = in_ns(f, || UdpSocket::bind(sock(VIP6, PORT)).unwrap());
    let time_exceeded = || {
        (
            lab.snmp(c, "Icmp", "InTimeExcds"),
            lab.snmp(c, "Icmp6", "InTimeExcds"),
        )
    };
    let sent_time_exceeded = || {
        [r, n]
            .iter()
            .map(|ns| lab.snmp(ns, "Icmp", "OutTimeExcds") + lab.snmp(ns, "Icmp6", "OutTimeExcds"))
            .sum::<u64>()
    };

    // Control, no table: the node forwards VIP traffic to the far side, and
    // a packet arriving with TTL 1 makes it send ICMP time-exceeded.
    in_ns(c, || {
        send_udp(VIP4, 3, 64);
        send_udp(VIP6, 3, 64);
    });
    assert_eq!((drain(&far4), drain(&far6)), (3, 3), "control: forwarded");
    let te = time_exceeded();
    in_ns(c, || {
        send_udp(VIP4, 1, 2);
        send_udp(VIP6, 1, 2);
    });
    assert!(
        wait_until(Duration::from_secs(5), || {
            let now = time_exceeded();
            now.0 > te.0 && now.1 > te.1
        }),
        "control: TTL 1 at the node gives time-exceeded"
    );

    // The guard, VIPs withdrawn on the node.
    let rs = guard_only(&[vip4(), vip6()], GuardMode::Drop);
    in_ns(n, || Nft::new().install(&rs).unwrap());
    let (te, sent) = (time_exceeded(), sent_time_exceeded());
    in_ns(c, || {
        send_udp(VIP4, 5, 64);
        send_udp(VIP6, 5, 64);
        send_udp(VIP4, 3, 2);
        send_udp(VIP6, 3, 2);
    });
    assert_eq!((drain(&far4), drain(&far6)), (0, 0), "nothing forwarded");
    assert_eq!(counters(n).guard.packets, 16, "every packet counted");
    assert_eq!(time_exceeded(), te, "no time-exceeded");
    assert_eq!(sent_time_exceeded(), sent);

    // A loop: the node's route for the VIPs points back at the router.
    lab.ip(
        n,
        &["route", "replace", "192.0.2.100/32", "via", "198.18.2.1"],
    );
    lab.ip(
        n,
        &["route", "replace", "2001:db8::100/128", "via", "fd18:2::1"],
    );
    in_ns(n, || Nft::new().remove().unwrap());
    let te = time_exceeded();
    in_ns(c, || {
        send_udp(VIP4, 1, 64);
        send_udp(VIP6, 1, 64);
    });
    assert!(
        wait_until(Duration::from_secs(5), || {
            let now = time_exceeded();
            now.0 > te.0 && now.1 > te.1
        }),
        "control: without the guard the packets loop until their TTL runs out"
    );
    in_ns(n, || Nft::new().install(&rs).unwrap());
    let (te, sent, guard) = (
        time_exceeded(),
        sent_time_exceeded(),
        counters(n).guard.packets,
    );
    in_ns(c, || {
        send_udp(VIP4, 5, 64);
        send_udp(VIP6, 5, 64);
    });
    assert!(wait_until(Duration::from_secs(5), || counters(n)
        .guard
        .packets
        == guard + 10));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(time_exceeded(), te, "no loop, no time-exceeded");
    assert_eq!(sent_time_exceeded(), sent);
    assert_eq!(
        counters(n).guard.packets,
        guard + 10,
        "dropped once, at the first node"
    );

    // Replacing the table under traffic leaves no gap.
    lab.ip(
        n,
        &["route", "replace", "192.0.2.100/32", "via", "198.18.3.2"],
    );
    lab.ip(
        n,
        &["route", "replace", "2001:db8::100/128", "via", "fd18:3::2"],
    );
    let stop = AtomicBool::new(false);
    let sent_during = std::thread::scope(|s| {
        let sender = s.spawn(|| {
            in_ns(c, || {
                let mut k = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    send_udp(VIP4, 1, 64);
                    k += 1;
                    std::thread::sleep(Duration::from_millis(1));
                }
                k
            })
        });
        in_ns(n, || {
            let nft = Nft::new();
            for _ in 0..20 {
                nft.install(&rs).unwrap();
            }
        });
        stop.store(true, Ordering::Relaxed);
        sender.join().unwrap()
    });
    assert!(sent_during > 0);
    assert_eq!(drain(&far4), 0, "not one of {sent_during} forwarded");

    // A clean stop keeps the guard (and its count).
    in_ns(n, || Nft::new().stop(&rs, true).unwrap());
    let guard = counters(n).guard.packets;
    in_ns(c, || {
        send_udp(VIP4, 3, 64);
        send_udp(VIP6, 3, 64);
    });
    assert_eq!(
        (drain(&far4), drain(&far6)),
        (0, 0),
        "guard kept after stop"
    );
    assert_eq!(counters(n).guard.packets, guard + 6);

    // The operator's opt-out removes it: forwarding is back (control).
    in_ns(n, || Nft::new().stop(&rs, false).unwrap());
    in_ns(c, || send_udp(VIP4, 1, 64));
    assert_eq!(drain(&far4), 1);
}

#[test]
fn a_vip_dnated_to_another_host_is_not_forwarded_either() {
    let Some(t) = chain("a_vip_dnated_to_another_host_is_not_forwarded_either") else {
        return;
    };
    let (lab, c, n, f) = (&t.lab, &t.client, &t.node, &t.far);
    let _elsewhere = in_ns(f, || TcpListener::bind("198.18.3.2:81").unwrap());
    // A misconfigured `to`: another host's address.
    let rs = Ruleset::new(
        vec![VipRule {
            prefix: vip4(),
            steer: Some(SteerConfig {
                port: 6443,
                to: sock("198.18.3.2", 81),
            }),
        }],
        GuardMode::Drop,
    )
    .unwrap();
    in_ns(n, || {
        block_on(async {
            let lo = Addresses::new("lo").await.unwrap();
            lo.ensure(vip4()).await.unwrap();
        });
        Nft::new().install(&rs).unwrap();
    });
    let connect = || {
        in_ns(c, || {
            TcpStream::connect_timeout(&sock(VIP4, 6443), Duration::from_millis(700)).map(|_| ())
        })
    };
    assert!(connect().is_err(), "DNATed away and forwarded");
    let seen = counters(n);
    assert!(seen.steered.packets >= 1);
    assert!(seen.guard.packets >= 1, "the forward guard caught it");
    // Control: it is the forward guard that stops it.
    lab.exec(n, &["nft", "delete chain inet anyvip guard_forward"]);
    connect().unwrap();
}

#[test]
fn reject_modes_answer_with_reset_or_admin_prohibited() {
    let Some(t) = chain("reject_modes_answer_with_reset_or_admin_prohibited") else {
        return;
    };
    let (c, n, f) = (&t.client, &t.node, &t.far);
    let _far4 = in_ns(f, || TcpListener::bind(sock(VIP4, 80)).unwrap());
    let _far6 = in_ns(f, || TcpListener::bind(sock(VIP6, 80)).unwrap());
    let connect = |vip: &str| {
        in_ns(c, || {
            TcpStream::connect_timeout(&sock(vip, 80), Duration::from_secs(5)).map(|_| ())
        })
    };
    // Control: without the guard the node forwards the connection.
    connect(VIP4).unwrap();
    connect(VIP6).unwrap();

    // Linux reports ICMP "communication administratively prohibited" as
    // EHOSTUNREACH, its ICMPv6 counterpart as EACCES.
    for (mode, kind4, kind6) in [
        (
            GuardMode::Reject,
            ErrorKind::ConnectionRefused,
            ErrorKind::ConnectionRefused,
        ),
        (
            GuardMode::Prohibit,
            ErrorKind::HostUnreachable,
            ErrorKind::PermissionDenied,
        ),
    ] {
        in_ns(n, || {
            Nft::new()
                .install(&guard_only(&[vip4(), vip6()], mode))
                .unwrap()
        });
        let before = counters(n).guard.packets;
        for (vip, kind) in [(VIP4, kind4), (VIP6, kind6)] {
            let err = connect(vip).unwrap_err();
            assert_eq!(err.kind(), kind, "{mode} {vip}: {err}");
        }
        assert!(counters(n).guard.packets >= before + 2, "{mode}");
    }
}

// ----------------------------------------------------------------- ARP / ND

/// The asker's neighbour entry for `ip` on `dev`: (state, has a lladdr).
fn neighbour(lab: &Lab, ns: &str, ip: &str, dev: &str) -> Option<(String, bool)> {
    let doc: Value =
        serde_json::from_str(&lab.ip(ns, &["-j", "neigh", "show", "to", ip, "dev", dev])).unwrap();
    doc.as_array()?.first().map(|e| {
        (
            e["state"]
                .as_array()
                .and_then(|s| s.first())
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            e.get("lladdr").is_some(),
        )
    })
}

/// Make `asker` resolve `ip` on `dev` (one UDP datagram to it) and wait
/// until the resolution succeeded (`true`) or failed (`false`).
fn resolves(lab: &Lab, asker: &str, ip: &str, dev: &str) -> bool {
    let _ = lab.ip(asker, &["neigh", "flush", "dev", dev]);
    in_ns(asker, || send_udp(ip, 1, 64));
    let mut answer = None;
    let done = wait_until(Duration::from_secs(10), || {
        match neighbour(lab, asker, ip, dev) {
            Some((_, true)) => answer = Some(true),
            Some((state, false)) if state == "FAILED" => answer = Some(false),
            _ => {}
        }
        answer.is_some()
    });
    assert!(done, "{ip}: neither answered nor failed");
    answer == Some(true)
}

/// Whether `asker` learnt a neighbour entry with a lladdr for `ip`.
fn learnt(lab: &Lab, asker: &str, ip: &str, dev: &str) -> bool {
    neighbour(lab, asker, ip, dev).is_some_and(|(_, lladdr)| lladdr)
}

#[test]
fn no_arp_or_nd_answers_for_a_vip() {
    let Some(mut lab) = Lab::new("no_arp_or_nd_answers_for_a_vip") else {
        return;
    };
    let (a, n) = (lab.ns("asker"), lab.ns("node"));
    lab.veth(&a, "a0", &n, "n0");
    lab.ip(&a, &["address", "add", "198.18.1.1/24", "dev", "a0"]);
    lab.ip(&n, &["address", "add", "198.18.1.2/24", "dev", "n0"]);
    lab.ip(
        &a,
        &["address", "add", "fd18:1::1/64", "dev", "a0", "nodad"],
    );
    lab.ip(
        &n,
        &["address", "add", "fd18:1::2/64", "dev", "n0", "nodad"],
    );
    // The VIPs on-link for the asker: it asks the segment for them.
    lab.ip(&a, &["route", "add", "192.0.2.100/32", "dev", "a0"]);
    lab.ip(&a, &["route", "add", "2001:db8::100/128", "dev", "a0"]);
    for key in [
        "net.ipv4.neigh.a0.retrans_time_ms",
        "net.ipv6.neigh.a0.retrans_time_ms",
    ] {
        lab.sysctl(&a, key, "200");
    }
    let _ = lab.ip(&n, &["neigh", "flush", "dev", "n0"]);

    // Controls: the link resolves, and with the kernel's defaults a VIP put
    // on lo by hand IS answered, and IS announced as a sender address.
    assert!(resolves(&lab, &a, "198.18.1.2", "a0"));
    assert!(resolves(&lab, &a, "fd18:1::2", "a0"));
    lab.ip(&n, &["address", "add", "192.0.2.100/32", "dev", "lo"]);
    assert!(
        resolves(&lab, &a, VIP4, "a0"),
        "control: Linux answers ARP for lo addresses by default"
    );
    let announce = || {
        let _ = lab.ip(&a, &["neigh", "flush", "dev", "a0"]);
        let _ = lab.ip(&n, &["neigh", "flush", "dev", "n0"]);
        in_ns(&n, || {
            let s = UdpSocket::bind(sock(VIP4, 0)).unwrap();
            s.send_to(b"x", sock("198.18.1.1", PORT)).unwrap();
        });
        // The node's ARP request for the asker reaches it within
        // milliseconds; the asker learns its sender address.
        assert!(wait_until(Duration::from_secs(5), || learnt(
            &lab,
            &a,
            "198.18.1.2",
            "a0"
        ) || learnt(
            &lab, &a, VIP4, "a0"
        )));
        learnt(&lab, &a, VIP4, "a0")
    };
    assert!(
        announce(),
        "control: by default the VIP is the sender of the node's ARP requests"
    );
    lab.ip(&n, &["address", "del", "192.0.2.100/32", "dev", "lo"]);

    // anyvip's way.
    let changes = in_ns(&n, || {
        block_on(async {
            let lo = Addresses::new("lo").await.unwrap();
            assert_eq!(
                lo.ensure(vip4()).await.unwrap(),
                Ensured::Added { marked: true }
            );
            lo.ensure(vip6()).await.unwrap();
        });
        anyvip::address::suppress_arp().unwrap()
    });
    assert_eq!(changes, [], "ensure already set them");
    assert!(!resolves(&lab, &a, VIP4, "a0"), "ARP for the VIP answered");
    assert!(!resolves(&lab, &a, VIP6, "a0"), "ND for the VIP answered");
    assert!(!announce(), "the VIP was used as ARP sender address");
    // The IPv6 counterpart of the sender check: the node's solicitation for
    // the asker comes from its own interface address, not the VIP.
    let _ = lab.ip(&a, &["neigh", "flush", "dev", "a0"]);
    let _ = lab.ip(&n, &["neigh", "flush", "dev", "n0"]);
    in_ns(&n, || {
        let s = UdpSocket::bind(sock(VIP6, 0)).unwrap();
        s.send_to(b"x", sock("fd18:1::1", PORT)).unwrap();
    });
    // The asker learns the node from its solicitation...
    assert!(wait_until(Duration::from_secs(5), || {
        lab.ip(&a, &["-6", "neigh", "show", "dev", "a0"])
            .contains("lladdr")
    }));
    // ... but not as the VIP.
    assert!(!learnt(&lab, &a, VIP6, "a0"));
    // The link itself still resolves both ways.
    assert!(resolves(&lab, &a, "198.18.1.2", "a0"));
    assert!(resolves(&lab, &a, "fd18:1::2", "a0"));
}
