//! Wiring and the main loop: configuration -> health checks -> VIP
//! lifecycle -> routes -> peer tasks, and the lifecycle -> data plane.
//! Control requests, signals, drain deadlines and reloads arrive here.
//!
//! The loop never waits on slow work inside its arms (design invariant 2):
//! the lifecycle decides without I/O, the data plane and the peers run in
//! their own tasks, status is built from snapshots those tasks keep
//! current, peers removed by a reload are stopped in the background, and
//! "every peer has sent this withdrawal" arrives as an event.

mod peers;
mod reload;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use ipnet::IpNet;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::bfd::Bfd;
use crate::config::{Config, Peer, RouterIdSource};
use crate::control::{Request, Snapshot};
use crate::dataplane::{Dataplane, DataplaneHandle};
use crate::health::Checks;
use crate::notify;
use crate::vip::{Lifecycle, Mode};

use peers::{Peers, STOP_GRACE};

/// How long a withdrawal may take to reach every peer's socket before the
/// VIP address is removed anyway (a peer stuck writing must not keep the
/// address on the node forever).
const WITHDRAW_GRACE: Duration = Duration::from_secs(2);

/// Run until SIGTERM or SIGINT (with a drain first). `config` has its
/// router ID resolved ([`crate::config::resolve_router_id`], which says
/// where it came from: `router_id`). `requests` is the receiving end of
/// the [`crate::control::Control`] the API holds.
pub async fn run(
    path: PathBuf,
    config: Config,
    router_id: RouterIdSource,
    requests: mpsc::Receiver<Request>,
) -> std::io::Result<()> {
    if config.speaker.router_id.is_unspecified() {
        return Err(std::io::Error::other(
            "the router ID was not derived (config::resolve_router_id)",
        ));
    }
    // The data plane first: the loop guard is in place before any route
    // can attract traffic, and leftovers from a crash are gone.
    let dataplane = Dataplane::start(&config.dataplane, &config.vips)
        .await
        .map_err(std::io::Error::other)?;
    let peers = Peers::listen(&config.speaker, &config.peers)?;
    let (bfd_down_tx, bfd_down) = mpsc::unbounded_channel();
    let bfd = Bfd::spawn(&config.peers, bfd_down_tx)?;
    let checks = Checks::spawn(&config.checks).map_err(std::io::Error::other)?;
    let lifecycle = Lifecycle::new(&config);
    let dataplane = dataplane.map(|d| d.spawn(lifecycle.addresses()));
    let present = match &dataplane {
        Some(d) => d.present.clone(),
        // Unmanaged: the lifecycle never waits for an address.
        None => watch::channel(BTreeSet::new()).1,
    };
    let (withdrawn_tx, withdrawn) = mpsc::unbounded_channel();
    let mut daemon = Daemon {
        path,
        started: SystemTime::now(),
        lifecycle,
        dataplane,
        present,
        peers,
        bfd: Some(bfd),
        bfd_down,
        checks,
        last_reload: None,
        withdrawn_tx,
        config,
        router_id,
    };
    for p in daemon.config.peers.clone() {
        daemon.start_peer(p);
    }
    let levels = daemon.checks.levels(&daemon.config.vips);
    let step = daemon.lifecycle.health(&levels, Instant::now());
    daemon.after(step);
    let _ = notify::ready(&daemon.summary());
    daemon.main_loop(requests, withdrawn).await
}

struct Daemon {
    path: PathBuf,
    config: Config,
    started: SystemTime,
    lifecycle: Lifecycle,
    dataplane: Option<DataplaneHandle>,
    /// The data plane's report of the addresses present.
    present: watch::Receiver<BTreeSet<IpNet>>,
    peers: Peers,
    /// `None` only once stopped.
    bfd: Option<Bfd>,
    /// Peers whose BFD session fell from Up to Down.
    bfd_down: mpsc::UnboundedReceiver<IpAddr>,
    checks: Checks,
    last_reload: Option<(SystemTime, Result<(), String>)>,
    /// "Every peer has sent version N", from the tasks that wait for it.
    withdrawn_tx: mpsc::UnboundedSender<u64>,
    /// Where `config.speaker.router_id` came from, for status.
    router_id: RouterIdSource,
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

impl Daemon {
    fn start_peer(&mut self, p: Peer) {
        self.peers
            .start(p, &self.config.speaker, self.lifecycle.routes());
    }

    /// After the lifecycle withdrew `version`: wait (in a task of its own)
    /// until every peer has sent it, then report back so the addresses can
    /// go.
    fn after(&self, withdrawn: Option<u64>) {
        let Some(version) = withdrawn else {
            return;
        };
        let statuses = self.peers.statuses();
        let tx = self.withdrawn_tx.clone();
        tokio::spawn(async move {
            peers::converged(statuses, version, WITHDRAW_GRACE).await;
            let _ = tx.send(version);
        });
    }

    /// A drain delay ran out.
    fn deadline(&mut self) {
        let step = self.lifecycle.tick(Instant::now());
        self.after(step);
    }

    /// The data plane reported the addresses on the node.
    fn addresses_present(&mut self) {
        let present = self.present.borrow_and_update().clone();
        let step = self.lifecycle.present(present, Instant::now());
        self.after(step);
    }

    /// Every peer has queued `version` of the routes.
    fn withdrawn_everywhere(&mut self, version: u64) {
        let step = self.lifecycle.withdrawn_everywhere(version, Instant::now());
        self.after(step);
    }

    fn health(&mut self) {
        let levels = self.checks.levels(&self.config.vips);
        let step = self.lifecycle.health(&levels, Instant::now());
        self.after(step);
    }

    async fn main_loop(
        &mut self,
        mut requests: mpsc::Receiver<Request>,
        mut withdrawn: mpsc::UnboundedReceiver<u64>,
    ) -> std::io::Result<()> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        // Fed from this loop and nowhere else: if the loop hangs, systemd
        // sees the watchdog starve and restarts us (design invariant 4).
        let mut watchdog = notify::Watchdog::from_env();
        let why = loop {
            tokio::select! {
                () = watchdog.tick() => watchdog.ping(),
                () = self.checks.changed() => self.health(),
                () = sleep_until(self.lifecycle.next_deadline()) => self.deadline(),
                Ok(()) = self.present.changed() => self.addresses_present(),
                Some(version) = withdrawn.recv() => self.withdrawn_everywhere(version),
                Some(request) = requests.recv() => {
                    self.handle(request);
                }
                Some(address) = self.bfd_down.recv() => self.peers.bfd_down(address),
                _ = hup.recv() => {
                    let _ = notify::reloading();
                    // reload() logs a refusal itself: once per reload.
                    let _ = self.reload();
                    let _ = notify::ready(&self.summary());
                    continue;
                }
                _ = term.recv() => break "SIGTERM",
                _ = int.recv() => break "SIGINT",
            }
            let _ = notify::status(&self.summary());
        };
        let _ = notify::stopping();
        let _ = notify::extend_timeout(self.config.drain.delay + STOP_GRACE + WITHDRAW_GRACE);
        self.shutdown(
            why,
            &mut requests,
            &mut withdrawn,
            &mut term,
            &mut int,
            &mut watchdog,
        )
        .await;
        Ok(())
    }

    fn handle(&mut self, request: Request) {
        let now = Instant::now();
        match request {
            Request::Status(reply) => {
                let _ = reply.send(self.snapshot());
            }
            Request::Drain { prefix, reply } => {
                let result = self
                    .lifecycle
                    .drain(prefix, true, now)
                    .map(|(affected, step)| {
                        self.after(step);
                        affected
                    });
                let _ = reply.send(result);
            }
            Request::Resume { prefix, reply } => {
                let result = self
                    .lifecycle
                    .drain(prefix, false, now)
                    .map(|(affected, step)| {
                        self.after(step);
                        affected
                    });
                let _ = reply.send(result);
            }
            Request::Reload(reply) => {
                let _ = reply.send(self.reload());
            }
        }
    }

    /// One line for systemd's STATUS=: sessions up and VIPs announced.
    fn summary(&self) -> String {
        let vips = self.lifecycle.status();
        let announced = vips.iter().filter(|v| v.mode == Mode::Announced).count();
        let draining = vips.iter().filter(|v| v.mode == Mode::Draining).count();
        format!(
            "{}/{} sessions established; {announced}/{} VIPs announced{}",
            self.peers.established(),
            self.peers.len(),
            vips.len(),
            if draining > 0 {
                format!(", {draining} draining")
            } else {
                String::new()
            }
        )
    }

    /// Built from what the tasks keep current: answering never waits.
    fn snapshot(&self) -> Snapshot {
        let dataplane = self.dataplane.as_ref().map(DataplaneHandle::status);
        Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            started: self.started,
            config_file: self.path.clone(),
            router_id: self.config.speaker.router_id,
            router_id_source: self.router_id.to_string(),
            last_reload: self.last_reload.clone(),
            peers: self.peers_with_bfd(),
            bfd_dropped: self
                .bfd
                .as_ref()
                .map(|b| b.report.borrow().dropped.clone())
                .unwrap_or_default(),
            vips: self.lifecycle.status(),
            checks: self.checks.snapshot(),
            counters: dataplane.as_ref().and_then(|d| d.counters),
            dataplane,
        }
    }

    /// The peers' status with their BFD sessions'.
    fn peers_with_bfd(&self) -> Vec<crate::bgp::peer::PeerStatus> {
        let mut peers = self.peers.snapshot();
        if let Some(bfd) = &self.bfd {
            let report = bfd.report.borrow();
            for p in &mut peers {
                p.bfd = report.sessions.get(&p.address.ip()).cloned();
            }
        }
        peers
    }

    /// Planned stop (design invariant 5): drain every announced VIP, wait
    /// the drain delay (a second signal cuts it short), withdraw, close the
    /// sessions with Cease / Administrative Shutdown, clean up the node.
    async fn shutdown(
        &mut self,
        why: &str,
        requests: &mut mpsc::Receiver<Request>,
        withdrawn: &mut mpsc::UnboundedReceiver<u64>,
        term: &mut tokio::signal::unix::Signal,
        int: &mut tokio::signal::unix::Signal,
        watchdog: &mut notify::Watchdog,
    ) {
        tracing::info!(signal = why, delay = ?self.config.drain.delay, "stopping: draining VIPs");
        if let Ok((_, step)) = self.lifecycle.drain(None, true, Instant::now()) {
            self.after(step);
        }
        while self.lifecycle.draining() || self.lifecycle.removals_pending() {
            tokio::select! {
                () = watchdog.tick() => watchdog.ping(),
                () = self.checks.changed() => self.health(),
                () = sleep_until(self.lifecycle.next_deadline()) => self.deadline(),
                Ok(()) = self.present.changed() => self.addresses_present(),
                Some(version) = withdrawn.recv() => self.withdrawn_everywhere(version),
                Some(address) = self.bfd_down.recv() => self.peers.bfd_down(address),
                Some(request) = requests.recv() => match request {
                    Request::Status(reply) => { let _ = reply.send(self.snapshot()); }
                    Request::Drain { reply, .. } | Request::Resume { reply, .. } => {
                        let _ = reply.send(Err(crate::control::GONE.to_string()));
                    }
                    Request::Reload(reply) => { let _ = reply.send(Err(crate::control::GONE.to_string())); }
                },
                _ = term.recv() => self.second_signal(),
                _ = int.recv() => self.second_signal(),
            }
        }
        tracing::info!("closing sessions");
        peers::stop(self.peers.take_all(), "anyvip is stopping".to_string()).await;
        // BGP is closed: now tell the routers' BFD this is a planned stop
        // (AdminDown, diagnostic 7), not a failure.
        if let Some(bfd) = self.bfd.take() {
            bfd.stop().await;
        }
        if let Some(dp) = self.dataplane.take() {
            dp.stop().await;
        }
    }

    fn second_signal(&mut self) {
        tracing::warn!("second signal: withdrawing now");
        let step = self.lifecycle.withdraw_all(Instant::now());
        self.after(step);
    }
}
