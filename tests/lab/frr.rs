//! FRR in a namespace through its pathspace mechanism (see ../shared/lab-notes.md):
//! config in `/etc/frr/<pathspace>/`, run files in `/var/run/frr/<pathspace>/`,
//! `frrinit.sh start|stop <pathspace>` inside the namespace, `vtysh -N <pathspace>`.

use super::netns;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const FRRINIT: &str = "/usr/lib/frr/frrinit.sh";

pub struct Frr {
    /// Pathspace name, unique per lab (the lab id).
    pub pathspace: String,
    pub ns: String,
    /// frrinit.sh output (its daemons inherit no pipe of ours this way).
    pub log: PathBuf,
    /// Every process seen in the run directory since start, pid -> start time, so stop
    /// can check each is gone and never signals a pid that was reused meanwhile.
    pids: BTreeMap<u32, u64>,
    running: bool,
}

impl Frr {
    pub fn new(pathspace: &str, ns: &str, log: PathBuf) -> Frr {
        Frr {
            pathspace: pathspace.to_string(),
            ns: ns.to_string(),
            log,
            pids: BTreeMap::new(),
            running: false,
        }
    }

    pub fn conf_dir(&self) -> PathBuf {
        Path::new("/etc/frr").join(&self.pathspace)
    }

    pub fn run_dir(&self) -> PathBuf {
        Path::new("/var/run/frr").join(&self.pathspace)
    }

    /// Copy `(source, file name)` pairs into the pathspace config dir, add an empty
    /// `vtysh.conf` unless given, and hand it all to frr:frr.
    pub fn install(&self, files: &[(PathBuf, String)]) -> Result<(), String> {
        let dir = self.conf_dir();
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for (src, name) in files {
            let dst = dir.join(name);
            std::fs::copy(src, &dst)
                .map_err(|e| format!("{} -> {}: {e}", src.display(), dst.display()))?;
        }
        if !files.iter().any(|(_, n)| n == "vtysh.conf") {
            std::fs::write(dir.join("vtysh.conf"), "")
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        if !dir.join("frr.conf").exists() || !dir.join("daemons").exists() {
            return Err(format!(
                "{}: needs frr.conf and daemons (bind them to /etc/frr/)",
                dir.display()
            ));
        }
        netns::run(Command::new("chown").args(["-R", "frr:frr"]).arg(&dir)).map(|_| ())
    }

    pub fn start(&mut self) -> Result<(), String> {
        self.frrinit("start")?;
        self.running = true;
        self.record_pids();
        // bgpd answers once it has read its config
        super::try_wait_until(
            Duration::from_secs(20),
            "FRR's bgpd to answer vtysh",
            || {
                self.vtysh(&["show bgp summary json"])
                    .is_ok_and(|s| s.trim_start().starts_with('{'))
            },
        )?;
        // FRR loads the config neighbor by neighbor: a neighbor exists before its address
        // family is activated, is reset ("No AFI/SAFI activated") and sits in Idle for a
        // few seconds, refusing every connection. Ready means no neighbor is Idle.
        super::try_wait_until(
            Duration::from_secs(30),
            "FRR's neighbors to leave Idle (FRR refuses connections while Idle)",
            || {
                self.vtysh(&["show bgp neighbors json"])
                    .ok()
                    .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                    .and_then(|v| v.as_object().cloned())
                    .is_some_and(|peers| {
                        peers
                            .values()
                            .all(|n| n["bgpState"] != "Idle" || n["adminShutDown"] == true)
                    })
            },
        )?;
        self.record_pids();
        Ok(())
    }

    /// `frrinit.sh stop` (what an operator does; for restart tests), then make sure every
    /// pid FRR ever had is gone (SIGKILL if not).
    pub fn stop(&mut self) -> Result<(), String> {
        if !self.running {
            return Ok(());
        }
        self.record_pids();
        let res = self.frrinit("stop");
        self.kill_all();
        res
    }

    /// Teardown: SIGTERM every FRR pid at once, SIGKILL what is left after 5 s. About
    /// 2 s, where `frrinit.sh stop` takes about 6 s (watchfrr, then the daemons, then
    /// zebra, one after the other).
    pub fn kill_all(&mut self) {
        self.record_pids();
        for _ in 0..2 {
            let ours =
                |(&pid, &start): (&u32, &u64)| netns::same_process(pid, start).then_some(pid);
            let pids: Vec<u32> = self.pids.iter().filter_map(ours).collect();
            for &pid in &pids {
                netns::signal(pid, "TERM");
            }
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while self.pids.iter().any(|p| ours(p).is_some())
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            for pid in self.pids.iter().filter_map(ours).collect::<Vec<_>>() {
                netns::terminate(pid, Duration::ZERO);
            }
            // a daemon watchfrr restarted meanwhile has a new pid file
            self.record_pids();
        }
        self.running = false;
    }

    /// `frrinit.sh <action> <pathspace>` in the namespace, output appended to the log.
    fn frrinit(&self, action: &str) -> Result<(), String> {
        let mut cmd = netns::in_ns(&self.ns, &[FRRINIT, action, &self.pathspace]);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let status = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .status()
            .map_err(|e| format!("{}: {e}", netns::show(&cmd)))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} failed ({status}); see {}",
                netns::show(&cmd),
                self.log.display()
            ))
        }
    }

    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Pids FRR has or had (from its pid files).
    pub fn pids(&mut self) -> Vec<u32> {
        self.record_pids();
        self.pids.keys().copied().collect()
    }

    fn record_pids(&mut self) {
        let Ok(entries) = std::fs::read_dir(self.run_dir()) else {
            return;
        };
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "pid") {
                let pid = std::fs::read_to_string(e.path())
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                if let Some((pid, start)) = pid.and_then(|p| Some((p, netns::start_time(p)?))) {
                    self.pids.entry(pid).or_insert(start);
                }
            }
        }
    }

    /// `vtysh -N <pathspace> -c <cmd> [-c <cmd> ...]` in the namespace; stdout.
    pub fn vtysh(&self, cmds: &[&str]) -> Result<String, String> {
        let mut argv = vec!["vtysh", "-N", &self.pathspace];
        for c in cmds {
            argv.extend(["-c", c]);
        }
        let out = netns::run(&mut netns::in_ns(&self.ns, &argv))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Remove the pathspace's config and run directories.
    pub fn remove_dirs(&self) -> Result<(), String> {
        for d in [self.conf_dir(), self.run_dir()] {
            if d.exists() {
                std::fs::remove_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
            }
        }
        Ok(())
    }
}
