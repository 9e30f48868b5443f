//! What a configuration problem looks like: the key path and the reason,
//! and how serde's and TOML's errors become one.

use std::fmt;
use std::path::PathBuf;

/// One problem in the configuration: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// Every problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub errors: Vec<ConfigError>,
    /// Found alongside: reported, but not what refused the file.
    pub warnings: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} error(s)", self.file.display(), self.errors.len())?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        for w in &self.warnings {
            write!(f, "\n  warning: {w}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A TOML or serde error under `key`, with its line. `more` adds that
/// other problems in the same table may follow: serde stops at the first.
pub(super) fn toml_error(text: &str, key: &str, e: &toml::de::Error, more: bool) -> ConfigError {
    let line = e
        .span()
        .map(|s| text.get(..s.start).unwrap_or("").matches('\n').count() + 1);
    let message = plain_types(e.message().trim());
    let message = match (line, more) {
        (Some(l), true) => {
            format!("{message} (line {l}; fix this first, others in this table may follow)")
        }
        (None, true) => format!("{message} (fix this first, others in this table may follow)"),
        (Some(l), false) => format!("{message} (line {l})"),
        (None, false) => message,
    };
    ConfigError {
        key: key.to_string(),
        reason: message,
    }
}

/// serde names Rust types ("expected u8"); say what they allow instead.
fn plain_types(message: &str) -> String {
    [
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        ),
        ("expected a boolean", "expected true or false"),
    ]
    .iter()
    .fold(message.to_string(), |m, (rust, plain)| {
        m.replace(rust, plain)
    })
}
