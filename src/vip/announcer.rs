//! The set of routes the daemon wants announced, and the one interface that
//! changes it: the VIP lifecycle ([`super::Lifecycle`]) calls
//! [`Announcer::set_all`]; every peer task watches the published set.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyvip_proto::attribute::Community;
use ipnet::IpNet;
use tokio::sync::watch;

use crate::bgp::announce::{Desired, Route};
use crate::config::{Drain, Vip};

use super::Mode;

/// One version of the desired set. Peers report the last version they
/// have sent, so the daemon can wait for a withdrawal to be on the wire
/// before it takes the address away (design invariant 2).
#[derive(Debug, Default)]
pub struct Published {
    pub version: u64,
    pub routes: Desired,
}

pub struct Announcer {
    routes: BTreeMap<IpNet, Route>,
    modes: BTreeMap<IpNet, Mode>,
    drain: Drain,
    tx: watch::Sender<Arc<Published>>,
    version: u64,
}

impl Announcer {
    /// Nothing is announced until [`Announcer::set`] says so (fail closed).
    pub fn new(vips: &[Vip], drain: &Drain) -> Announcer {
        let (tx, _) = watch::channel(Arc::new(Published::default()));
        Announcer {
            routes: vips.iter().map(|v| (v.prefix, route_of(v))).collect(),
            modes: BTreeMap::new(),
            drain: drain.clone(),
            tx,
            version: 0,
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }

    /// Change how one VIP is announced. Unknown prefixes are ignored (and
    /// reported as `false`).
    pub fn set(&mut self, prefix: IpNet, mode: Mode) -> bool {
        let known = self.routes.contains_key(&prefix);
        self.set_all(&[(prefix, mode)]);
        known
    }

    /// Change several VIPs in one published version, so that a batch of
    /// withdrawals reaches every peer together (design invariant 2).
    /// Unknown prefixes are ignored; nothing is published if nothing
    /// changed.
    pub fn set_all(&mut self, changes: &[(IpNet, Mode)]) {
        let mut any = false;
        for (prefix, mode) in changes {
            if self.routes.contains_key(prefix) && self.mode(prefix) != *mode {
                self.modes.insert(*prefix, *mode);
                any = true;
            }
        }
        if any {
            self.publish();
        }
    }

    pub fn mode(&self, prefix: &IpNet) -> Mode {
        self.modes.get(prefix).copied().unwrap_or_default()
    }

    /// A reloaded configuration: new attributes go out to the peers at
    /// once; VIPs no longer configured are withdrawn.
    pub fn reconfigure(&mut self, vips: &[Vip], drain: &Drain) {
        self.routes = vips.iter().map(|v| (v.prefix, route_of(v))).collect();
        self.modes.retain(|p, _| self.routes.contains_key(p));
        self.drain = drain.clone();
        self.publish();
    }

    /// The version of the last published set.
    pub fn version(&self) -> u64 {
        self.version
    }

    fn publish(&mut self) {
        let routes: Desired = self
            .modes
            .iter()
            .filter_map(|(p, mode)| {
                let route = self.routes.get(p)?;
                match mode {
                    Mode::Withdrawn => None,
                    Mode::Announced => Some((*p, route.clone())),
                    Mode::Draining => Some((*p, self.draining(route))),
                }
            })
            .collect();
        self.version += 1;
        self.tx.send_replace(Arc::new(Published {
            version: self.version,
            routes,
        }));
    }

    /// RFC 8326 §4: the route gets GRACEFUL_SHUTDOWN; for routers that do
    /// not act on it, the configured drain prepends and MED.
    fn draining(&self, route: &Route) -> Route {
        let mut r = route.clone();
        if !r.communities.contains(&Community::GRACEFUL_SHUTDOWN) {
            r.communities.push(Community::GRACEFUL_SHUTDOWN);
        }
        r.prepend = r.prepend.saturating_add(self.drain.prepend);
        if let Some(med) = self.drain.med {
            r.med = Some(med);
        }
        r
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
    use std::time::Duration;

    fn vip(p: &str) -> Vip {
        Vip {
            prefix: p.parse().unwrap(),
            always: true,
            checks: vec![],
            med: Some(10),
            local_pref: 100,
            prepend: 0,
            communities: vec![Community::new(65000, 100)],
            large_communities: vec![],
            extended_communities: vec![],
            steer: None,
        }
    }

    fn drain() -> Drain {
        Drain {
            delay: Duration::from_secs(5),
            prepend: 3,
            med: Some(1000),
        }
    }

    #[test]
    fn nothing_is_announced_until_set_says_so() {
        let a = Announcer::new(&[vip("192.0.2.100/32")], &drain());
        assert!(a.subscribe().borrow().routes.is_empty());
    }

    #[test]
    fn set_publishes_only_on_change_and_ignores_unknown_prefixes() {
        let mut a = Announcer::new(&[vip("192.0.2.100/32"), vip("2001:db8::100/128")], &drain());
        let mut rx = a.subscribe();
        rx.mark_unchanged();
        let p: IpNet = "192.0.2.100/32".parse().unwrap();
        assert!(a.set(p, Mode::Announced));
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().routes.len(), 1);
        a.set(p, Mode::Announced);
        assert!(!rx.has_changed().unwrap(), "no change, no publish");
        assert!(!a.set("198.51.100.1/32".parse().unwrap(), Mode::Announced));
        a.set(p, Mode::Withdrawn);
        assert!(rx.borrow_and_update().routes.is_empty());
    }

    #[test]
    fn draining_adds_graceful_shutdown_prepends_and_med() {
        let mut a = Announcer::new(&[vip("192.0.2.100/32")], &drain());
        let rx = a.subscribe();
        let p: IpNet = "192.0.2.100/32".parse().unwrap();
        a.set(p, Mode::Draining);
        let r = rx.borrow().routes[&p].clone();
        assert!(r.communities.contains(&Community::GRACEFUL_SHUTDOWN));
        assert!(r.communities.contains(&Community::new(65000, 100)));
        assert_eq!(r.prepend, 3);
        assert_eq!(r.med, Some(1000));
        a.set(p, Mode::Announced);
        assert_eq!(
            rx.borrow().routes[&p].communities,
            vec![Community::new(65000, 100)]
        );
    }

    #[test]
    fn reconfigure_withdraws_vips_that_are_gone() {
        let mut a = Announcer::new(&[vip("192.0.2.100/32"), vip("192.0.2.101/32")], &drain());
        let rx = a.subscribe();
        a.set("192.0.2.100/32".parse().unwrap(), Mode::Announced);
        a.set("192.0.2.101/32".parse().unwrap(), Mode::Announced);
        a.reconfigure(&[vip("192.0.2.101/32")], &drain());
        let routes = &rx.borrow().routes;
        assert_eq!(
            routes.keys().map(|p| p.to_string()).collect::<Vec<_>>(),
            vec!["192.0.2.101/32"]
        );
    }
}
