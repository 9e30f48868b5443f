//! The VIP lifecycle: one record per VIP, the only place its mode, health
//! and drain are stored. Pure decisions, no I/O, no waiting: every input
//! (check levels, operator requests, the data plane's report, "every peer
//! has sent version N", the clock) is a method call that returns at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime};

use ipnet::IpNet;
use tokio::sync::watch;

use crate::config::{self, Config};
use crate::control::VipStatus;
use crate::health::VipLevel;

use super::{Announcer, Mode};

/// One VIP's record.
#[derive(Debug, Clone)]
struct Record {
    checks: Vec<String>,
    /// All its checks are up now (or `always = true`).
    healthy: bool,
    /// The operator asked for a drain (`anyvip drain`, or a stop).
    drained: bool,
    /// The maintenance flag (a `file` check) is set: drain like an operator
    /// drain, undone when the flag goes.
    maintenance: bool,
    mode: Mode,
    since: SystemTime,
    /// What the checks say ("all checks up (apiserver)", "check apiserver
    /// is down: ...").
    health_reason: String,
    transitions: u64,
    drain_until: Option<Instant>,
}

impl Record {
    fn new(v: &config::Vip) -> Record {
        Record {
            checks: v.checks.clone(),
            healthy: false,
            drained: false,
            maintenance: false,
            mode: Mode::Withdrawn,
            since: SystemTime::now(),
            health_reason: "starting: not yet healthy".to_string(),
            transitions: 0,
            drain_until: None,
        }
    }

    /// Where this VIP should be now: unhealthy is withdrawn at once; a
    /// drained VIP goes through Draining for the drain delay.
    fn target(&self, now: Instant) -> Mode {
        match (self.healthy, self.drained || self.maintenance, self.mode) {
            (false, _, _) => Mode::Withdrawn,
            (true, false, _) => Mode::Announced,
            (true, true, Mode::Announced) => Mode::Draining,
            (true, true, Mode::Draining) if self.drain_until.is_some_and(|t| now < t) => {
                Mode::Draining
            }
            (true, true, _) => Mode::Withdrawn,
        }
    }
}

/// The VIP lifecycle (design section 2): up = address, then announce;
/// down = withdraw from every peer first, then the address; drain =
/// announce with GRACEFUL_SHUTDOWN, wait, withdraw.
pub struct Lifecycle {
    announcer: Announcer,
    vips: BTreeMap<IpNet, Record>,
    drain_delay: Duration,
    /// Whether anyvip manages the node's addresses; if not, an address is
    /// never waited for.
    managed: bool,
    /// The addresses the data plane reported present.
    present: BTreeSet<IpNet>,
    /// Withdrawn VIPs whose addresses stay until every peer has sent the
    /// withdrawal of that version of the routes.
    removals: Vec<(u64, IpNet)>,
    /// The addresses that belong on the node, for the data plane.
    addresses: watch::Sender<BTreeSet<IpNet>>,
}

impl Lifecycle {
    /// Every VIP starts withdrawn and unhealthy (fail closed).
    pub fn new(config: &Config) -> Lifecycle {
        Lifecycle {
            announcer: Announcer::new(&config.vips, &config.drain),
            vips: config
                .vips
                .iter()
                .map(|v| (v.prefix, Record::new(v)))
                .collect(),
            drain_delay: config.drain.delay,
            managed: config.dataplane.manage,
            present: BTreeSet::new(),
            removals: Vec::new(),
            addresses: watch::channel(BTreeSet::new()).0,
        }
    }

    /// The routes, for the peer tasks.
    pub fn routes(&self) -> watch::Receiver<std::sync::Arc<super::Published>> {
        self.announcer.subscribe()
    }

    /// The addresses that belong on the node, for the data plane.
    pub fn addresses(&self) -> watch::Receiver<BTreeSet<IpNet>> {
        self.addresses.subscribe()
    }

    /// The checks' current levels (all VIPs, or some): health follows
    /// them, whatever it was.
    pub fn health(&mut self, levels: &[VipLevel], now: Instant) -> Option<u64> {
        for l in levels {
            let Some(r) = self.vips.get_mut(&l.prefix) else {
                continue;
            };
            r.healthy = l.up || l.maintenance;
            r.maintenance = l.maintenance;
            r.health_reason.clone_from(&l.reason);
        }
        self.reconcile(now)
    }

    /// Set or clear the operator drain on one VIP or all.
    pub fn drain(
        &mut self,
        prefix: Option<IpNet>,
        drained: bool,
        now: Instant,
    ) -> Result<(Vec<IpNet>, Option<u64>), String> {
        let affected: Vec<IpNet> = match prefix {
            Some(p) if !self.vips.contains_key(&p) => {
                return Err(format!("{p} is not a configured VIP"));
            }
            Some(p) => vec![p],
            None => self.vips.keys().copied().collect(),
        };
        for p in &affected {
            if let Some(r) = self.vips.get_mut(p) {
                r.drained = drained;
            }
        }
        Ok((affected, self.reconcile(now)))
    }

    /// The data plane's report of the addresses on the node.
    pub fn present(&mut self, present: BTreeSet<IpNet>, now: Instant) -> Option<u64> {
        self.present = present;
        self.reconcile(now)
    }

    /// Every peer has sent `version` of the routes (or given up trying):
    /// the addresses of VIPs withdrawn up to it may go.
    pub fn withdrawn_everywhere(&mut self, version: u64, now: Instant) -> Option<u64> {
        self.removals.retain(|(v, _)| *v > version);
        self.reconcile(now)
    }

    /// Drain deadlines.
    pub fn tick(&mut self, now: Instant) -> Option<u64> {
        self.reconcile(now)
    }

    /// Cut every drain short (a second signal while stopping).
    pub fn withdraw_all(&mut self, now: Instant) -> Option<u64> {
        for r in self.vips.values_mut() {
            r.drain_until = None;
        }
        self.reconcile(now)
    }

    pub fn draining(&self) -> bool {
        self.vips.values().any(|r| r.mode == Mode::Draining)
    }

    /// Addresses still waiting for a withdrawal to reach every peer.
    pub fn removals_pending(&self) -> bool {
        !self.removals.is_empty()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.vips
            .values()
            .filter(|r| r.mode == Mode::Draining)
            .filter_map(|r| r.drain_until)
            .min()
    }

    /// A reloaded configuration, with the checks' levels under it. A VIP
    /// that stays keeps its mode and drain; its health is whatever its
    /// (possibly new) checks say now — a new or changed check is down, so
    /// the VIP is withdrawn until that check has passed `rise` times.
    /// VIPs that are gone are withdrawn.
    pub fn reconfigure(
        &mut self,
        config: &Config,
        levels: &[VipLevel],
        now: Instant,
    ) -> Option<u64> {
        self.drain_delay = config.drain.delay;
        self.managed = config.dataplane.manage;
        let mut next: BTreeMap<IpNet, Record> = BTreeMap::new();
        for v in &config.vips {
            let mut r = Record::new(v);
            if let Some(old) = self.vips.get(&v.prefix) {
                r.mode = old.mode;
                r.drained = old.drained;
                r.since = old.since;
                r.transitions = old.transitions;
                r.drain_until = old.drain_until;
            }
            next.insert(v.prefix, r);
        }
        let gone: Vec<(IpNet, Mode)> = self
            .vips
            .iter()
            .filter(|(p, r)| !next.contains_key(p) && r.mode != Mode::Withdrawn)
            .map(|(p, _)| (*p, Mode::Withdrawn))
            .collect();
        // The routes of VIPs that are gone are withdrawn by the new routes
        // table itself; their addresses wait for it like any withdrawal.
        self.announcer.reconfigure(&config.vips, &config.drain);
        let version = self.announcer.version();
        for (p, _) in &gone {
            tracing::warn!(prefix = %p, "VIP withdrawn: no longer configured");
            self.removals.push((version, *p));
        }
        self.vips = next;
        // Health from the levels before anything moves: a VIP must never
        // be announced on a stale health.
        for l in levels {
            if let Some(r) = self.vips.get_mut(&l.prefix) {
                r.healthy = l.up || l.maintenance;
                r.maintenance = l.maintenance;
                r.health_reason.clone_from(&l.reason);
            }
        }
        let moved = self.reconcile(now);
        if gone.is_empty() {
            moved
        } else {
            Some(moved.unwrap_or(version).max(version))
        }
    }

    /// Move every VIP to where it should be, withdrawals first and all in
    /// one published version. Returns that version if anything was
    /// withdrawn: the caller tells [`Lifecycle::withdrawn_everywhere`] once
    /// every peer has sent it.
    fn reconcile(&mut self, now: Instant) -> Option<u64> {
        let moves: Vec<(IpNet, Mode, Mode)> = self
            .vips
            .iter()
            .map(|(p, r)| (*p, r.mode, r.target(now)))
            .filter(|(_, from, to)| from != to)
            .collect();
        // 1. Withdrawals, in one publish (invariant 2).
        let downs: Vec<(IpNet, Mode)> = moves
            .iter()
            .filter(|(_, _, to)| *to == Mode::Withdrawn)
            .map(|(p, _, _)| (*p, Mode::Withdrawn))
            .collect();
        let mut withdrawn = None;
        if !downs.is_empty() {
            self.announcer.set_all(&downs);
            let version = self.announcer.version();
            for (p, _) in &downs {
                self.mark(*p, Mode::Withdrawn);
                self.removals.push((version, *p));
            }
            withdrawn = Some(version);
        }
        // 2. Drains (same address, worse path) and announcements (address
        //    first: no address, no announcement).
        let mut ups = Vec::new();
        for (p, from, to) in &moves {
            match to {
                Mode::Draining => {
                    if let Some(r) = self.vips.get_mut(p) {
                        r.drain_until = Some(now + self.drain_delay);
                    }
                    ups.push((*p, Mode::Draining));
                }
                Mode::Announced if *from == Mode::Draining || self.address_ready(p) => {
                    ups.push((*p, Mode::Announced));
                }
                Mode::Announced | Mode::Withdrawn => {}
            }
        }
        if !ups.is_empty() {
            self.announcer.set_all(&ups);
            for (p, mode) in ups {
                self.mark(p, mode);
            }
        }
        self.publish_addresses(now);
        withdrawn
    }

    fn address_ready(&self, prefix: &IpNet) -> bool {
        !self.managed || self.present.contains(prefix)
    }

    /// The addresses that belong on the node: every VIP announced or
    /// draining, every VIP about to be announced, and every VIP whose
    /// withdrawal has not reached every peer yet.
    fn publish_addresses(&mut self, now: Instant) {
        let wanted: BTreeSet<IpNet> = self
            .vips
            .iter()
            .filter(|(_, r)| r.mode != Mode::Withdrawn || r.target(now) == Mode::Announced)
            .map(|(p, _)| *p)
            .chain(self.removals.iter().map(|(_, p)| *p))
            .collect();
        self.addresses.send_if_modified(|current| {
            if *current == wanted {
                false
            } else {
                *current = wanted;
                true
            }
        });
    }

    fn mark(&mut self, prefix: IpNet, mode: Mode) {
        let Some(r) = self.vips.get_mut(&prefix) else {
            return;
        };
        r.mode = mode;
        r.since = SystemTime::now();
        r.transitions += 1;
        if mode != Mode::Draining {
            r.drain_until = None;
        }
        let reason = self.reason(&prefix);
        match mode {
            Mode::Withdrawn => tracing::warn!(%prefix, %reason, "VIP withdrawn"),
            Mode::Draining => {
                tracing::info!(%prefix, %reason, "VIP draining (GRACEFUL_SHUTDOWN)")
            }
            Mode::Announced => tracing::info!(%prefix, %reason, "VIP announced"),
        }
    }

    /// Why a VIP is where it is, for status and the log.
    fn reason(&self, prefix: &IpNet) -> String {
        let Some(r) = self.vips.get(prefix) else {
            return String::new();
        };
        if r.drained && r.healthy {
            return "drained by request".to_string();
        }
        if r.mode == Mode::Withdrawn && r.healthy && !r.maintenance && !self.address_ready(prefix) {
            return format!("{}; waiting for the VIP address", r.health_reason);
        }
        r.health_reason.clone()
    }

    pub fn status(&self) -> Vec<VipStatus> {
        self.vips
            .iter()
            .map(|(p, r)| VipStatus {
                prefix: *p,
                mode: r.mode,
                // Under maintenance the VIP is not healthy: its flag check
                // fails (it is drained rather than withdrawn at once).
                healthy: r.healthy && !r.maintenance,
                drained: r.drained || r.maintenance,
                checks: r.checks.clone(),
                since: r.since,
                reason: self.reason(p),
                transitions: r.transitions,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
