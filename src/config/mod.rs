//! Configuration: the TOML schema ([`schema`]), and its validation into the
//! typed [`Config`] the daemon runs on. Every error names the key path and
//! the reason; all errors in a file are reported together.
//!
//! One module per section of the file: [`speaker`], [`peer`], [`vip`],
//! [`check`] (with [`tls`] for `https` checks), [`dataplane`], [`drain`],
//! [`api`]; [`error`] is what a problem looks like. [`router_id`] derives
//! `router_id = "auto"` from the node, after validation.

mod api;
mod check;
mod dataplane;
mod drain;
mod error;
mod peer;
mod router_id;
mod schema;
mod speaker;
mod tls;
mod values;
mod vip;

pub use api::{Api, DEFAULT_SOCKET, DEFAULT_SOCKET_MODE};
pub use check::{
    default_timeout, Check, CheckKind, HttpCheck, DEFAULT_CHECK_INTERVAL, DEFAULT_EXPECTED_STATUS,
    DEFAULT_FALL, DEFAULT_RISE, MIN_CHECK_INTERVAL,
};
pub use dataplane::{Dataplane, DEFAULT_RECONCILE_INTERVAL};
pub use drain::{Drain, DEFAULT_DRAIN_DELAY};
pub use error::{ConfigError, ConfigErrors};
pub use peer::{Peer, Ttl};
pub use router_id::{resolve_router_id, RouterIdSource};
pub use speaker::{Speaker, BGP_PORT};
pub use tls::{PemFile, Tls};
pub use vip::Vip;

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub speaker: Speaker,
    pub peers: Vec<Peer>,
    pub vips: Vec<Vip>,
    /// Every `[check.NAME]`, by name; each is listed by at least one VIP.
    pub checks: Vec<Check>,
    pub dataplane: Dataplane,
    pub drain: Drain,
    /// `[api]`: the control socket and the metrics endpoint.
    pub api: Api,
}

/// Read and validate a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    load_with_warnings(path).map(|(config, _)| config)
}

/// [`load`], and what is accepted but cannot work yet (see [`tls`]).
pub fn load_with_warnings(path: &Path) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
    let fail = |key: &str, reason: String| ConfigErrors {
        file: path.to_path_buf(),
        errors: vec![ConfigError {
            key: key.to_string(),
            reason,
        }],
        warnings: Vec::new(),
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail("(file)", e.to_string()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse_with_warnings(&text, base).map_err(|Problems { errors, warnings }| ConfigErrors {
        file: path.to_path_buf(),
        errors,
        warnings,
    })
}

/// Parse and validate TOML text; relative file names resolve against `base`.
pub fn parse(text: &str, base: &Path) -> Result<Config, Vec<ConfigError>> {
    parse_with_warnings(text, base)
        .map(|(config, _)| config)
        .map_err(|p| p.errors)
}

/// [`parse`], with the warnings; on error, the errors and the warnings.
pub fn parse_with_warnings(
    text: &str,
    base: &Path,
) -> Result<(Config, Vec<ConfigError>), Problems> {
    let file = schema::read(text).map_err(|errors| Problems {
        errors,
        warnings: Vec::new(),
    })?;
    let mut v = Validator {
        errors: Vec::new(),
        warnings: Vec::new(),
        base,
    };
    let config = v.file(file);
    if v.errors.is_empty() {
        Ok((config, v.warnings))
    } else {
        Err(Problems {
            errors: v.errors,
            warnings: v.warnings,
        })
    }
}

/// Why [`parse_with_warnings`] refused a text: the errors, and the
/// warnings found alongside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigError>,
}

struct Validator<'a> {
    errors: Vec<ConfigError>,
    /// What can work later but not now (a CA file `kubeadm init` has not
    /// written yet): reported, not refused.
    warnings: Vec<ConfigError>,
    base: &'a Path,
}

impl Validator<'_> {
    fn error(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(ConfigError {
            key: key.into(),
            reason: reason.into(),
        });
    }

    fn warning(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.warnings.push(ConfigError {
            key: key.into(),
            reason: reason.into(),
        });
    }

    /// Parse `value` with `f`, recording an error under `key` on failure.
    fn check<T, E: fmt::Display>(&mut self, key: &str, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(key, e.to_string());
                None
            }
        }
    }

    fn file(&mut self, f: schema::File) -> Config {
        let speaker = self.speaker(f.speaker, f.peers.iter().any(|p| p.passive == Some(true)));
        let in_file = f.peers.len();
        // With their index in the file: a peer with errors is left out.
        let peers: Vec<(usize, Peer)> = f
            .peers
            .into_iter()
            .enumerate()
            .filter_map(|(i, p)| Some((i, self.peer(&format!("peer[{i}]"), p, &speaker)?)))
            .collect();
        for (n, (i, p)) in peers.iter().enumerate() {
            if let Some((j, _)) = peers[..n].iter().find(|(_, q)| q.address == p.address) {
                self.error(
                    format!("peer[{i}].address"),
                    format!("{} is already peer[{j}]", p.address),
                );
            }
        }
        // Names are known even for checks with errors, so a VIP that lists
        // a broken check is not also told that the check does not exist.
        let names: BTreeSet<String> = f.checks.keys().cloned().collect();
        let checks: Vec<Check> = f
            .checks
            .into_iter()
            .filter_map(|(name, c)| self.health_check(name, c))
            .collect();
        let mut used = BTreeSet::new();
        let vips: Vec<(usize, Vip)> = f
            .vips
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| Some((i, self.vip(&format!("vip[{i}]"), v, &names, &mut used)?)))
            .collect();
        for name in names.difference(&used) {
            self.error(
                format!("check.{name}"),
                "no [[vip]] lists this check: it would run and decide nothing; add it to a VIP's checks or remove it",
            );
        }
        for (n, (i, v)) in vips.iter().enumerate() {
            if let Some((j, _)) = vips[..n].iter().find(|(_, w)| w.prefix == v.prefix) {
                self.error(
                    format!("vip[{i}].prefix"),
                    format!("{} is already vip[{j}]", v.prefix),
                );
            }
        }
        // Only when every peer is known: a peer with an error may be the
        // one meant to carry the family.
        if peers.len() == in_file {
            for (i, v) in &vips {
                self.vip_has_a_peer(*i, v, &peers);
            }
        }
        let peers: Vec<Peer> = peers.into_iter().map(|(_, p)| p).collect();
        let vips: Vec<Vip> = vips.into_iter().map(|(_, v)| v).collect();
        let dataplane = self.dataplane(f.dataplane);
        let drain = self.drain(f.drain);
        let api = self.api(f.api);
        if peers.is_empty() && self.errors.is_empty() {
            self.error(
                "peer",
                "no [[peer]] configured: the VIP would be announced to no one",
            );
        }
        Config {
            speaker,
            peers,
            vips,
            checks,
            dataplane,
            drain,
            api,
        }
    }

    fn list<T, E: fmt::Display>(
        &mut self,
        key: &str,
        items: Option<Vec<String>>,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Vec<T> {
        items
            .unwrap_or_default()
            .iter()
            .enumerate()
            .filter_map(|(i, s)| self.check(&format!("{key}[{i}]"), parse(s)))
            .collect()
    }
}

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;
