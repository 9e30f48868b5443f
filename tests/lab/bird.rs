//! BIRD 2 in a namespace: `bird -f -c <conf> -s <socket> -P <pidfile>`, all files in the
//! lab's temp dir. Run in the foreground as our child (`ip netns exec` exec's it, so the
//! child's pid is BIRD's pid), stopped by the pid from its pidfile and reaped by us.

use super::netns;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Bird {
    pub ns: String,
    pub conf: PathBuf,
    pub socket: PathBuf,
    pub pidfile: PathBuf,
    /// BIRD's stderr (`log stderr all`).
    pub log: PathBuf,
    child: Option<Child>,
}

impl Bird {
    /// Files go to `<dir>/<name>.{ctl,pid,log}`.
    pub fn new(ns: &str, conf: PathBuf, dir: &Path, name: &str) -> Bird {
        Bird {
            ns: ns.to_string(),
            conf,
            socket: dir.join(format!("{name}.ctl")),
            pidfile: dir.join(format!("{name}.pid")),
            log: dir.join(format!("{name}.log")),
            child: None,
        }
    }

    pub fn start(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Err("BIRD already started".into());
        }
        let _ = std::fs::remove_file(&self.pidfile);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = netns::in_ns(&self.ns, &["bird", "-f", "-c"]);
        cmd.arg(&self.conf)
            .arg("-s")
            .arg(&self.socket)
            .arg("-P")
            .arg(&self.pidfile)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        let child = cmd
            .spawn()
            .map_err(|e| format!("{}: {e}", netns::show(&cmd)))?;
        self.child = Some(child);
        let socket = self.socket.clone();
        let mut exited = None;
        let ready = super::try_wait_until(Duration::from_secs(20), "BIRD to answer birdc", || {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                exited = Some(status);
                return true;
            }
            birdc(&socket, "show status").is_ok_and(|s| s.contains("Daemon is up"))
        });
        let failed = match (ready, exited) {
            (Err(e), _) => Some(e),
            (Ok(_), Some(status)) => Some(format!("BIRD exited at start ({status})")),
            (Ok(_), None) => None,
        };
        if let Some(e) = failed {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            self.stop();
            return Err(format!("{e}\nBIRD log {}:\n{log}", self.log.display()));
        }
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(&self.pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .or_else(|| self.child.as_ref().map(Child::id))
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGTERM to the pid in the pidfile, reap; SIGKILL after 5 s.
    pub fn stop(&mut self) {
        let pid = self.pid();
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = pid {
            netns::signal(pid, "TERM");
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if std::time::Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(&self.pidfile);
    }

    /// `birdc -s <socket> <cmd...>`; stdout. The control socket is a file, so this
    /// needs no namespace.
    pub fn birdc(&self, cmd: &str) -> Result<String, String> {
        birdc(&self.socket, cmd)
    }
}

fn birdc(socket: &Path, cmd: &str) -> Result<String, String> {
    let out = netns::run(
        Command::new("birdc")
            .arg("-s")
            .arg(socket)
            .args(cmd.split_whitespace()),
    )?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
