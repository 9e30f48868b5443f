//! Wiring and the main loop: configuration -> health checks -> VIP
//! lifecycle -> announcer -> peer tasks; control requests, signals, drain
//! deadlines and reloads are all handled here, on one event loop.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use ipnet::IpNet;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::bgp::listener::{self, Dispatch};
use crate::bgp::peer::{self, Command, PeerHandle, PeerStatus};
use crate::bgp::socket;
use crate::config::{self, Config, Peer};
use crate::control::{Request, Snapshot, VipStatus};
use crate::dataplane::Dataplane;
use crate::health::{Checks, VipChange, VipHealth};
use crate::notify;
use crate::vip::{Announcer, Mode};

/// How long peers get to send their Cease and close at a stop.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// How long a withdrawal may take to reach every peer's socket before the
/// VIP address is removed anyway (a peer stuck writing must not keep the
/// address on the node forever).
const WITHDRAW_GRACE: Duration = Duration::from_secs(2);

/// Run until SIGTERM or SIGINT (with a drain first). `requests` is the
/// receiving end of the [`crate::control::Control`] the API holds.
pub async fn run(
    path: PathBuf,
    config: Config,
    requests: mpsc::Receiver<Request>,
) -> std::io::Result<()> {
    // The data plane first: the loop guard is in place before any route
    // can attract traffic, and leftovers from a crash are gone.
    let dataplane = Dataplane::start(&config.dataplane, &config.vips)
        .await
        .map_err(std::io::Error::other)?;
    let announcer = Announcer::new(&config.vips, &config.drain);
    let dispatch = Arc::new(RwLock::new(Dispatch::default()));
    let keys: Vec<(IpAddr, Vec<u8>)> = config
        .peers
        .iter()
        .filter_map(|p| p.password.clone().map(|k| (p.address, k)))
        .collect();
    for addr in &config.speaker.listen {
        let listener = socket::listen(*addr, &keys)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        tracing::info!(%addr, "listening for passive peers");
        tokio::spawn(listener::serve(listener, dispatch.clone()));
    }
    let checks = Checks::spawn(&config.checks).map_err(std::io::Error::other)?;
    let vip_health = VipHealth::new(&config.vips, &checks);
    let mut daemon = Daemon {
        path,
        started: SystemTime::now(),
        lifecycle: Lifecycle::new(announcer, dataplane, &config),
        peers: BTreeMap::new(),
        dispatch,
        checks,
        vip_health,
        last_reload: None,
        config,
    };
    let peers: Vec<Peer> = daemon.config.peers.clone();
    for p in peers {
        daemon.start_peer(p);
    }
    daemon.lifecycle.always_up().await;
    let _ = notify::ready(&daemon.summary());
    daemon.main_loop(requests).await
}

struct Daemon {
    path: PathBuf,
    config: Config,
    started: SystemTime,
    lifecycle: Lifecycle,
    peers: BTreeMap<IpAddr, (Peer, PeerHandle)>,
    dispatch: Arc<RwLock<Dispatch>>,
    checks: Checks,
    vip_health: VipHealth,
    last_reload: Option<(SystemTime, Result<(), String>)>,
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

impl Daemon {
    fn start_peer(&mut self, p: Peer) {
        let handle = peer::spawn(
            p.clone(),
            &self.config.speaker,
            self.lifecycle.announcer.subscribe(),
        );
        if let Ok(mut d) = self.dispatch.write() {
            d.insert(p.address, handle.incoming.clone());
        }
        self.lifecycle
            .peers
            .insert(p.address, handle.status.clone());
        self.peers.insert(p.address, (p, handle));
    }

    async fn stop_peer(&mut self, address: IpAddr, message: &str) {
        if let Some((_, handle)) = self.peers.remove(&address) {
            if let Ok(mut d) = self.dispatch.write() {
                d.remove(address);
            }
            self.lifecycle.peers.remove(&address);
            stop(vec![handle], message).await;
        }
    }

    async fn main_loop(&mut self, mut requests: mpsc::Receiver<Request>) -> std::io::Result<()> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        // Fed from this loop and nowhere else: if the loop hangs, systemd
        // sees the watchdog starve and restarts us (design invariant 4).
        let mut watchdog = notify::Watchdog::from_env();
        let why = loop {
            tokio::select! {
                () = watchdog.tick() => watchdog.ping(),
                changes = self.vip_health.changed() => {
                    self.lifecycle.health(changes).await;
                    let _ = notify::status(&self.summary());
                }
                () = sleep_until(self.lifecycle.next_deadline()) => {
                    self.lifecycle.reconcile().await;
                    let _ = notify::status(&self.summary());
                }
                Some(request) = requests.recv() => {
                    self.handle(request).await;
                    let _ = notify::status(&self.summary());
                }
                _ = hup.recv() => {
                    let _ = notify::reloading();
                    let result = self.reload().await;
                    if let Err(e) = &result {
                        tracing::error!(error = %e, "reload failed; the running configuration stays");
                    }
                    let _ = notify::ready(&self.summary());
                }
                _ = term.recv() => break "SIGTERM",
                _ = int.recv() => break "SIGINT",
            }
        };
        let _ = notify::stopping();
        let _ = notify::extend_timeout(self.config.drain.delay + STOP_GRACE + WITHDRAW_GRACE);
        self.shutdown(why, &mut requests, &mut term, &mut int, &mut watchdog)
            .await;
        Ok(())
    }

    async fn handle(&mut self, request: Request) {
        match request {
            Request::Status(reply) => {
                let _ = reply.send(self.snapshot().await);
            }
            Request::Drain { prefix, reply } => {
                let _ = reply.send(self.lifecycle.drain(prefix, true).await);
            }
            Request::Resume { prefix, reply } => {
                let _ = reply.send(self.lifecycle.drain(prefix, false).await);
            }
            Request::Reload(reply) => {
                let _ = reply.send(self.reload().await);
            }
        }
    }

    /// One line for systemd's STATUS=: sessions up and VIPs announced.
    fn summary(&self) -> String {
        let established = self
            .peers
            .values()
            .filter(|(_, h)| h.status.borrow().state == anyvip_fsm::State::Established)
            .count();
        let vips = self.lifecycle.status();
        let announced = vips.iter().filter(|v| v.mode == Mode::Announced).count();
        let draining = vips.iter().filter(|v| v.mode == Mode::Draining).count();
        format!(
            "{established}/{} sessions established; {announced}/{} VIPs announced{}",
            self.peers.len(),
            vips.len(),
            if draining > 0 {
                format!(", {draining} draining")
            } else {
                String::new()
            }
        )
    }

    async fn snapshot(&self) -> Snapshot {
        let counters = match &self.lifecycle.dataplane {
            Some(dp) => dp.counters().await,
            None => None,
        };
        Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            started: self.started,
            config_file: self.path.clone(),
            last_reload: self.last_reload.clone(),
            peers: self
                .peers
                .values()
                .map(|(_, h)| h.status.borrow().clone())
                .collect(),
            vips: self.lifecycle.status(),
            checks: self.checks.snapshot(),
            counters,
        }
    }

    /// Planned stop (design invariant 5): drain every announced VIP, wait
    /// the drain delay (a second signal cuts it short), withdraw, close the
    /// sessions with Cease / Administrative Shutdown, clean up the node.
    async fn shutdown(
        &mut self,
        why: &str,
        requests: &mut mpsc::Receiver<Request>,
        term: &mut tokio::signal::unix::Signal,
        int: &mut tokio::signal::unix::Signal,
        watchdog: &mut notify::Watchdog,
    ) {
        tracing::info!(signal = why, delay = ?self.config.drain.delay, "stopping: draining VIPs");
        let _ = self.lifecycle.drain(None, true).await;
        while self.lifecycle.draining() {
            tokio::select! {
                () = watchdog.tick() => watchdog.ping(),
                changes = self.vip_health.changed() => self.lifecycle.health(changes).await,
                () = sleep_until(self.lifecycle.next_deadline()) => self.lifecycle.reconcile().await,
                Some(request) = requests.recv() => match request {
                    Request::Status(reply) => { let _ = reply.send(self.snapshot().await); }
                    Request::Drain { reply, .. } | Request::Resume { reply, .. } => {
                        let _ = reply.send(Err(crate::control::GONE.to_string()));
                    }
                    Request::Reload(reply) => { let _ = reply.send(Err(crate::control::GONE.to_string())); }
                },
                _ = term.recv() => { tracing::warn!("second signal: withdrawing now"); self.lifecycle.withdraw_all().await; }
                _ = int.recv() => { tracing::warn!("second signal: withdrawing now"); self.lifecycle.withdraw_all().await; }
            }
        }
        tracing::info!("closing sessions");
        let handles: Vec<PeerHandle> = std::mem::take(&mut self.peers)
            .into_values()
            .map(|(_, h)| h)
            .collect();
        stop(handles, "anyvip is stopping").await;
        if let Some(dp) = self.lifecycle.dataplane.take() {
            dp.stop().await;
        }
    }

    /// Re-read the file and apply what changed. Sessions whose settings did
    /// not change are not touched.
    async fn reload(&mut self) -> Result<(), String> {
        tracing::info!(file = %self.path.display(), "reloading configuration");
        let result = self.apply_reload().await;
        self.last_reload = Some((SystemTime::now(), result.clone()));
        result
    }

    async fn apply_reload(&mut self) -> Result<(), String> {
        let new = config::load(&self.path).map_err(|e| e.to_string())?;
        if new.speaker.listen != self.config.speaker.listen {
            return Err("speaker.listen changed: restart anyvip to apply it".to_string());
        }
        if new.dataplane.interface != self.config.dataplane.interface {
            return Err("dataplane.interface changed: restart anyvip to apply it".to_string());
        }
        // The control socket and metrics listener are bound once, at start.
        if new.api != self.config.api {
            return Err("[api] changed: restart anyvip to apply it".to_string());
        }
        // VIPs and checks first, so new peers start with the new routes.
        let vips_changed = new.vips != self.config.vips || new.drain != self.config.drain;
        if new.checks != self.config.checks
            || vips_changed
            || new.dataplane != self.config.dataplane
        {
            if let Some(dp) = &mut self.lifecycle.dataplane {
                dp.reconfigure(&new.dataplane, &new.vips).await?;
            }
            if new.checks != self.config.checks {
                // New checks start down (fail closed): VIPs following them
                // are withdrawn until the new checks pass `rise` times.
                self.checks = Checks::spawn(&new.checks).map_err(|e| e.to_string())?;
            }
            self.vip_health = VipHealth::new(&new.vips, &self.checks);
            self.lifecycle.reconfigure(&new).await;
        }
        let speaker_changed = new.speaker != self.config.speaker;
        let old: Vec<IpAddr> = self.peers.keys().copied().collect();
        for address in old {
            let keep = !speaker_changed
                && new
                    .peers
                    .iter()
                    .any(|p| Some(p) == self.peers.get(&address).map(|(c, _)| c));
            if !keep {
                let gone = !new.peers.iter().any(|p| p.address == address);
                let why = if gone {
                    "peer de-configured"
                } else {
                    "peer configuration changed"
                };
                tracing::info!(%address, why, "closing session");
                self.stop_peer(address, why).await;
            }
        }
        self.config = new;
        let missing: Vec<Peer> = self
            .config
            .peers
            .iter()
            .filter(|p| !self.peers.contains_key(&p.address))
            .cloned()
            .collect();
        for p in missing {
            tracing::info!(address = %p.address, "starting session");
            self.start_peer(p);
        }
        self.lifecycle.always_up().await;
        tracing::info!("configuration reloaded");
        Ok(())
    }
}

/// One VIP's lifecycle record.
#[derive(Debug, Clone)]
struct Record {
    always: bool,
    checks: Vec<String>,
    healthy: bool,
    drained: bool,
    /// The maintenance flag (a `file` check) is set: drain like an operator
    /// drain, undone when the flag goes.
    maintenance: bool,
    mode: Mode,
    since: SystemTime,
    reason: String,
    transitions: u64,
    drain_until: Option<Instant>,
}

impl Record {
    fn new(v: &config::Vip) -> Record {
        Record {
            always: v.always,
            checks: v.checks.clone(),
            healthy: false,
            drained: false,
            maintenance: false,
            mode: Mode::Withdrawn,
            since: SystemTime::now(),
            reason: "starting: not yet healthy".to_string(),
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
pub(crate) struct Lifecycle {
    pub(crate) announcer: Announcer,
    pub(crate) dataplane: Option<Dataplane>,
    pub(crate) peers: BTreeMap<IpAddr, watch::Receiver<PeerStatus>>,
    vips: BTreeMap<IpNet, Record>,
    drain_delay: Duration,
}

impl Lifecycle {
    pub(crate) fn new(
        announcer: Announcer,
        dataplane: Option<Dataplane>,
        config: &Config,
    ) -> Lifecycle {
        Lifecycle {
            announcer,
            dataplane,
            peers: BTreeMap::new(),
            vips: config
                .vips
                .iter()
                .map(|v| (v.prefix, Record::new(v)))
                .collect(),
            drain_delay: config.drain.delay,
        }
    }

    /// `always = true` VIPs are healthy for the life of the daemon.
    async fn always_up(&mut self) {
        let mut any = false;
        for r in self.vips.values_mut().filter(|r| r.always && !r.healthy) {
            r.healthy = true;
            r.reason = "always = true".to_string();
            any = true;
        }
        if any {
            self.reconcile().await;
        }
    }

    pub(crate) async fn health(&mut self, changes: Vec<VipChange>) {
        for c in changes {
            if let Some(r) = self.vips.get_mut(&c.prefix) {
                r.healthy = c.up || c.maintenance;
                r.maintenance = c.maintenance;
                r.reason = c.reason;
            }
        }
        self.reconcile().await;
    }

    /// Set or clear the operator drain on one VIP or all.
    async fn drain(&mut self, prefix: Option<IpNet>, drained: bool) -> Result<Vec<IpNet>, String> {
        let affected: Vec<IpNet> = match prefix {
            Some(p) if !self.vips.contains_key(&p) => {
                return Err(format!("{p} is not a configured VIP"));
            }
            Some(p) => vec![p],
            None => self.vips.keys().copied().collect(),
        };
        for p in &affected {
            if let Some(r) = self.vips.get_mut(p) {
                if r.drained != drained {
                    r.drained = drained;
                    r.reason = if drained {
                        "drained by request"
                    } else {
                        "resumed by request"
                    }
                    .to_string();
                }
            }
        }
        self.reconcile().await;
        Ok(affected)
    }

    fn draining(&self) -> bool {
        self.vips.values().any(|r| r.mode == Mode::Draining)
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.vips
            .values()
            .filter(|r| r.mode == Mode::Draining)
            .filter_map(|r| r.drain_until)
            .min()
    }

    /// Cut every drain short.
    async fn withdraw_all(&mut self) {
        for r in self.vips.values_mut() {
            r.drain_until = None;
        }
        self.reconcile().await;
    }

    async fn reconfigure(&mut self, config: &Config) {
        self.drain_delay = config.drain.delay;
        let mut next: BTreeMap<IpNet, Record> = BTreeMap::new();
        for v in &config.vips {
            let mut r = Record::new(v);
            if let Some(old) = self.vips.get(&v.prefix) {
                // Health restarts from the (possibly new) checks; the mode
                // and drain carry over until the next reconcile.
                r.mode = old.mode;
                r.drained = old.drained;
                r.maintenance = old.maintenance && old.checks == v.checks;
                r.since = old.since;
                r.transitions = old.transitions;
                r.drain_until = old.drain_until;
                r.healthy = old.healthy && old.checks == v.checks && old.always == v.always;
            }
            next.insert(v.prefix, r);
        }
        // VIPs that are gone are withdrawn (and their addresses removed).
        let gone: Vec<IpNet> = self
            .vips
            .iter()
            .filter(|(p, r)| !next.contains_key(p) && r.mode != Mode::Withdrawn)
            .map(|(p, _)| *p)
            .collect();
        for p in &gone {
            self.announcer.set(*p, Mode::Withdrawn);
        }
        self.announcer.reconfigure(&config.vips, &config.drain);
        if !gone.is_empty() {
            self.withdrawn_everywhere(self.announcer.version()).await;
            if let Some(dp) = &self.dataplane {
                for p in gone {
                    let _ = dp.down(p).await;
                }
            }
        }
        self.vips = next;
        self.reconcile().await;
    }

    /// Move every VIP to where it should be, withdrawals first.
    pub(crate) async fn reconcile(&mut self) {
        let now = Instant::now();
        let moves: Vec<(IpNet, Mode, Mode)> = self
            .vips
            .iter()
            .map(|(p, r)| (*p, r.mode, r.target(now)))
            .filter(|(_, from, to)| from != to)
            .collect();
        if moves.is_empty() {
            return;
        }
        // 1. Withdrawals, all in one publish (invariant 2), then wait until
        //    every peer has sent them, then the addresses go.
        let downs: Vec<IpNet> = moves
            .iter()
            .filter(|(_, _, to)| *to == Mode::Withdrawn)
            .map(|(p, _, _)| *p)
            .collect();
        for p in &downs {
            self.announcer.set(*p, Mode::Withdrawn);
            self.mark(*p, Mode::Withdrawn);
        }
        if !downs.is_empty() {
            self.withdrawn_everywhere(self.announcer.version()).await;
            if let Some(dp) = &self.dataplane {
                for p in &downs {
                    if let Err(e) = dp.down(*p).await {
                        tracing::error!(prefix = %p, error = %e, "cannot remove the VIP address");
                    }
                }
            }
        }
        // 2. Drains: same address, worse path.
        for (p, _, to) in moves.iter().filter(|(_, _, to)| *to == Mode::Draining) {
            self.announcer.set(*p, *to);
            if let Some(r) = self.vips.get_mut(p) {
                r.drain_until = Some(now + self.drain_delay);
            }
            self.mark(*p, *to);
        }
        // 3. Announcements: address first (no address, no announcement).
        for (p, from, _) in moves.iter().filter(|(_, _, to)| *to == Mode::Announced) {
            if *from == Mode::Withdrawn {
                if let Some(dp) = &self.dataplane {
                    if let Err(e) = dp.up(*p).await {
                        tracing::error!(prefix = %p, error = %e, "cannot add the VIP address: not announcing it");
                        continue;
                    }
                }
            }
            self.announcer.set(*p, Mode::Announced);
            self.mark(*p, Mode::Announced);
        }
    }

    fn mark(&mut self, prefix: IpNet, mode: Mode) {
        if let Some(r) = self.vips.get_mut(&prefix) {
            r.mode = mode;
            r.since = SystemTime::now();
            r.transitions += 1;
            if mode != Mode::Draining {
                r.drain_until = None;
            }
            match mode {
                Mode::Withdrawn => tracing::warn!(%prefix, reason = %r.reason, "VIP withdrawn"),
                Mode::Draining => {
                    tracing::info!(%prefix, reason = %r.reason, "VIP draining (GRACEFUL_SHUTDOWN)")
                }
                Mode::Announced => tracing::info!(%prefix, reason = %r.reason, "VIP announced"),
            }
        }
    }

    fn status(&self) -> Vec<VipStatus> {
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
                reason: r.reason.clone(),
                transitions: r.transitions,
            })
            .collect()
    }

    /// Wait until every peer task has acted on `version` of the desired set.
    async fn withdrawn_everywhere(&mut self, version: u64) {
        let all = async {
            for status in self.peers.values_mut() {
                let _ = status.wait_for(|s| s.converged_version >= version).await;
            }
        };
        if tokio::time::timeout(WITHDRAW_GRACE, all).await.is_err() {
            tracing::warn!("a peer did not send its withdrawal within {WITHDRAW_GRACE:?}; removing the address anyway");
        }
    }
}

async fn stop(peers: Vec<PeerHandle>, message: &str) {
    for p in &peers {
        let _ = p
            .commands
            .send(Command::Stop {
                message: Some(message.to_string()),
            })
            .await;
    }
    for p in peers {
        if tokio::time::timeout(STOP_GRACE, p.task).await.is_err() {
            tracing::warn!("a peer did not stop in time");
        }
    }
}
