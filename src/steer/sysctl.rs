//! The few `net.ipv4.conf.*` values anyvip needs, read and raised through
//! `/proc/sys` of the caller's network namespace (the namespace of the
//! calling thread when the file is opened).
//!
//! Values are only ever raised to what anyvip needs, never lowered, and never
//! restored: a stricter value that an operator (or kube-proxy) chose stays.

use std::fmt;
use std::io;
use std::path::PathBuf;

const CONF: &str = "/proc/sys/net/ipv4/conf";

/// One value anyvip changed, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysctlChange {
    /// `net.ipv4.conf.<interface>.<name>`
    pub key: String,
    pub from: u32,
    pub to: u32,
}

impl fmt::Display for SysctlChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} -> {}", self.key, self.from, self.to)
    }
}

/// A sysctl that could not be read or set, named.
#[derive(Debug, thiserror::Error)]
#[error(
    "sysctl {key}: {source} (set it in /etc/sysctl.d instead, or give anyvip a writable /proc/sys)"
)]
pub struct SysctlError {
    pub key: String,
    #[source]
    pub source: io::Error,
}

fn key(interface: &str, name: &str) -> String {
    format!("net.ipv4.conf.{interface}.{name}")
}

fn path(interface: &str, name: &str) -> PathBuf {
    // Interface names may contain dots (VLANs): build the path from parts.
    [CONF, interface, name].iter().collect()
}

pub(crate) fn read(interface: &str, name: &str) -> Result<u32, SysctlError> {
    let fail = |source| SysctlError {
        key: key(interface, name),
        source,
    };
    let text = std::fs::read_to_string(path(interface, name)).map_err(fail)?;
    text.trim()
        .parse()
        .map_err(|_| fail(io::Error::new(io::ErrorKind::InvalidData, text.trim())))
}

/// Set `interface`'s `name` to `to` if `replace(current)` says so.
pub(crate) fn set_if(
    interface: &str,
    name: &str,
    to: u32,
    replace: impl Fn(u32) -> bool,
) -> Result<Option<SysctlChange>, SysctlError> {
    let from = read(interface, name)?;
    if !replace(from) {
        return Ok(None);
    }
    std::fs::write(path(interface, name), format!("{to}\n")).map_err(|source| SysctlError {
        key: key(interface, name),
        source,
    })?;
    Ok(Some(SysctlChange {
        key: key(interface, name),
        from,
        to,
    }))
}

/// `all`, `default` and every interface of the namespace.
pub(crate) fn interfaces() -> Result<Vec<String>, SysctlError> {
    let fail = |source| SysctlError {
        key: "net.ipv4.conf".to_string(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(CONF).map_err(fail)? {
        let entry = entry.map_err(fail)?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}
