//! The TOML file as written: every table and key, with serde rejecting
//! unknown ones. Validation into the typed [`super::Config`] is separate, so
//! that all problems can be reported at once with their key paths.
//!
//! serde stops at the first error of what it deserializes, so [`read`]
//! hands it one table at a time (each `[[peer]]`, each `[check.NAME]`, ...):
//! a type error in one table does not hide those in the others.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::error::{toml_error, ConfigError};

/// The top-level tables, in the order the documentation gives them.
const TABLES: &str = "speaker, peer, vip, check, dataplane, drain, api";

/// Parse `text` into its tables, or every syntax and type error found.
pub fn read(text: &str) -> Result<File, Vec<ConfigError>> {
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        return Err(syntax
            .iter()
            .map(|e| toml_error(text, "(syntax)", e, false))
            .collect());
    }
    let mut errors = Vec::new();
    let mut speaker = None;
    let mut file = File {
        // Replaced below; `speaker` says whether it was there.
        speaker: Speaker {
            asn: 0,
            router_id: None,
            listen: None,
        },
        peers: Vec::new(),
        vips: Vec::new(),
        checks: BTreeMap::new(),
        dataplane: None,
        drain: None,
        api: None,
    };
    let mut r = Reader {
        text,
        errors: &mut errors,
    };
    for (key, value) in root.get_ref().iter() {
        match key.get_ref().as_ref() {
            "speaker" => speaker = r.one("speaker", value),
            "peer" => file.peers = r.array("peer", value),
            "vip" => file.vips = r.array("vip", value),
            "check" => file.checks = r.named("check", value),
            "dataplane" => file.dataplane = r.one("dataplane", value),
            "drain" => file.drain = r.one("drain", value),
            "api" => file.api = r.one("api", value),
            other => r.errors.push(ConfigError {
                // `"" = 1` is a valid TOML key; an error must still name
                // it (found by the config fuzz target).
                key: if other.is_empty() {
                    "\"\"".to_string()
                } else {
                    other.to_string()
                },
                reason: format!("unknown table; the tables are {TABLES}"),
            }),
        }
    }
    match speaker {
        Some(s) => file.speaker = s,
        None if !root.get_ref().keys().any(|k| k.get_ref() == "speaker") => {
            errors.push(ConfigError {
                key: "speaker".to_string(),
                reason: "missing: every file has a [speaker] table (asn)".to_string(),
            })
        }
        None => {}
    }
    if errors.is_empty() {
        Ok(file)
    } else {
        Err(errors)
    }
}

struct Reader<'t, 'e> {
    text: &'t str,
    errors: &'e mut Vec<ConfigError>,
}

impl Reader<'_, '_> {
    /// One table (or value) as `T`, its errors under `key`.
    fn one<T: DeserializeOwned>(&mut self, key: &str, value: &Spanned<DeValue<'_>>) -> Option<T> {
        let de = ValueDeserializer::from(value.clone());
        match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(v) => Some(v),
            Err(e) => {
                let path = e.path().to_string();
                let full = match path.as_str() {
                    "." => key.to_string(),
                    p if p.starts_with('[') => format!("{key}{p}"),
                    p => format!("{key}.{p}"),
                };
                self.errors
                    .push(toml_error(self.text, &full, e.inner(), true));
                None
            }
        }
    }

    /// `[[key]]`: each table on its own, as `key[i]`.
    fn array<T: DeserializeOwned>(&mut self, key: &str, value: &Spanned<DeValue<'_>>) -> Vec<T> {
        match value.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| self.one(&format!("{key}[{i}]"), v))
                .collect(),
            _ => self.one(key, value).unwrap_or_default(),
        }
    }

    /// `[key.NAME]`: each table on its own, as `key.NAME`.
    fn named<T: DeserializeOwned>(
        &mut self,
        key: &str,
        value: &Spanned<DeValue<'_>>,
    ) -> BTreeMap<String, T> {
        match value.get_ref() {
            DeValue::Table(t) => t
                .iter()
                .filter_map(|(name, v)| {
                    let name = name.get_ref().to_string();
                    let parsed = self.one(&format!("{key}.{name}"), v)?;
                    Some((name, parsed))
                })
                .collect(),
            _ => self.one(key, value).unwrap_or_default(),
        }
    }
}

/// The whole file. [`read`] fills it table by table; the schema derived
/// for tests names the tables as the file does (`super::reference` checks
/// docs/configuration.md against it).
#[derive(Debug)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
pub struct File {
    pub speaker: Speaker,
    #[cfg_attr(test, schemars(rename = "peer"))]
    pub peers: Vec<Peer>,
    #[cfg_attr(test, schemars(rename = "vip"))]
    pub vips: Vec<Vip>,
    /// `[check.NAME]` tables, by name.
    #[cfg_attr(test, schemars(rename = "check"))]
    pub checks: BTreeMap<String, Check>,
    pub dataplane: Option<Dataplane>,
    pub drain: Option<Drain>,
    pub api: Option<super::api::Schema>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Drain {
    pub delay: Option<String>,
    pub prepend: Option<u8>,
    pub med: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Dataplane {
    pub manage: Option<bool>,
    pub interface: Option<String>,
    pub guard: Option<String>,
    pub keep_guard_on_stop: Option<bool>,
    pub reconcile_interval: Option<String>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Steer {
    pub port: u16,
    pub to: String,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Speaker {
    pub asn: u32,
    /// An IPv4 address, or "auto" (the same as leaving it out): derived
    /// from the node (`super::router_id`).
    pub router_id: Option<String>,
    /// Addresses to accept passive sessions on; default: the wildcard
    /// addresses on port 179, only if some peer is passive.
    pub listen: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Peer {
    pub name: Option<String>,
    pub address: String,
    pub asn: u32,
    pub port: Option<u16>,
    pub local_address: Option<String>,
    pub passive: Option<bool>,
    pub multihop: Option<u8>,
    pub ttl_security: Option<bool>,
    pub password_file: Option<String>,
    pub hold_time: Option<String>,
    pub keepalive: Option<String>,
    pub connect_retry: Option<String>,
    pub families: Option<Vec<String>>,
    pub next_hop_v4: Option<String>,
    pub next_hop_v6: Option<String>,
    pub bfd: Option<Bfd>,
}

/// `bfd = true` / `false`, or `bfd = { interval = "100ms", multiplier = 3 }`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(
    untagged,
    expecting = "true, false or a table like { interval = \"300ms\", multiplier = 3 } (keys: interval, multiplier)"
)]
pub enum Bfd {
    On(bool),
    Timers(BfdTimers),
}

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct BfdTimers {
    pub interval: Option<String>,
    /// Wider than u8 so that 0 and 256 get the range error, not a type one.
    pub multiplier: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Vip {
    pub prefix: String,
    pub always: Option<bool>,
    pub checks: Option<Vec<String>>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub prepend: Option<u8>,
    pub communities: Option<Vec<String>>,
    pub large_communities: Option<Vec<String>>,
    pub extended_communities: Option<Vec<String>>,
    pub steer: Option<Steer>,
}

/// One named health check. Exactly one of the kind keys (`https`, `http`,
/// `tcp`, `exec`, `file`) is set; the HTTP keys apply to `https`/`http` only.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub https: Option<String>,
    pub http: Option<String>,
    pub tcp: Option<String>,
    pub exec: Option<Vec<String>>,
    pub file: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
    pub ca_file: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    pub insecure_skip_verify: Option<bool>,
    pub server_name: Option<String>,
    pub expected_status: Option<Vec<u16>>,
    pub expect_body: Option<String>,
}
