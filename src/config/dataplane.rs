//! `[dataplane]`: VIP addresses on an interface and the nftables table.

use std::time::Duration;

use super::{schema, values};

/// How often the node's data plane is compared with what it should be, by
/// default: the bound on repairing drift (design invariant 8).
pub const DEFAULT_RECONCILE_INTERVAL: Duration = Duration::from_secs(2);
const RECONCILE_MIN: Duration = Duration::from_millis(200);
const RECONCILE_MAX: Duration = Duration::from_secs(60);

/// `[dataplane]`: what anyvip does on the node itself (design section 6).
#[derive(Debug, Clone, PartialEq)]
pub struct Dataplane {
    /// Put VIP addresses on `interface` and own the `inet anyvip` nftables
    /// table. Off only where something else delivers VIP traffic locally.
    pub manage: bool,
    pub interface: String,
    pub guard: crate::steer::GuardConfig,
    /// Compare the VIP addresses and the nftables table with what they
    /// should be this often (and at every change), and repair drift.
    pub reconcile_interval: Duration,
}

impl super::Validator<'_> {
    pub(super) fn dataplane(&mut self, d: Option<schema::Dataplane>) -> Dataplane {
        let d = d.unwrap_or(schema::Dataplane {
            manage: None,
            interface: None,
            guard: None,
            keep_guard_on_stop: None,
            reconcile_interval: None,
        });
        let interface = d
            .interface
            .unwrap_or_else(|| crate::address::DEFAULT_INTERFACE.to_string());
        // Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
        if interface.is_empty() || interface.len() > 15 || interface.contains(['/', ' ']) {
            self.error(
                "dataplane.interface",
                format!("\"{interface}\" is not a Linux interface name (1 to 15 bytes, no '/' or space)"),
            );
        }
        let mode = d
            .guard
            .as_deref()
            .and_then(|g| self.check("dataplane.guard", g.parse::<crate::steer::GuardMode>()))
            .unwrap_or_default();
        let reconcile_interval = d
            .reconcile_interval
            .as_deref()
            .and_then(|s| {
                self.check(
                    "dataplane.reconcile_interval",
                    values::duration(s, RECONCILE_MIN, RECONCILE_MAX),
                )
            })
            .unwrap_or(DEFAULT_RECONCILE_INTERVAL);
        Dataplane {
            manage: d.manage.unwrap_or(true),
            reconcile_interval,
            interface,
            guard: crate::steer::GuardConfig {
                mode,
                keep_on_stop: d.keep_guard_on_stop.unwrap_or(true),
            },
        }
    }
}
