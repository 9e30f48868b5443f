//! The set of VIPs the daemon wants announced, and the one interface that
//! changes it: the daemon calls [`Announcer::set`] once for `always = true`
//! VIPs and on every change of the health checks' VIP combiner
//! (`crate::health::VipHealth`); every peer task watches the published set.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ipnet::IpNet;
use tokio::sync::watch;

use crate::bgp::announce::{Desired, Route};

/// One version of the desired set. Peers report the last version they
/// have sent, so the daemon can wait for a withdrawal to be on the wire
/// before it takes the address away (design invariant 2).
#[derive(Debug, Default)]
pub struct Published {
    pub version: u64,
    pub routes: Desired,
}
use crate::config::Vip;

pub struct Announcer {
    routes: BTreeMap<IpNet, Route>,
    up: BTreeSet<IpNet>,
    tx: watch::Sender<Arc<Published>>,
    version: u64,
}

impl Announcer {
    /// Nothing is announced until [`Announcer::set`] says so (fail closed).
    pub fn new(vips: &[Vip]) -> Announcer {
        let routes = vips.iter().map(|v| (v.prefix, route_of(v))).collect();
        let (tx, _) = watch::channel(Arc::new(Published::default()));
        Announcer {
            routes,
            up: BTreeSet::new(),
            tx,
            version: 0,
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }

    /// Announce or withdraw one VIP. Unknown prefixes are ignored (and
    /// reported as `false`).
    pub fn set(&mut self, prefix: IpNet, announce: bool) -> bool {
        if !self.routes.contains_key(&prefix) {
            return false;
        }
        let changed = if announce {
            self.up.insert(prefix)
        } else {
            self.up.remove(&prefix)
        };
        if changed {
            self.publish();
        }
        true
    }

    pub fn is_announced(&self, prefix: &IpNet) -> bool {
        self.up.contains(prefix)
    }

    /// The version of the last published set.
    pub fn version(&self) -> u64 {
        self.version
    }

    fn publish(&mut self) {
        let desired: Desired = self
            .up
            .iter()
            .filter_map(|p| self.routes.get(p).map(|r| (*p, r.clone())))
            .collect();
        self.version += 1;
        self.tx.send_replace(Arc::new(Published {
            version: self.version,
            routes: desired,
        }));
    }
}

fn route_of(v: &Vip) -> Route {
    Route {
        med: v.med,
        local_pref: v.local_pref,
        prepend: v.prepend,
        communities: v.communities.clone(),
        large_communities: v.large_communities.clone(),
        extended_communities: v.extended_communities.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip(p: &str) -> Vip {
        Vip {
            prefix: p.parse().unwrap(),
            always: true,
            checks: vec![],
            med: None,
            local_pref: 100,
            prepend: 0,
            communities: vec![],
            large_communities: vec![],
            extended_communities: vec![],
            steer: None,
        }
    }

    #[test]
    fn nothing_is_announced_until_set_says_so() {
        let a = Announcer::new(&[vip("192.0.2.100/32")]);
        assert!(a.subscribe().borrow().routes.is_empty());
    }

    #[test]
    fn set_publishes_only_on_change_and_ignores_unknown_prefixes() {
        let mut a = Announcer::new(&[vip("192.0.2.100/32"), vip("2001:db8::100/128")]);
        let mut rx = a.subscribe();
        rx.mark_unchanged();
        assert!(a.set("192.0.2.100/32".parse().unwrap(), true));
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().routes.len(), 1);
        a.set("192.0.2.100/32".parse().unwrap(), true);
        assert!(!rx.has_changed().unwrap(), "no change, no publish");
        assert!(!a.set("198.51.100.1/32".parse().unwrap(), true));
        a.set("192.0.2.100/32".parse().unwrap(), false);
        assert!(rx.borrow_and_update().routes.is_empty());
    }
}
