//! The node side of a VIP's lifecycle (design section 6), and the
//! reconciler that keeps it true (design invariant 8).
//!
//! - start: install the table (guard + steering) and remove VIP addresses
//!   an earlier run left (nothing is up yet: fail closed);
//! - the address task makes the interface carry exactly the addresses the
//!   lifecycle says belong there, at every change and every
//!   `reconcile_interval`, and reports which are present; the lifecycle
//!   announces a VIP only once its address is reported. An address someone
//!   removed comes back within the interval;
//! - the nftables task installs the table on reloads and, every
//!   `reconcile_interval` (and when status asks), lists it: the counters
//!   for status and metrics, and a comparison with what it installed. A
//!   table that is gone (`nft flush ruleset`) or changed is installed again,
//!   atomically, as a whole. Only `table inet anyvip` is ever read or
//!   written (design invariant 7);
//! - each repair is logged once with what drifted and counted; status shows
//!   whether the data plane was in sync at the last look;
//! - stop: remove our addresses; keep the guard unless told otherwise.
//!
//! Both tasks work on their own: a hung `nft` shows as stale counters and a
//! late repair, never as a stalled main loop or a late address.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch, Notify};

use crate::address::{Addresses, Reconciled};
use crate::config::{self, Vip};
use crate::steer::{Counters, Nft, Ruleset, VipRule};

/// The soonest a status request makes the table be read again.
const REFRESH_MIN_GAP: Duration = Duration::from_millis(200);

/// What the data plane looked like at the last look, for status and
/// metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataplaneStatus {
    /// The table's counters as last read (`None` until read, or when the
    /// table is missing).
    pub counters: Option<Counters>,
    /// When the table was last read successfully.
    pub checked: Option<SystemTime>,
    /// The table and the addresses were as they should be at the last look
    /// (or have just been repaired).
    pub in_sync: bool,
    /// Tables installed again because they were missing or changed.
    pub nft_repairs: u64,
    /// VIP addresses added again because someone removed them.
    pub address_repairs: u64,
    /// The last drift found, and when.
    pub last_drift: Option<(SystemTime, String)>,
    /// The last error reading or repairing, if the last attempt failed.
    pub last_error: Option<String>,
}

/// The data plane before its tasks run: the table is installed and
/// leftovers are gone.
pub struct Dataplane {
    addresses: Addresses,
    nft: Nft,
    ruleset: Ruleset,
    keep_guard: bool,
    interval: Duration,
}

enum NftCommand {
    Ruleset {
        ruleset: Ruleset,
        keep_guard: bool,
        interval: Duration,
    },
    Stop(oneshot::Sender<()>),
}

enum AddressCommand {
    Interval(Duration),
    Stop(oneshot::Sender<()>),
}

/// The running data plane, as the daemon holds it.
pub struct DataplaneHandle {
    nft: mpsc::UnboundedSender<NftCommand>,
    addresses: mpsc::UnboundedSender<AddressCommand>,
    /// The addresses present on the node (of those wanted).
    pub present: watch::Receiver<BTreeSet<IpNet>>,
    status: watch::Receiver<DataplaneStatus>,
    refresh: Arc<Notify>,
    interface: String,
}

impl Dataplane {
    /// `Ok(None)` when the configuration leaves the data plane to someone
    /// else (`[dataplane] manage = false`).
    pub async fn start(cfg: &config::Dataplane, vips: &[Vip]) -> Result<Option<Dataplane>, String> {
        if !cfg.manage {
            tracing::warn!(
                "[dataplane] manage = false: no VIP addresses, no steering, no loop guard"
            );
            return Ok(None);
        }
        let ruleset = ruleset(cfg, vips)?;
        let nft = Nft::new();
        install(&nft, &ruleset).await?;
        let addresses = Addresses::new(&cfg.interface)
            .await
            .map_err(|e| format!("dataplane.interface {}: {e}", cfg.interface))?;
        // Nothing is announced yet, so no VIP address belongs on the node:
        // whatever an earlier run (or crash) left is removed now.
        let reconciled = addresses
            .reconcile(&[])
            .await
            .map_err(|e| format!("VIP addresses: {e}"))?;
        for p in &reconciled.removed {
            tracing::info!(prefix = %p, "removed a VIP address left by an earlier run");
        }
        for s in &reconciled.sysctls {
            tracing::info!(sysctl = %s, "sysctl set so the node never answers ARP for a VIP");
        }
        Ok(Some(Dataplane {
            addresses,
            nft,
            ruleset,
            keep_guard: cfg.guard.keep_on_stop,
            interval: cfg.reconcile_interval,
        }))
    }

    /// Start the address and nftables tasks; `wanted` is the lifecycle's
    /// set of addresses that belong on the node.
    pub fn spawn(self, wanted: watch::Receiver<BTreeSet<IpNet>>) -> DataplaneHandle {
        let (nft_tx, nft_rx) = mpsc::unbounded_channel();
        let (addr_tx, addr_rx) = mpsc::unbounded_channel();
        let (present_tx, present) = watch::channel(BTreeSet::new());
        let (status_tx, status) = watch::channel(DataplaneStatus {
            in_sync: true,
            ..DataplaneStatus::default()
        });
        let status_tx = Arc::new(status_tx);
        let refresh = Arc::new(Notify::new());
        let interface = self.addresses.interface().to_string();
        let tables = Tables {
            nft: self.nft,
            ruleset: self.ruleset,
            keep_guard: self.keep_guard,
            expected: None,
            interval: self.interval,
            status: status_tx.clone(),
            refresh: refresh.clone(),
            drift_logged: false,
        };
        tokio::spawn(tables.run(nft_rx));
        let addresses = AddressTask {
            addresses: self.addresses,
            interval: self.interval,
            status: status_tx,
        };
        tokio::spawn(addresses.run(wanted, addr_rx, present_tx));
        DataplaneHandle {
            nft: nft_tx,
            addresses: addr_tx,
            present,
            status,
            refresh,
            interface,
        }
    }
}

impl DataplaneHandle {
    /// A reloaded configuration. The ruleset is validated here (the error
    /// fails the reload); installing it is the task's (an `nft` failure is
    /// logged, the old table stays and is retried at the next interval).
    /// The interface cannot change without a restart.
    pub fn reconfigure(&self, cfg: &config::Dataplane, vips: &[Vip]) -> Result<(), String> {
        if cfg.interface != self.interface {
            return Err(format!(
                "dataplane.interface changed from {} to {}: restart anyvip to apply it",
                self.interface, cfg.interface
            ));
        }
        let ruleset = ruleset(cfg, vips)?;
        let gone = "the data plane task is gone".to_string();
        self.addresses
            .send(AddressCommand::Interval(cfg.reconcile_interval))
            .map_err(|_| gone.clone())?;
        self.nft
            .send(NftCommand::Ruleset {
                ruleset,
                keep_guard: cfg.guard.keep_on_stop,
                interval: cfg.reconcile_interval,
            })
            .map_err(|_| gone)
    }

    /// The data plane as last seen (and ask for a fresh look, which a later
    /// call will show).
    pub fn status(&self) -> DataplaneStatus {
        self.refresh.notify_one();
        self.status.borrow().clone()
    }

    /// Remove our addresses, then leave the guard (or not); wait for both.
    pub async fn stop(self) {
        let (done, wait) = oneshot::channel();
        if self.addresses.send(AddressCommand::Stop(done)).is_ok() {
            let _ = wait.await;
        }
        let (done, wait) = oneshot::channel();
        if self.nft.send(NftCommand::Stop(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

/// The address task.
struct AddressTask {
    addresses: Addresses,
    interval: Duration,
    status: Arc<watch::Sender<DataplaneStatus>>,
}

impl AddressTask {
    async fn run(
        mut self,
        mut wanted: watch::Receiver<BTreeSet<IpNet>>,
        mut commands: mpsc::UnboundedReceiver<AddressCommand>,
        present: watch::Sender<BTreeSet<IpNet>>,
    ) {
        let mut resync = tokio::time::interval(self.interval);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_error: Option<String> = None;
        // Foreign addresses are logged once, not at every resync.
        let mut foreign: BTreeSet<IpNet> = BTreeSet::new();
        loop {
            tokio::select! {
                // A stop must not wait for a resync.
                biased;
                command = commands.recv() => match command {
                    Some(AddressCommand::Interval(every)) => {
                        if every != self.interval {
                            self.interval = every;
                            resync = tokio::time::interval(every);
                            resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        }
                        continue;
                    }
                    Some(AddressCommand::Stop(done)) => {
                        self.stop().await;
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.stop().await;
                        return;
                    }
                },
                changed = wanted.changed() => if changed.is_err() { return },
                _ = resync.tick() => {}
            }
            let want: Vec<IpNet> = wanted.borrow_and_update().iter().copied().collect();
            match self.addresses.reconcile(&want).await {
                Ok(done) => {
                    last_error = None;
                    let repaired = log_reconciled(&done, &present.borrow(), &mut foreign);
                    if !repaired.is_empty() {
                        self.status.send_modify(|s| {
                            s.address_repairs += repaired.len() as u64;
                            s.last_drift = Some((
                                SystemTime::now(),
                                format!("VIP address {} missing from the node", join(&repaired)),
                            ));
                        });
                    }
                    present.send_if_modified(|p| {
                        let now: BTreeSet<IpNet> = want.iter().copied().collect();
                        if *p == now {
                            false
                        } else {
                            *p = now;
                            true
                        }
                    });
                }
                Err(e) => {
                    let e = e.to_string();
                    if last_error.as_ref() != Some(&e) {
                        tracing::error!(error = %e, "cannot bring the VIP addresses in line; retrying");
                        last_error = Some(e);
                    }
                }
            }
        }
    }

    /// Clean stop: our addresses go.
    async fn stop(&self) {
        match self.addresses.reconcile(&[]).await {
            Ok(r) => {
                for p in r.removed {
                    tracing::info!(prefix = %p, "VIP address removed");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot remove VIP addresses"),
        }
    }
}

/// The nftables task: installs, watches and repairs `table inet anyvip`.
struct Tables {
    nft: Nft,
    ruleset: Ruleset,
    keep_guard: bool,
    /// The table as it read right after we installed it (volatile parts
    /// taken out); `None` until read.
    expected: Option<Value>,
    interval: Duration,
    status: Arc<watch::Sender<DataplaneStatus>>,
    refresh: Arc<Notify>,
    /// A drift that persists (a repair that keeps failing) is logged once.
    drift_logged: bool,
}

impl Tables {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<NftCommand>) {
        let mut resync = tokio::time::interval(self.interval);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_look = tokio::time::Instant::now();
        loop {
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(NftCommand::Ruleset { ruleset, keep_guard, interval }) => {
                        self.keep_guard = keep_guard;
                        if interval != self.interval {
                            self.interval = interval;
                            resync = tokio::time::interval(interval);
                            resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        }
                        match install(&self.nft, &ruleset).await {
                            Ok(()) => {
                                self.ruleset = ruleset;
                                let counters = self.reference().await;
                                self.status.send_modify(|s| s.counters = counters);
                            }
                            Err(e) => tracing::error!(error = %e, "cannot install the new nftables table; the old one stays"),
                        }
                    }
                    Some(NftCommand::Stop(done)) => {
                        self.stop().await;
                        let _ = done.send(());
                        return;
                    }
                    // The daemon is gone without a clean stop.
                    None => return,
                },
                _ = resync.tick() => {}
                () = self.refresh.notified() => {
                    if last_look.elapsed() < REFRESH_MIN_GAP {
                        continue;
                    }
                }
            }
            last_look = tokio::time::Instant::now();
            self.look().await;
        }
    }

    /// Read the table: counters for status, and a repair if it is not what
    /// we installed.
    async fn look(&mut self) {
        let nft = self.nft.clone();
        let observed = match tokio::task::spawn_blocking(move || nft.observe()).await {
            Ok(r) => r,
            Err(_) => return,
        };
        let drift = match observed {
            Err(e) => {
                let e = format!("nftables: {e}");
                self.status.send_if_modified(|s| {
                    let changed = s.last_error.as_ref() != Some(&e);
                    if changed {
                        tracing::warn!(error = %e, "cannot read the nftables table; counters are stale");
                    }
                    s.last_error = Some(e.clone());
                    changed
                });
                return;
            }
            Ok(None) => Some("table inet anyvip is missing".to_string()),
            Ok(Some((counters, listing))) => {
                self.status.send_modify(|s| {
                    s.counters = Some(counters);
                    s.checked = Some(SystemTime::now());
                    s.last_error = None;
                });
                match &self.expected {
                    // The first reading after an install is the reference.
                    None => {
                        self.expected = Some(listing);
                        None
                    }
                    Some(e) if *e == listing => None,
                    Some(_) => Some("table inet anyvip was changed".to_string()),
                }
            }
        };
        let Some(drift) = drift else {
            self.drift_logged = false;
            self.status.send_if_modified(|s| {
                let changed = !s.in_sync;
                s.in_sync = true;
                changed
            });
            return;
        };
        if !self.drift_logged {
            tracing::warn!(%drift, "nftables drift: installing table inet anyvip again");
        }
        let repaired = install(&self.nft, &self.ruleset).await;
        let counters = match repaired {
            Ok(()) => self.reference().await,
            Err(_) => None,
        };
        self.status.send_modify(|s| {
            s.last_drift = Some((SystemTime::now(), drift.clone()));
            match &repaired {
                Ok(()) => {
                    // The repaired table counts from zero: no stale value
                    // may outlive the repair in status.
                    s.counters = counters;
                    s.checked = Some(SystemTime::now());
                    s.nft_repairs += 1;
                    s.in_sync = true;
                    s.last_error = None;
                }
                Err(e) => {
                    s.in_sync = false;
                    s.last_error = Some(e.clone());
                }
            }
        });
        match repaired {
            Ok(()) => self.drift_logged = false,
            Err(e) => {
                if !self.drift_logged {
                    tracing::error!(error = %e, "cannot repair the nftables table; retrying every interval");
                }
                self.drift_logged = true;
            }
        }
    }

    /// Right after an install: what the table must keep looking like (and
    /// its counters then).
    async fn reference(&mut self) -> Option<Counters> {
        let nft = self.nft.clone();
        match tokio::task::spawn_blocking(move || nft.observe()).await {
            Ok(Ok(Some((counters, listing)))) => {
                self.expected = Some(listing);
                Some(counters)
            }
            _ => {
                self.expected = None;
                None
            }
        }
    }

    /// Clean stop: keep the guard (unless the operator opted out), so the
    /// VIP cannot loop while anyvip is not running.
    async fn stop(&self) {
        let (nft, ruleset, keep) = (self.nft.clone(), self.ruleset.clone(), self.keep_guard);
        match tokio::task::spawn_blocking(move || nft.stop(&ruleset, keep)).await {
            Ok(Ok(())) if keep => {
                tracing::info!("loop guard kept installed while anyvip is stopped")
            }
            Ok(Ok(())) => tracing::warn!("nftables table removed (keep_guard_on_stop = false)"),
            Ok(Err(e)) => tracing::error!(error = %e, "nftables at stop"),
            Err(e) => tracing::error!(error = %e, "nftables at stop"),
        }
    }
}

fn join(prefixes: &[IpNet]) -> String {
    prefixes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Log what a reconcile did; returns the addresses that had been present
/// and were added again (drift someone else caused).
fn log_reconciled(
    done: &Reconciled,
    before: &BTreeSet<IpNet>,
    foreign: &mut BTreeSet<IpNet>,
) -> Vec<IpNet> {
    let mut repaired = Vec::new();
    for p in &done.added {
        if before.contains(p) {
            tracing::warn!(prefix = %p, "VIP address was missing from the node (removed by someone else?): added it again");
            repaired.push(*p);
        } else {
            tracing::info!(prefix = %p, "VIP address added");
        }
    }
    for p in &done.removed {
        tracing::info!(prefix = %p, "VIP address removed");
    }
    foreign.retain(|p| done.foreign.contains(p));
    for p in done.foreign.iter().filter(|p| foreign.insert(**p)) {
        tracing::warn!(
            prefix = %p,
            "VIP address already present and not anyvip's: using it, and never removing it"
        );
    }
    for s in &done.sysctls {
        tracing::info!(sysctl = %s, "sysctl set so the node never answers ARP for a VIP");
    }
    repaired
}

fn ruleset(cfg: &config::Dataplane, vips: &[Vip]) -> Result<Ruleset, String> {
    let rules = vips
        .iter()
        .map(|v| VipRule {
            prefix: v.prefix,
            steer: v.steer,
        })
        .collect();
    Ruleset::new(rules, cfg.guard.mode).map_err(|e| e.to_string())
}

async fn install(nft: &Nft, ruleset: &Ruleset) -> Result<(), String> {
    let installed = {
        let (nft, ruleset) = (nft.clone(), ruleset.clone());
        tokio::task::spawn_blocking(move || nft.reconcile(&ruleset))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("nftables: {e}"))?
    };
    for s in &installed.sysctls {
        tracing::info!(sysctl = %s, "sysctl set for VIP steering");
    }
    tracing::info!(
        replaced = installed.replaced,
        "nftables table inet anyvip installed"
    );
    Ok(())
}
