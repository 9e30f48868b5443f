//! `[api]`: where the control socket and the metrics endpoint listen.
//!
//! ```toml
//! [api]
//! # The control and status API (`anyvip status`, `drain`, `resume`,
//! # `reload`): HTTP on a unix socket. Its file mode is the access control:
//! # whoever can write to it can drain the VIP.
//! socket = "/run/anyvip/anyvip.sock"   # the default
//! socket_mode = "0660"                 # the default: owner and group
//! # Prometheus metrics over plain HTTP (GET /metrics), off unless set.
//! # Bind it to localhost or a management address, never to an address
//! # the outside can reach: the metrics tell who the peers are.
//! metrics = "127.0.0.1:9379"
//! ```
//!
//! These settings are read when anyvip starts; a reload does not move the
//! socket or the metrics listener.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// Where `anyvip run` listens and `anyvip status` connects by default.
pub const DEFAULT_SOCKET: &str = "/run/anyvip/anyvip.sock";
/// Owner and group may use the socket; others may not.
pub const DEFAULT_SOCKET_MODE: u32 = 0o660;
/// `sockaddr_un.sun_path` is 108 bytes, including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// The `[api]` table as written.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Schema {
    pub socket: Option<String>,
    pub socket_mode: Option<String>,
    pub metrics: Option<String>,
}

/// `[api]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    /// The control socket (absolute path).
    pub socket: PathBuf,
    /// Its permission bits.
    pub socket_mode: u32,
    /// The Prometheus endpoint, if any.
    pub metrics: Option<SocketAddr>,
}

impl Default for Api {
    fn default() -> Api {
        Api {
            socket: PathBuf::from(DEFAULT_SOCKET),
            socket_mode: DEFAULT_SOCKET_MODE,
            metrics: None,
        }
    }
}

impl super::Validator<'_> {
    pub(super) fn api(&mut self, a: Option<Schema>) -> Api {
        let mut api = Api::default();
        let Some(a) = a else {
            return api;
        };
        if let Some(s) = a.socket {
            if let Some(p) = self.check("api.socket", socket_path(&s)) {
                api.socket = p;
            }
        }
        if let Some(m) = a.socket_mode {
            if let Some(m) = self.check("api.socket_mode", socket_mode(&m)) {
                api.socket_mode = m;
            }
        }
        api.metrics = a
            .metrics
            .and_then(|m| self.check("api.metrics", metrics_address(&m)));
        api
    }
}

fn socket_path(s: &str) -> Result<PathBuf, String> {
    if !s.starts_with('/') {
        return Err(format!(
            "\"{s}\" is not an absolute path (e.g. \"{DEFAULT_SOCKET}\")"
        ));
    }
    if s.ends_with('/') {
        return Err(format!(
            "\"{s}\" is a directory: name the socket file in it"
        ));
    }
    if s.contains('\0') {
        return Err("must not contain NUL".to_string());
    }
    if s.len() > MAX_SOCKET_PATH {
        return Err(format!(
            "\"{s}\" is {} bytes: a unix socket path is at most {MAX_SOCKET_PATH}",
            s.len()
        ));
    }
    Ok(PathBuf::from(s))
}

/// Octal permission bits as a string ("0660", "660", "0o660"). Bits for
/// others to write are refused: anyone on the node could drain the VIP.
fn socket_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    let mode = (!digits.is_empty() && digits.len() <= 4)
        .then(|| u32::from_str_radix(digits, 8).ok())
        .flatten()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| {
            format!("\"{s}\" is not a file mode: octal permission bits like \"0660\"")
        })?;
    if mode & 0o002 != 0 {
        return Err(format!(
            "\"{s}\" lets every local user write to the socket (and so drain the VIP); use \"0660\" and a group"
        ));
    }
    if mode & 0o600 != 0o600 {
        return Err(format!(
            "\"{s}\": the owner (anyvip itself) needs read and write (0600)"
        ));
    }
    Ok(mode)
}

fn metrics_address(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>().map_err(|_| {
        format!(
            "\"{s}\" is not address:port (e.g. \"127.0.0.1:9379\" or \"[::1]:9379\"; a localhost or management address)"
        )
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::parse;
    use super::*;

    const BASE: &str = r#"
[speaker]
asn = 65001
router_id = "192.0.2.11"

[[peer]]
address = "192.0.2.1"
asn = 65000

[[vip]]
prefix = "192.0.2.100/32"
always = true
"#;

    fn with_api(api: &str) -> Result<Api, Vec<String>> {
        parse(&format!("{BASE}\n[api]\n{api}\n"), Path::new("."))
            .map(|c| c.api)
            .map_err(|e| e.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn defaults_without_the_table() {
        let c = parse(BASE, Path::new(".")).unwrap();
        assert_eq!(c.api, Api::default());
        assert_eq!(c.api.socket, Path::new("/run/anyvip/anyvip.sock"));
        assert_eq!(c.api.socket_mode, 0o660);
        assert_eq!(c.api.metrics, None);
        assert_eq!(with_api("").unwrap(), Api::default());
    }

    #[test]
    fn every_key() {
        let a = with_api(
            "socket = \"/run/x/y.sock\"\nsocket_mode = \"0600\"\nmetrics = \"[::1]:9379\"",
        )
        .unwrap();
        assert_eq!(a.socket, Path::new("/run/x/y.sock"));
        assert_eq!(a.socket_mode, 0o600);
        assert_eq!(a.metrics, Some("[::1]:9379".parse().unwrap()));
        assert_eq!(
            with_api("socket_mode = \"660\"").unwrap().socket_mode,
            0o660
        );
        assert_eq!(
            with_api("socket_mode = \"0o640\"").unwrap().socket_mode,
            0o640
        );
    }

    #[test]
    fn errors_name_the_key_and_why() {
        for (text, needle) in [
            (
                "socket = \"anyvip.sock\"",
                "api.socket: \"anyvip.sock\" is not an absolute path",
            ),
            (
                "socket = \"/run/anyvip/\"",
                "api.socket: \"/run/anyvip/\" is a directory",
            ),
            (
                "socket_mode = \"0666\"",
                "api.socket_mode: \"0666\" lets every local user write",
            ),
            (
                "socket_mode = \"0460\"",
                "api.socket_mode: \"0460\": the owner",
            ),
            (
                "socket_mode = \"rw-rw----\"",
                "api.socket_mode: \"rw-rw----\" is not a file mode",
            ),
            ("socket_mode = \"1777\"", "is not a file mode"),
            (
                "metrics = \"127.0.0.1\"",
                "api.metrics: \"127.0.0.1\" is not address:port",
            ),
            (
                "metrics = \"localhost:9379\"",
                "api.metrics: \"localhost:9379\" is not address:port",
            ),
        ] {
            let e = with_api(text).expect_err(text);
            assert!(e.len() == 1 && e[0].contains(needle), "{text}: {e:?}");
        }
        let long = format!("socket = \"/{}\"", "s".repeat(120));
        let e = with_api(&long).unwrap_err();
        assert!(e[0].contains("at most 107"), "{e:?}");
        // Decimal integers are a trap (660 would be 0o1224): a string only.
        let e = with_api("socket_mode = 660").unwrap_err();
        assert!(e[0].starts_with("api.socket_mode"), "{e:?}");
        let e = with_api("listen = \"x\"").unwrap_err();
        assert!(e[0].starts_with("api") && e[0].contains("listen"), "{e:?}");
    }
}
