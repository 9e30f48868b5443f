//! The lifecycle alone: no checks running, no sockets, no clock but the
//! instants passed in.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::*;
use crate::config::{Api, Config, Dataplane, Drain, Speaker, Vip};

const V4: &str = "192.0.2.100/32";
const V6: &str = "2001:db8::100/128";

fn p(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn vip(prefix: &str, checks: &[&str]) -> Vip {
    Vip {
        prefix: p(prefix),
        always: checks.is_empty(),
        checks: checks.iter().map(|s| s.to_string()).collect(),
        med: None,
        local_pref: 100,
        prepend: 0,
        communities: vec![],
        large_communities: vec![],
        extended_communities: vec![],
        steer: None,
    }
}

fn config(vips: Vec<Vip>, manage: bool) -> Config {
    Config {
        speaker: Speaker {
            asn: anyvip_proto::Asn(65001),
            router_id: "192.0.2.1".parse().unwrap(),
            listen: vec![],
        },
        peers: vec![],
        vips,
        checks: vec![],
        dataplane: Dataplane {
            manage,
            interface: "lo".to_string(),
            guard: crate::steer::GuardConfig::default(),
            reconcile_interval: crate::config::DEFAULT_RECONCILE_INTERVAL,
        },
        drain: Drain {
            delay: Duration::from_secs(5),
            prepend: 2,
            med: None,
        },
        api: Api::default(),
    }
}

fn level(prefix: &str, up: bool) -> VipLevel {
    VipLevel {
        prefix: p(prefix),
        up,
        maintenance: false,
        reason: if up {
            "all checks up (c1)"
        } else {
            "check c1 is down: exit status 1"
        }
        .to_string(),
    }
}

struct Watch {
    routes: watch::Receiver<std::sync::Arc<crate::vip::Published>>,
    addresses: watch::Receiver<BTreeSet<IpNet>>,
}

impl Watch {
    fn new(l: &Lifecycle) -> Watch {
        Watch {
            routes: l.routes(),
            addresses: l.addresses(),
        }
    }
    fn announced(&self, prefix: &str) -> bool {
        self.routes.borrow().routes.contains_key(&p(prefix))
    }
    fn version(&self) -> u64 {
        self.routes.borrow().version
    }
    fn address(&self, prefix: &str) -> bool {
        self.addresses.borrow().contains(&p(prefix))
    }
}

fn present(prefixes: &[&str]) -> BTreeSet<IpNet> {
    prefixes.iter().map(|s| p(s)).collect()
}

#[test]
fn nothing_is_announced_before_the_checks_pass_and_the_address_is_there() {
    let now = Instant::now();
    let mut l = Lifecycle::new(&config(vec![vip(V4, &["c1"])], true));
    let w = Watch::new(&l);
    assert_eq!(l.health(&[level(V4, false)], now), None);
    assert!(!w.announced(V4) && !w.address(V4), "unknown is down");

    l.health(&[level(V4, true)], now);
    assert!(w.address(V4), "the address is asked for first");
    assert!(!w.announced(V4), "no address yet, no announcement");
    assert!(l.status()[0].reason.contains("waiting for the VIP address"));

    l.present(present(&[V4]), now);
    assert!(w.announced(V4));
    assert_eq!(l.status()[0].mode, Mode::Announced);
}

#[test]
fn a_withdrawal_goes_out_at_once_and_the_address_waits_for_every_peer() {
    let now = Instant::now();
    let mut l = Lifecycle::new(&config(vec![vip(V4, &["c1"]), vip(V6, &["c1"])], true));
    let w = Watch::new(&l);
    l.health(&[level(V4, true), level(V6, true)], now);
    l.present(present(&[V4, V6]), now);
    assert!(w.announced(V4) && w.announced(V6));
    let before = w.version();

    let version = l
        .health(&[level(V4, false), level(V6, false)], now)
        .expect("a withdrawal to wait for");
    assert_eq!(version, before + 1, "both withdrawals in one version");
    assert!(!w.announced(V4) && !w.announced(V6));
    assert!(
        w.address(V4) && w.address(V6),
        "addresses stay until every peer has sent the withdrawal"
    );
    assert!(l.removals_pending());

    assert_eq!(l.withdrawn_everywhere(version, now), None);
    assert!(!w.address(V4) && !w.address(V6));
    assert!(!l.removals_pending());
}

#[test]
fn a_vip_that_comes_back_before_its_withdrawal_is_confirmed_keeps_its_address() {
    let now = Instant::now();
    let mut l = Lifecycle::new(&config(vec![vip(V4, &["c1"])], true));
    let w = Watch::new(&l);
    l.health(&[level(V4, true)], now);
    l.present(present(&[V4]), now);
    let version = l.health(&[level(V4, false)], now).unwrap();
    l.health(&[level(V4, true)], now);
    assert!(w.announced(V4), "the address never left: announce at once");
    l.withdrawn_everywhere(version, now);
    assert!(w.address(V4), "still wanted: it is announced");
}

#[test]
fn a_reload_to_a_check_that_is_down_withdraws_the_vip() {
    // The reload bug of issue 10: the new check never passes, and the VIP
    // must not stay announced on its old health.
    let now = Instant::now();
    let mut l = Lifecycle::new(&config(vec![vip(V4, &["c1"])], false));
    let w = Watch::new(&l);
    l.health(&[level(V4, true)], now);
    assert!(w.announced(V4));

    let new = config(vec![vip(V4, &["c2"])], false);
    let version = l.reconfigure(&new, &[level(V4, false)], now);
    assert!(version.is_some());
    assert!(!w.announced(V4), "withdrawn on the reload itself");
    let s = &l.status()[0];
    assert_eq!((s.mode, s.healthy), (Mode::Withdrawn, false));
}

#[test]
fn a_reload_that_keeps_the_checks_keeps_the_vip_announced() {
    let now = Instant::now();
    let mut l = Lifecycle::new(&config(vec![vip(V4, &["c1"])], false));
    let w = Watch::new(&l);
    l.health(&[level(V4, true)], now);
    let transitions = l.status()[0].transitions;
    let mut new = config(vec![vip(V4, &["c1"])], false);
    new.vips[0].med = Some(50);
    assert_eq!(l.reconfigure(&new, &[level(V4, true)], now), None);
    assert!(w.announced(V4));
    assert_eq!(w.routes.borrow().routes[&p(V4)].med, Some(50));
    assert_eq!(l.status()[0].transitions, transitions, "no flap");
}

#[test]
fn a_vip_removed_by_a_reload_is_withdrawn_and_its_address_waits() {
    let now = Instant::now();
    let mut l = Lifecycle::new(&config(vec![vip(V4, &[]), vip(V6, &[])], true));
    let w = Watch::new(&l);
    l.health(&[level(V4, true), level(V6, true)], now);
    l.present(present(&[V4, V6]), now);
    let new = config(vec![vip(V6, &[])], true);
    let version = l.reconfigure(&new, &[level(V6, true)], now).unwrap();
    assert!(!w.announced(V4) && w.announced(V6));
    assert!(w.address(V4));
    l.withdrawn_everywhere(version, now);
    assert!(!w.address(V4) && w.address(V6));
}

#[test]
fn a_drain_makes_the_path_worse_then_withdraws_after_the_delay_and_resume_undoes_it() {
    let now = Instant::now();
    let mut l = Lifecycle::new(&config(vec![vip(V4, &[])], false));
    let w = Watch::new(&l);
    l.health(&[level(V4, true)], now);
    let (affected, step) = l.drain(None, true, now).unwrap();
    assert_eq!((affected, step), (vec![p(V4)], None));
    assert!(w.routes.borrow().routes[&p(V4)]
        .communities
        .contains(&anyvip_proto::attribute::Community::GRACEFUL_SHUTDOWN));
    assert_eq!(l.next_deadline(), Some(now + Duration::from_secs(5)));
    assert_eq!(l.tick(now + Duration::from_secs(4)), None);
    assert!(l.tick(now + Duration::from_secs(5)).is_some());
    assert!(!w.announced(V4));
    assert_eq!(l.status()[0].reason, "drained by request");

    l.drain(Some(p(V4)), false, now).unwrap();
    assert!(w.announced(V4));
    assert!(l.drain(Some(p("198.51.100.1/32")), true, now).is_err());
}

#[test]
fn an_unhealthy_vip_is_withdrawn_at_once_even_while_draining() {
    let now = Instant::now();
    let mut l = Lifecycle::new(&config(vec![vip(V4, &["c1"])], false));
    let w = Watch::new(&l);
    l.health(&[level(V4, true)], now);
    l.drain(None, true, now).unwrap();
    assert!(l.draining());
    assert!(l.health(&[level(V4, false)], now).is_some());
    assert!(!w.announced(V4) && !l.draining());
}
