//! Steering and the loop guard: the one nftables table anyvip owns,
//! `table inet anyvip`, and nothing else.
//!
//! [`Ruleset`] describes the table (pure, see [`ruleset`]); [`Nft`] installs
//! it by handing one JSON transaction to `nft -j -f -`, which the kernel
//! applies atomically (all or nothing). Every install replaces whatever is
//! in our table, including what an earlier run left after a crash; no other
//! table is ever read for rules, flushed or changed.
//!
//! Why the `nft` binary and not a netlink crate: the ruleset needs `fib`,
//! `ct status`, `dnat`, `reject` and named counters; `nft` is the reference
//! encoder of those expressions into netlink (and of their kernel-version
//! quirks), its JSON input (libnftables-json(5)) is a stable documented
//! interface that needs no quoting, and the same JSON is what `nft -j list`
//! prints, so what we install is exactly what an operator can inspect. The
//! Rust netlink crates do not fit: `rustables` (0.9) has no `fib`
//! expression and no named-counter reference, and is GPL-3.0 (this project
//! is Apache-2.0); `nftnl` binds the C libnftnl (a build dependency) and
//! leaves every expression's register plumbing to us. The cost is a runtime
//! dependency on the `nftables` package and a process per change (a few
//! per daemon lifetime: start, reload, stop).
//!
//! The calls here block (they run `nft`): from async code, call them on
//! `tokio::task::spawn_blocking`. They act on the network namespace of the
//! calling thread.

mod ruleset;
mod sysctl;

pub use ruleset::{
    Counter, Counters, GuardConfig, GuardMode, Ruleset, RulesetError, SteerConfig, VipRule, FAMILY,
    GUARD_COUNTER, LOOPBACK_COUNTER, STEER_COUNTER, TABLE,
};
pub use sysctl::{SysctlChange, SysctlError};

pub(crate) use sysctl::{interfaces as sysctl_interfaces, set_if as sysctl_set_if};

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long one `nft` run may take before it is killed.
const NFT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SteerError {
    #[error(
        "`{binary}` not found: anyvip needs the nftables command-line tool \
         (Debian/Ubuntu: apt-get install nftables; RHEL/Fedora: dnf install nftables)"
    )]
    NftMissing { binary: String },
    #[error("cannot run `{binary}`: {source}")]
    Spawn {
        binary: String,
        #[source]
        source: io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Nft {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("`{command}` did not finish within {timeout:?} and was killed")]
    Timeout { command: String, timeout: Duration },
    #[error("`{command}` printed something unexpected: {reason}")]
    Output { command: String, reason: String },
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
}

/// What [`Nft::install`] did besides installing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Installed {
    /// A table `inet anyvip` existed before (an earlier run's, or ours) and
    /// was replaced; its counters were carried over.
    pub replaced: bool,
    /// Sysctls raised for the ruleset (`route_localnet`), for the log.
    pub sysctls: Vec<SysctlChange>,
}

/// Whether `route_localnet` is on for any interface (the kernel ORs `all`
/// and the interface's value).
fn route_localnet_on() -> Result<bool, SysctlError> {
    for interface in sysctl::interfaces()? {
        if interface != "default" && sysctl::read(&interface, "route_localnet")? != 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The `nft` command-line tool, as anyvip uses it.
#[derive(Debug, Clone)]
pub struct Nft {
    binary: PathBuf,
    timeout: Duration,
}

impl Default for Nft {
    fn default() -> Nft {
        Nft::new()
    }
}

impl Nft {
    /// `nft` from `PATH`.
    pub fn new() -> Nft {
        Nft::with_binary("nft")
    }

    pub fn with_binary(binary: impl Into<PathBuf>) -> Nft {
        Nft {
            binary: binary.into(),
            timeout: NFT_TIMEOUT,
        }
    }

    /// Replace our table with `ruleset` in one transaction, keeping the
    /// counters' values. If the ruleset DNATs an IPv4 VIP to 127/8, then
    /// (after the table, with its loopback guard, is in place) raise
    /// `net.ipv4.conf.all.route_localnet` to 1: without it Linux drops
    /// packets from the network that were DNATed to 127/8. It is left set on
    /// [`Nft::remove`] (it may be someone else's too, e.g. kube-proxy's).
    ///
    /// The loopback guard is included whenever `route_localnet` is on for
    /// any interface, needed by this ruleset or not: a VIP steered to
    /// 127.0.0.1 by an earlier configuration leaves the sysctl on, and the
    /// node's loopback-only services must stay unreachable from the network.
    pub fn install(&self, ruleset: &Ruleset) -> Result<Installed, SteerError> {
        let previous = self.counters()?;
        let ruleset = if ruleset.needs_route_localnet() || route_localnet_on()? {
            ruleset.clone().with_loopback_guard()
        } else {
            ruleset.clone()
        };
        let doc = ruleset.transaction(&previous.unwrap_or_default());
        self.apply(&doc)?;
        let mut sysctls = Vec::new();
        if ruleset.needs_route_localnet() {
            sysctls.extend(sysctl::set_if("all", "route_localnet", 1, |v| v == 0)?);
        }
        Ok(Installed {
            replaced: previous.is_some(),
            sysctls,
        })
    }

    /// At start: whatever an earlier run left in our table (after a crash,
    /// or the guard kept at a clean stop) is replaced by `ruleset`. The same
    /// as [`Nft::install`]; named for what the daemon means by it.
    pub fn reconcile(&self, ruleset: &Ruleset) -> Result<Installed, SteerError> {
        self.install(ruleset)
    }

    /// At a clean stop: keep only the guard ([`Ruleset::guard_only`]), or,
    /// if the operator opted out (`keep_guard_on_stop = false`), remove the
    /// table.
    pub fn stop(&self, ruleset: &Ruleset, keep_guard: bool) -> Result<(), SteerError> {
        if keep_guard {
            self.install(&ruleset.guard_only()).map(|_| ())
        } else {
            self.remove().map(|_| ())
        }
    }

    /// Delete our table; `false` if there was none. This ends the loop
    /// guard; `route_localnet`, if anyvip raised it, stays on (see
    /// [`Nft::install`]) and with it the exposure of 127/8 services that the
    /// loopback guard was preventing: an operator opting out of the guard
    /// after steering to 127.0.0.1 resets it.
    pub fn remove(&self) -> Result<bool, SteerError> {
        let existed = self.table_exists()?;
        let table = json!({"family": FAMILY, "name": TABLE});
        // Create-then-delete: no error if it vanished in between.
        self.apply(&json!({"nftables": [
            {"add": {"table": table}},
            {"delete": {"table": table}},
        ]}))?;
        Ok(existed)
    }

    /// The named counters; `None` if our table is not installed.
    pub fn counters(&self) -> Result<Option<Counters>, SteerError> {
        if !self.table_exists()? {
            return Ok(None);
        }
        let doc = self.list(&["list", "counters", "table", FAMILY, TABLE])?;
        Ok(Some(Counters::from_nft_json(&doc)))
    }

    /// Our table as installed, for drift detection: its counters, and its
    /// listing with what changes by itself (handles, packet and byte counts)
    /// taken out, so two readings of an untouched table are equal. `None`
    /// if the table is not installed.
    pub fn observe(&self) -> Result<Option<(Counters, Value)>, SteerError> {
        Ok(self
            .table()?
            .map(|doc| (Counters::from_nft_json(&doc), without_volatile(&doc))))
    }

    /// Our table as `nft -j list table inet anyvip` prints it; `None` if it
    /// is not installed.
    pub fn table(&self) -> Result<Option<Value>, SteerError> {
        if !self.table_exists()? {
            return Ok(None);
        }
        self.list(&["list", "table", FAMILY, TABLE]).map(Some)
    }

    fn table_exists(&self) -> Result<bool, SteerError> {
        // Only the table list: `list table` on a missing table is an error
        // that we would otherwise have to recognise by its wording.
        let doc = self.list(&["list", "tables", FAMILY])?;
        Ok(doc
            .get("nftables")
            .and_then(Value::as_array)
            .is_some_and(|items| {
                items.iter().filter_map(|i| i.get("table")).any(|t| {
                    t.get("name").and_then(Value::as_str) == Some(TABLE)
                        && t.get("family").and_then(Value::as_str) == Some(FAMILY)
                })
            }))
    }

    fn list(&self, args: &[&str]) -> Result<Value, SteerError> {
        let mut argv = vec!["-j"];
        argv.extend_from_slice(args);
        let out = self.run(&argv, None)?;
        serde_json::from_slice(&out).map_err(|e| SteerError::Output {
            command: self.command_line(&argv),
            reason: e.to_string(),
        })
    }

    fn apply(&self, doc: &Value) -> Result<(), SteerError> {
        self.run(&["-j", "-f", "-"], Some(doc.to_string().as_bytes()))
            .map(|_| ())
    }

    fn command_line(&self, args: &[&str]) -> String {
        std::iter::once(self.binary.to_string_lossy().into_owned())
            .chain(args.iter().map(|a| (*a).to_string()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Run `nft` with `args`, feeding `input`; its stdout on success.
    fn run(&self, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>, SteerError> {
        let binary = self.binary.to_string_lossy().into_owned();
        let mut command = Command::new(&self.binary);
        // systemd's notify and watchdog variables are anyvip's alone.
        for var in crate::notify::CHILD_ENV_REMOVE {
            command.env_remove(var);
        }
        let mut child = command
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| match source.kind() {
                io::ErrorKind::NotFound => SteerError::NftMissing {
                    binary: binary.clone(),
                },
                _ => SteerError::Spawn {
                    binary: binary.clone(),
                    source,
                },
            })?;
        let feed = child.stdin.take().zip(input.map(<[u8]>::to_vec));
        let writer = std::thread::spawn(move || {
            if let Some((mut stdin, input)) = feed {
                // A write error shows up as nft's own failure below.
                let _ = stdin.write_all(&input);
            }
        });
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut buf);
                }
                buf
            })
        };
        let stdout = drain(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let stderr = drain(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );

        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(SteerError::Timeout {
                        command: self.command_line(args),
                        timeout: self.timeout,
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(source) => return Err(SteerError::Spawn { binary, source }),
            }
        };
        let _ = writer.join();
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        if status.success() {
            Ok(stdout)
        } else {
            Err(SteerError::Nft {
                command: self.command_line(args),
                status: status.to_string(),
                stderr: String::from_utf8_lossy(&stderr).trim().to_string(),
            })
        }
    }
}

/// `doc` without the keys whose values change on their own: rule and object
/// handles, packet and byte counts, and nft's `metainfo` header.
fn without_volatile(doc: &Value) -> Value {
    match doc {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "handle" | "packets" | "bytes"))
                .map(|(k, v)| (k.clone(), without_volatile(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|i| i.get("metainfo").is_none())
                .map(without_volatile)
                .collect(),
        ),
        other => other.clone(),
    }
}
