//! `[dataplane]`: VIP addresses on an interface and the nftables table.

use super::schema;

/// `[dataplane]`: what anyvip does on the node itself (design section 6).
#[derive(Debug, Clone, PartialEq)]
pub struct Dataplane {
    /// Put VIP addresses on `interface` and own the `inet anyvip` nftables
    /// table. Off only where something else delivers VIP traffic locally.
    pub manage: bool,
    pub interface: String,
    pub guard: crate::steer::GuardConfig,
}

impl super::Validator<'_> {
    pub(super) fn dataplane(&mut self, d: Option<schema::Dataplane>) -> Dataplane {
        let d = d.unwrap_or(schema::Dataplane {
            manage: None,
            interface: None,
            guard: None,
            keep_guard_on_stop: None,
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
        Dataplane {
            manage: d.manage.unwrap_or(true),
            interface,
            guard: crate::steer::GuardConfig {
                mode,
                keep_on_stop: d.keep_guard_on_stop.unwrap_or(true),
            },
        }
    }
}
