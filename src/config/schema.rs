//! The TOML file as written: every table and key, with serde rejecting
//! unknown ones. Validation into the typed [`super::Config`] is separate, so
//! that all problems can be reported at once with their key paths.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub speaker: Speaker,
    #[serde(default, rename = "peer")]
    pub peers: Vec<Peer>,
    #[serde(default, rename = "vip")]
    pub vips: Vec<Vip>,
    /// `[check.NAME]` tables, by name.
    #[serde(default, rename = "check")]
    pub checks: BTreeMap<String, Check>,
    pub dataplane: Option<Dataplane>,
    pub drain: Option<Drain>,
    pub api: Option<super::api::Schema>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drain {
    pub delay: Option<String>,
    pub prepend: Option<u8>,
    pub med: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataplane {
    pub manage: Option<bool>,
    pub interface: Option<String>,
    pub guard: Option<String>,
    pub keep_guard_on_stop: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Steer {
    pub port: u16,
    pub to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Speaker {
    pub asn: u32,
    pub router_id: String,
    /// Addresses to accept passive sessions on; default: the wildcard
    /// addresses on port 179, only if some peer is passive.
    pub listen: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
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
}

#[derive(Debug, Deserialize)]
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
