//! What anyvip's nftables table contains, described by a small pure value
//! ([`Ruleset`]) and rendered into one `nft -j` transaction
//! ([`Ruleset::transaction`]). No I/O here: everything is unit-tested.
//!
//! The table, in `nft list` terms, for a VIP `192.0.2.100/32` steered from
//! port 6443 to `127.0.0.1:6443` and the default guard:
//!
//! ```text
//! table inet anyvip {
//!     counter guard { }            # packets to a VIP that this node would forward
//!     counter steered { }          # connections DNATed to the local apiserver
//!     counter loopback_guard { }   # packets to 127/8 from the network that were not DNATed
//!     chain guard_prerouting {     # before routing: no conntrack entry, no ICMP time-exceeded
//!         type filter hook prerouting priority -300; policy accept;
//!         ip daddr 192.0.2.100 fib daddr type != local counter name "guard" drop
//!     }
//!     chain guard_forward {        # backstop: nothing addressed to a VIP is ever forwarded,
//!         type filter hook forward priority -300; policy accept;
//!         ip daddr 192.0.2.100 counter name "guard" drop
//!         ct original ip daddr 192.0.2.100 counter name "guard" drop   # not even DNATed elsewhere
//!     }
//!     chain steer_prerouting {     # from the network, while the VIP is on the node
//!         type nat hook prerouting priority dstnat; policy accept;
//!         ip daddr 192.0.2.100 tcp dport 6443 fib daddr type local counter name "steered" dnat ip to 127.0.0.1:6443
//!     }
//!     chain steer_output {         # from the node itself, while the VIP is on the node
//!         type nat hook output priority -100; policy accept;
//!         ip daddr 192.0.2.100 tcp dport 6443 fib daddr type local counter name "steered" dnat ip to 127.0.0.1:6443
//!     }
//!     chain loopback_guard {       # while route_localnet is on (a VIP DNATed to 127/8)
//!         type filter hook input priority filter; policy accept;
//!         iif != "lo" ip daddr 127.0.0.0/8 ct status & dnat != dnat counter name "loopback_guard" drop
//!     }
//! }
//! ```
//!
//! The guard lists every configured VIP, announced or not: a VIP that is on
//! the node is delivered locally (`fib daddr type local`), any other packet
//! for it is dropped (or rejected) at this node, so it can never loop
//! (design invariant 3). The DNAT rules only apply while the VIP address is
//! on the node, so the ruleset does not change when a VIP is announced or
//! withdrawn; a node whose VIP is withdrawn reaches the VIP (as a client)
//! through the routers like any other host.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use serde_json::{json, Value};

/// The table's family and name: `table inet anyvip`.
pub const FAMILY: &str = "inet";
pub const TABLE: &str = "anyvip";
/// Named counters in the table.
pub const GUARD_COUNTER: &str = "guard";
pub const STEER_COUNTER: &str = "steered";
pub const LOOPBACK_COUNTER: &str = "loopback_guard";

/// Chain priorities. The guards run before the usual filter chains
/// (firewalld, kube-proxy) so their counter sees every packet; the DNAT
/// chains at the standard dstnat priority.
const GUARD_PRIORITY: i32 = -300;
const DSTNAT_PRIORITY: i32 = -100;
const INPUT_PRIORITY: i32 = 0;

/// What the guard does with a packet addressed to a VIP that this node
/// would otherwise forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GuardMode {
    /// Drop silently (default): no packet is ever sent in response.
    #[default]
    Drop,
    /// TCP: a reset (from the VIP's address), so a client fails fast and
    /// retries (on another node once the routers have converged); any other
    /// protocol: ICMP/ICMPv6 destination unreachable, administratively
    /// prohibited.
    Reject,
    /// ICMP/ICMPv6 administratively prohibited for everything, TCP included.
    Prohibit,
}

impl std::str::FromStr for GuardMode {
    type Err = String;

    /// `drop`, `reject` or `prohibit` (the config file's spelling).
    fn from_str(s: &str) -> Result<GuardMode, String> {
        match s {
            "drop" => Ok(GuardMode::Drop),
            "reject" => Ok(GuardMode::Reject),
            "prohibit" => Ok(GuardMode::Prohibit),
            other => Err(format!(
                "unknown guard mode {other:?}: expected \"drop\", \"reject\" or \"prohibit\""
            )),
        }
    }
}

/// The operator's choices for the guard (for the config to fill in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardConfig {
    pub mode: GuardMode,
    /// Keep the guard installed after a clean stop (default): the VIPs stay
    /// loop-free while anyvip is not running. `false` removes the table.
    pub keep_on_stop: bool,
}

impl Default for GuardConfig {
    fn default() -> GuardConfig {
        GuardConfig {
            mode: GuardMode::Drop,
            keep_on_stop: true,
        }
    }
}

/// DNAT of `VIP:port` (TCP) to the local apiserver endpoint.
///
/// `to` with an unspecified address (`0.0.0.0:6443`, `[::]:6443`) keeps the
/// VIP as destination and changes only the port (an apiserver listening on
/// all addresses). A loopback `to` (`127.0.0.1:6443`) needs
/// `net.ipv4.conf.all.route_localnet=1` for traffic from the network, which
/// [`super::Nft::install`] sets, together with the `loopback_guard` chain
/// that keeps other 127/8 services unreachable from the network. IPv6 has no
/// equivalent: Linux never routes a packet from the network to `::1`, so an
/// IPv6 VIP cannot be steered to `[::1]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SteerConfig {
    pub port: u16,
    pub to: SocketAddr,
}

/// One VIP as the table sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VipRule {
    pub prefix: IpNet,
    pub steer: Option<SteerConfig>,
}

/// Why a set of VIPs cannot be turned into a ruleset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("vip {prefix}: {reason}")]
pub struct RulesetError {
    pub prefix: IpNet,
    pub reason: String,
}

/// The whole table, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    vips: Vec<VipRule>,
    guard: GuardMode,
    loopback_guard: bool,
}

/// Packets and bytes of one named counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

/// The table's named counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Packets to a VIP that this node would have forwarded.
    pub guard: Counter,
    /// New connections DNATed to the local apiserver.
    pub steered: Counter,
    /// Packets from the network to 127/8 that were not DNATed.
    pub loopback_guard: Counter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// nft's name for the network header (and for `dnat <family> to`).
    fn protocol(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        }
    }
}

/// The DNAT target of one steered VIP, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dnat {
    port: u16,
    addr: IpAddr,
    to_port: u16,
}

impl Ruleset {
    /// Validate `vips` (at most one entry per prefix; a steered VIP's `to`
    /// is of its family; see [`SteerConfig`] for the loopback rules).
    pub fn new(vips: Vec<VipRule>, guard: GuardMode) -> Result<Ruleset, RulesetError> {
        let mut loopback_guard = false;
        for (i, vip) in vips.iter().enumerate() {
            let fail = |reason: &str| RulesetError {
                prefix: vip.prefix,
                reason: reason.to_string(),
            };
            if vips.iter().take(i).any(|v| v.prefix == vip.prefix) {
                return Err(fail("listed twice"));
            }
            let Some(steer) = vip.steer else { continue };
            let to = steer.to.ip();
            if Family::of(to) != Family::of(vip.prefix.addr()) {
                return Err(fail("steer.to is not of the VIP's address family"));
            }
            if to.is_unspecified() && vip.prefix.prefix_len() != vip.prefix.max_prefix_len() {
                return Err(fail(
                    "steer.to without an address needs a single-address VIP (/32 or /128)",
                ));
            }
            if steer.port == 0 || steer.to.port() == 0 {
                return Err(fail("steer ports must not be 0"));
            }
            if to.is_loopback() {
                if to.is_ipv6() {
                    return Err(fail(
                        "Linux never routes packets from the network to ::1: steer an IPv6 VIP to \
                         an address of the node, or to [::]:PORT to keep the VIP and change the port",
                    ));
                }
                loopback_guard = true;
            }
        }
        Ok(Ruleset {
            vips,
            guard,
            loopback_guard,
        })
    }

    pub fn vips(&self) -> &[VipRule] {
        &self.vips
    }

    pub fn guard_mode(&self) -> GuardMode {
        self.guard
    }

    /// What stays installed after a clean stop: the guard for the same VIPs
    /// (and the loopback guard, if `route_localnet` was needed), no DNAT.
    pub fn guard_only(&self) -> Ruleset {
        Ruleset {
            vips: self
                .vips
                .iter()
                .map(|v| VipRule {
                    prefix: v.prefix,
                    steer: None,
                })
                .collect(),
            guard: self.guard,
            loopback_guard: self.loopback_guard,
        }
    }

    /// Include the loopback guard even if no VIP is DNATed to 127/8:
    /// [`super::Nft::install`] does so whenever `route_localnet` is on in the
    /// namespace (an earlier configuration's, or someone else's).
    pub(crate) fn with_loopback_guard(mut self) -> Ruleset {
        self.loopback_guard = true;
        self
    }

    /// Whether an IPv4 VIP is DNATed to 127/8, which needs
    /// `net.ipv4.conf.all.route_localnet=1` for traffic from the network.
    pub fn needs_route_localnet(&self) -> bool {
        self.vips.iter().any(|v| {
            v.steer
                .is_some_and(|s| s.to.ip().is_ipv4() && s.to.ip().is_loopback())
        })
    }

    fn dnat(vip: &VipRule) -> Option<Dnat> {
        let steer = vip.steer?;
        let addr = if steer.to.ip().is_unspecified() {
            vip.prefix.addr()
        } else {
            steer.to.ip()
        };
        let same = vip.prefix.prefix_len() == vip.prefix.max_prefix_len()
            && addr == vip.prefix.addr()
            && steer.port == steer.to.port();
        (!same).then_some(Dnat {
            port: steer.port,
            addr,
            to_port: steer.to.port(),
        })
    }

    /// The one `nft -j -f -` transaction that replaces the table: create it
    /// (so the delete cannot fail), delete it with whatever an earlier run
    /// left in it, define it anew. The kernel applies all of it or nothing.
    /// Named counters start from `seed`, so a re-install keeps their values.
    pub fn transaction(&self, seed: &Counters) -> Value {
        let table = json!({"family": FAMILY, "name": TABLE});
        let mut cmds = vec![
            json!({"add": {"table": table}}),
            json!({"delete": {"table": table}}),
            json!({"add": {"table": table}}),
        ];
        for (name, c) in [
            (GUARD_COUNTER, seed.guard),
            (STEER_COUNTER, seed.steered),
            (LOOPBACK_COUNTER, seed.loopback_guard),
        ] {
            cmds.push(json!({"add": {"counter": {
                "family": FAMILY, "table": TABLE, "name": name,
                "packets": c.packets, "bytes": c.bytes,
            }}}));
        }
        let mut chain = |name: &str, kind: &str, hook: &str, prio: i32, rules: Vec<Vec<Value>>| {
            cmds.push(json!({"add": {"chain": {
                "family": FAMILY, "table": TABLE, "name": name,
                "type": kind, "hook": hook, "prio": prio, "policy": "accept",
            }}}));
            for expr in rules {
                cmds.push(json!({"add": {"rule": {
                    "family": FAMILY, "table": TABLE, "chain": name, "expr": expr,
                }}}));
            }
        };

        // Before routing: to a VIP that is not on this node. In forward:
        // to a VIP, or DNATed away from one (whoever did the DNAT).
        let guard = |pre: bool| -> Vec<Vec<Value>> {
            let mut rules = Vec::new();
            for v in &self.vips {
                let matches = if pre {
                    vec![vec![daddr(v.prefix), fib_daddr_type("!=", "local")]]
                } else {
                    vec![vec![daddr(v.prefix)], vec![ct_original_daddr(v.prefix)]]
                };
                for m in matches {
                    for tail in verdicts(self.guard) {
                        rules.push(m.iter().cloned().chain(tail).collect());
                    }
                }
            }
            rules
        };
        chain(
            "guard_prerouting",
            "filter",
            "prerouting",
            GUARD_PRIORITY,
            guard(true),
        );
        chain(
            "guard_forward",
            "filter",
            "forward",
            GUARD_PRIORITY,
            guard(false),
        );

        let steer: Vec<Vec<Value>> = self
            .vips
            .iter()
            .filter_map(|v| Self::dnat(v).map(|d| (v, d)))
            .map(|(v, d)| {
                let family = Family::of(d.addr).protocol();
                vec![
                    daddr(v.prefix),
                    eq(json!({"payload": {"protocol": "tcp", "field": "dport"}}), json!(d.port)),
                    fib_daddr_type("==", "local"),
                    json!({"counter": STEER_COUNTER}),
                    json!({"dnat": {"family": family, "addr": d.addr.to_string(), "port": d.to_port}}),
                ]
            })
            .collect();
        if !steer.is_empty() {
            chain(
                "steer_prerouting",
                "nat",
                "prerouting",
                DSTNAT_PRIORITY,
                steer.clone(),
            );
            chain("steer_output", "nat", "output", DSTNAT_PRIORITY, steer);
        }

        if self.loopback_guard {
            // kube-proxy's rule for the same sysctl (CVE-2020-8558).
            let rule = vec![
                json!({"match": {"op": "!=", "left": {"meta": {"key": "iif"}}, "right": "lo"}}),
                eq(
                    json!({"payload": {"protocol": "ip", "field": "daddr"}}),
                    json!({"prefix": {"addr": "127.0.0.0", "len": 8}}),
                ),
                json!({"match": {"op": "!=",
                    "left": {"&": [{"ct": {"key": "status"}}, "dnat"]},
                    "right": "dnat"}}),
                json!({"counter": LOOPBACK_COUNTER}),
                json!({"drop": null}),
            ];
            chain(
                "loopback_guard",
                "filter",
                "input",
                INPUT_PRIORITY,
                vec![rule],
            );
        }
        json!({"nftables": cmds})
    }
}

/// `ip daddr 192.0.2.100` / `ip6 daddr 2001:db8::/64`
fn daddr(prefix: IpNet) -> Value {
    let protocol = Family::of(prefix.addr()).protocol();
    eq(
        json!({"payload": {"protocol": protocol, "field": "daddr"}}),
        prefix_value(prefix),
    )
}

/// `ct original ip daddr 192.0.2.100`: the destination the connection
/// was opened to, before any DNAT.
fn ct_original_daddr(prefix: IpNet) -> Value {
    let key = format!("{} daddr", Family::of(prefix.addr()).protocol());
    eq(
        json!({"ct": {"key": key, "dir": "original"}}),
        prefix_value(prefix),
    )
}

fn prefix_value(prefix: IpNet) -> Value {
    if prefix.prefix_len() == prefix.max_prefix_len() {
        json!(prefix.addr().to_string())
    } else {
        json!({"prefix": {"addr": prefix.network().to_string(), "len": prefix.prefix_len()}})
    }
}

fn eq(left: Value, right: Value) -> Value {
    json!({"match": {"op": "==", "left": left, "right": right}})
}

fn fib_daddr_type(op: &str, kind: &str) -> Value {
    json!({"match": {"op": op, "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": kind}})
}

/// The guard's rule tails, one rule each.
fn verdicts(mode: GuardMode) -> Vec<Vec<Value>> {
    let counter = json!({"counter": GUARD_COUNTER});
    let prohibit = json!({"reject": {"type": "icmpx", "expr": "admin-prohibited"}});
    match mode {
        GuardMode::Drop => vec![vec![counter, json!({"drop": null})]],
        GuardMode::Reject => vec![
            vec![
                json!({"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}),
                counter.clone(),
                json!({"reject": {"type": "tcp reset"}}),
            ],
            vec![counter, prohibit],
        ],
        GuardMode::Prohibit => vec![vec![counter, prohibit]],
    }
}

impl Counters {
    /// From `nft -j list counters table inet anyvip`; counters that are
    /// missing stay zero.
    pub fn from_nft_json(doc: &Value) -> Counters {
        let mut out = Counters::default();
        let items = doc
            .get("nftables")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for c in items.iter().filter_map(|i| i.get("counter")) {
            if c.get("family").and_then(Value::as_str) != Some(FAMILY)
                || c.get("table").and_then(Value::as_str) != Some(TABLE)
            {
                continue;
            }
            let value = Counter {
                packets: c.get("packets").and_then(Value::as_u64).unwrap_or(0),
                bytes: c.get("bytes").and_then(Value::as_u64).unwrap_or(0),
            };
            match c.get("name").and_then(Value::as_str) {
                Some(GUARD_COUNTER) => out.guard = value,
                Some(STEER_COUNTER) => out.steered = value,
                Some(LOOPBACK_COUNTER) => out.loopback_guard = value,
                _ => {}
            }
        }
        out
    }
}

impl fmt::Display for GuardMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GuardMode::Drop => "drop",
            GuardMode::Reject => "reject",
            GuardMode::Prohibit => "prohibit",
        })
    }
}

#[cfg(test)]
mod tests;
