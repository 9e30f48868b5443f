//! Reload (SIGHUP, `anyvip reload`): re-read the file and apply what
//! changed, without waiting on anything slow. Unchanged checks keep
//! running with their state; sessions whose settings did not change are
//! not touched; peers that go are stopped in the background.

use std::time::{Instant, SystemTime};

use crate::config::{self, Peer};

use super::{peers, Daemon};

impl Daemon {
    pub(super) fn reload(&mut self) -> Result<(), String> {
        tracing::info!(file = %self.path.display(), "reloading configuration");
        let result = self.apply_reload();
        self.last_reload = Some((SystemTime::now(), result.clone()));
        match &result {
            Ok(()) => tracing::info!("configuration reloaded"),
            // One line: journald makes every line its own entry, and an
            // error list on the lines after it would lose its level and
            // its context. Status and `anyvip reload` keep the list.
            Err(e) => tracing::error!(
                error = %e.replace("\n  ", "; ").replace('\n', "; "),
                "reload refused; the running configuration stays"
            ),
        }
        result
    }

    fn apply_reload(&mut self) -> Result<(), String> {
        let (mut new, warnings) =
            config::load_with_warnings(&self.path).map_err(|e| e.to_string())?;
        // Derived as at start: an unchanged result leaves the sessions be.
        let router_id = config::resolve_router_id(&mut new).map_err(|e| e.to_string())?;
        for w in &warnings {
            tracing::warn!(file = %self.path.display(), "{w}");
        }
        // What cannot change without a restart is refused before anything
        // is applied.
        if new.speaker.listen != self.config.speaker.listen {
            return Err("speaker.listen changed: restart anyvip to apply it".to_string());
        }
        if new.dataplane.interface != self.config.dataplane.interface {
            return Err("dataplane.interface changed: restart anyvip to apply it".to_string());
        }
        if new.dataplane.manage != self.config.dataplane.manage {
            return Err("dataplane.manage changed: restart anyvip to apply it".to_string());
        }
        // The control socket and metrics listener are bound once, at start.
        if new.api != self.config.api {
            return Err("[api] changed: restart anyvip to apply it".to_string());
        }
        if let Some(dp) = &self.dataplane {
            if new.dataplane != self.config.dataplane || new.vips != self.config.vips {
                dp.reconfigure(&new.dataplane, &new.vips)?;
            }
        }
        self.peers.set_keys(&new.peers)?;
        if new.checks != self.config.checks {
            let restarted = self.checks.reconfigure(&new.checks)?;
            if !restarted.is_empty() {
                tracing::info!(checks = %restarted.join(", "), "checks (re)started: down until they pass `rise` times");
            }
        }
        // The VIPs under their checks' current levels, before any peer
        // moves: a reload never leaves a VIP announced whose checks are not
        // all up.
        let levels = self.checks.levels(&new.vips);
        let step = self.lifecycle.reconfigure(&new, &levels, Instant::now());
        let speaker_changed = new.speaker != self.config.speaker;
        let mut stopping = Vec::new();
        for address in self.peers.addresses() {
            // A change of the BFD settings alone is applied by the BFD task
            // (a Poll Sequence), not by resetting the BGP session.
            let same = self
                .peers
                .config(&address)
                .and_then(|running| new.peers.iter().find(|p| running.same_but_bfd(p)).cloned());
            if let (false, Some(p)) = (speaker_changed, same) {
                self.peers.set_config(&p);
                continue;
            }
            let why = if new.peers.iter().any(|p| p.address == address) {
                "peer configuration changed"
            } else {
                "peer de-configured"
            };
            tracing::info!(%address, why, "closing session");
            if let Some(handle) = self.peers.remove(address) {
                stopping.push((address, handle, why));
            }
        }
        if let Some(bfd) = &self.bfd {
            bfd.reconfigure(&new.peers);
        }
        self.config = new;
        self.router_id = router_id;
        // Removed peers close concurrently, in the background.
        for (_, handle, why) in stopping {
            tokio::spawn(peers::stop(vec![handle], why.to_string()));
        }
        // Wait for the withdrawal on the peers that stay (new ones start
        // from the new routes).
        self.after(step);
        let missing: Vec<Peer> = self
            .config
            .peers
            .iter()
            .filter(|p| !self.peers.contains(&p.address))
            .cloned()
            .collect();
        for p in missing {
            tracing::info!(address = %p.address, "starting session");
            self.start_peer(p);
        }
        Ok(())
    }
}
