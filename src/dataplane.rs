//! The node side of a VIP's lifecycle (design section 6): its address on
//! the interface and the nftables table, in the order the invariants need.
//!
//! - start: install the table (guard + steering) and remove VIP addresses
//!   an earlier run left (nothing is up yet: fail closed);
//! - up: add the address, then the caller announces;
//! - down: the caller withdraws first, then the address goes;
//! - stop: remove our addresses; keep the guard unless told otherwise.

use ipnet::IpNet;

use crate::address::{Addresses, Ensured, Removed};
use crate::config::{self, Vip};
use crate::steer::{Counters, Nft, Ruleset, VipRule};

pub struct Dataplane {
    addresses: Addresses,
    nft: Nft,
    ruleset: Ruleset,
    keep_guard: bool,
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
        let rules = vips
            .iter()
            .map(|v| VipRule {
                prefix: v.prefix,
                steer: v.steer,
            })
            .collect();
        let ruleset = Ruleset::new(rules, cfg.guard.mode).map_err(|e| e.to_string())?;
        let nft = Nft::new();
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

    /// A reloaded configuration: the table is replaced (atomically) with
    /// the new VIPs' rules. The interface cannot change without a restart.
    pub async fn reconfigure(
        &mut self,
        cfg: &config::Dataplane,
        vips: &[Vip],
    ) -> Result<(), String> {
        if cfg.interface != self.addresses.interface() {
            return Err(format!(
                "dataplane.interface changed from {} to {}: restart anyvip to apply it",
                self.addresses.interface(),
                cfg.interface
            ));
        }
        let ruleset = ruleset(cfg, vips)?;
        install(&self.nft, &ruleset).await?;
        self.ruleset = ruleset;
        self.keep_guard = cfg.guard.keep_on_stop;
        Ok(())
    }

    /// The table's named counters, for status and metrics.
    pub async fn counters(&self) -> Option<Counters> {
        let nft = self.nft.clone();
        tokio::task::spawn_blocking(move || nft.counters())
            .await
            .ok()?
            .ok()
            .flatten()
    }

    /// Put the VIP address on the node (before it is announced).
    pub async fn up(&self, prefix: IpNet) -> Result<(), String> {
        match self
            .addresses
            .ensure(prefix)
            .await
            .map_err(|e| e.to_string())?
        {
            Ensured::Added { marked: false } => tracing::warn!(
                %prefix,
                "VIP address added without anyvip's mark (kernel < 6.3?): a crash may leave it behind"
            ),
            Ensured::Foreign => tracing::warn!(
                %prefix,
                "VIP address already present and not anyvip's: using it, and never removing it"
            ),
            Ensured::Added { .. } | Ensured::Present => {}
        }
        Ok(())
    }

    /// Take the VIP address off the node (after it was withdrawn).
    pub async fn down(&self, prefix: IpNet) -> Result<(), String> {
        match self
            .addresses
            .remove(prefix)
            .await
            .map_err(|e| e.to_string())?
        {
            Removed::Foreign => {
                tracing::warn!(%prefix, "VIP address is not anyvip's: left in place")
            }
            Removed::Removed | Removed::Absent => {}
        }
        Ok(())
    }

    /// Clean stop: our addresses go; the guard stays (unless the operator
    /// opted out), so the VIP cannot loop while anyvip is not running.
    pub async fn stop(self) {
        match self.addresses.reconcile(&[]).await {
            Ok(r) => {
                for p in r.removed {
                    tracing::info!(prefix = %p, "VIP address removed");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot remove VIP addresses"),
        }
        let (nft, ruleset, keep) = (self.nft, self.ruleset, self.keep_guard);
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
