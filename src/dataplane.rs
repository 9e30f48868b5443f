//! The node side of a VIP's lifecycle (design section 6): its address on
//! the interface and the nftables table, in the order the invariants need.
//!
//! - start: install the table (guard + steering) and remove VIP addresses
//!   an earlier run left (nothing is up yet: fail closed);
//! - then a task of its own makes the interface carry exactly the addresses
//!   the lifecycle says belong there (level-triggered: on every change and
//!   every resync interval, so an address removed by hand comes back) and
//!   reports which are present; the lifecycle announces a VIP only once its
//!   address is reported;
//! - the nftables counters are read by another task, on its own schedule
//!   and with a timeout: a hung `nft` shows as stale counters, never as a
//!   stalled main loop;
//! - stop: remove our addresses; keep the guard unless told otherwise.
//!
//! Nothing here is awaited by the main loop except start and stop.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot, watch, Notify};

use crate::address::{Addresses, Reconciled};
use crate::config::{self, Vip};
use crate::steer::{Counters, Nft, Ruleset, VipRule};

/// How often the addresses are compared with what they should be even
/// without a change: the bound on repairing an address someone removed.
const RESYNC: Duration = Duration::from_secs(2);
/// How often the nftables counters are read without being asked.
const COUNTERS_EVERY: Duration = Duration::from_secs(5);
/// The soonest a status request makes the counters be read again.
const COUNTERS_MIN_GAP: Duration = Duration::from_millis(200);

/// The nftables counters as last read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CountersReading {
    pub counters: Counters,
    pub at: SystemTime,
}

/// The data plane before its task runs: the table is installed and
/// leftovers are gone.
pub struct Dataplane {
    addresses: Addresses,
    nft: Nft,
    ruleset: Ruleset,
    keep_guard: bool,
}

enum Command {
    Ruleset { ruleset: Ruleset, keep_guard: bool },
    Stop(oneshot::Sender<()>),
}

/// The running data plane, as the daemon holds it.
pub struct DataplaneHandle {
    commands: mpsc::UnboundedSender<Command>,
    /// The addresses present on the node (of those wanted).
    pub present: watch::Receiver<BTreeSet<IpNet>>,
    counters: watch::Receiver<Option<CountersReading>>,
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
        }))
    }

    /// Start the address and counter tasks; `wanted` is the lifecycle's
    /// set of addresses that belong on the node.
    pub fn spawn(self, wanted: watch::Receiver<BTreeSet<IpNet>>) -> DataplaneHandle {
        let (commands, rx) = mpsc::unbounded_channel();
        let (present_tx, present) = watch::channel(BTreeSet::new());
        let (counters_tx, counters) = watch::channel(None);
        let refresh = Arc::new(Notify::new());
        let interface = self.addresses.interface().to_string();
        tokio::spawn(read_counters(
            self.nft.clone(),
            counters_tx,
            refresh.clone(),
        ));
        tokio::spawn(self.run(wanted, rx, present_tx));
        DataplaneHandle {
            commands,
            present,
            counters,
            refresh,
            interface,
        }
    }

    async fn run(
        mut self,
        mut wanted: watch::Receiver<BTreeSet<IpNet>>,
        mut commands: mpsc::UnboundedReceiver<Command>,
        present: watch::Sender<BTreeSet<IpNet>>,
    ) {
        let mut resync = tokio::time::interval(RESYNC);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_error: Option<String> = None;
        // Foreign addresses are logged once, not at every resync.
        let mut foreign: BTreeSet<IpNet> = BTreeSet::new();
        loop {
            tokio::select! {
                // Commands first: a stop must not wait for a resync.
                biased;
                command = commands.recv() => match command {
                    Some(Command::Ruleset { ruleset, keep_guard }) => {
                        if let Err(e) = install(&self.nft, &ruleset).await {
                            tracing::error!(error = %e, "cannot install the new nftables table; the old one stays");
                        } else {
                            self.ruleset = ruleset;
                        }
                        self.keep_guard = keep_guard;
                        continue;
                    }
                    Some(Command::Stop(done)) => {
                        self.stop().await;
                        let _ = done.send(());
                        return;
                    }
                    // The daemon is gone without a clean stop.
                    None => return,
                },
                changed = wanted.changed() => if changed.is_err() { return },
                _ = resync.tick() => {}
            }
            let want: Vec<IpNet> = wanted.borrow_and_update().iter().copied().collect();
            match self.addresses.reconcile(&want).await {
                Ok(done) => {
                    last_error = None;
                    log_reconciled(&done, &present.borrow(), &mut foreign);
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

    /// Clean stop: our addresses go; the guard stays (unless the operator
    /// opted out), so the VIP cannot loop while anyvip is not running.
    async fn stop(&mut self) {
        match self.addresses.reconcile(&[]).await {
            Ok(r) => {
                for p in r.removed {
                    tracing::info!(prefix = %p, "VIP address removed");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot remove VIP addresses"),
        }
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

impl DataplaneHandle {
    /// A reloaded configuration. The ruleset is validated here (the error
    /// fails the reload); installing it is the task's (an `nft` failure is
    /// logged and the old table stays). The interface cannot change
    /// without a restart.
    pub fn reconfigure(&self, cfg: &config::Dataplane, vips: &[Vip]) -> Result<(), String> {
        if cfg.interface != self.interface {
            return Err(format!(
                "dataplane.interface changed from {} to {}: restart anyvip to apply it",
                self.interface, cfg.interface
            ));
        }
        let ruleset = ruleset(cfg, vips)?;
        self.commands
            .send(Command::Ruleset {
                ruleset,
                keep_guard: cfg.guard.keep_on_stop,
            })
            .map_err(|_| "the data plane task is gone".to_string())
    }

    /// The counters as last read (and ask for a fresh reading, which a
    /// later call will show).
    pub fn counters(&self) -> Option<CountersReading> {
        self.refresh.notify_one();
        *self.counters.borrow()
    }

    /// Remove our addresses, leave the guard (or not); wait for it.
    pub async fn stop(self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Stop(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

fn log_reconciled(done: &Reconciled, before: &BTreeSet<IpNet>, foreign: &mut BTreeSet<IpNet>) {
    for p in &done.added {
        if before.contains(p) {
            tracing::warn!(prefix = %p, "VIP address was missing from the node (removed by someone else?): added it again");
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
}

/// Read the counters every [`COUNTERS_EVERY`], or sooner when asked, one
/// reading at a time, each bounded by `nft`'s own timeout.
async fn read_counters(
    nft: Nft,
    out: watch::Sender<Option<CountersReading>>,
    refresh: Arc<Notify>,
) {
    loop {
        let n = nft.clone();
        match tokio::task::spawn_blocking(move || n.counters()).await {
            Ok(Ok(Some(counters))) => {
                out.send_replace(Some(CountersReading {
                    counters,
                    at: SystemTime::now(),
                }));
            }
            Ok(Ok(None)) => {
                out.send_replace(None);
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "cannot read the nftables counters"),
            Err(_) => return,
        }
        if out.is_closed() {
            return;
        }
        tokio::time::sleep(COUNTERS_MIN_GAP).await;
        let _ = tokio::time::timeout(COUNTERS_EVERY, refresh.notified()).await;
    }
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
