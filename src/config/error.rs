//! What a configuration problem looks like: the key path and the reason,
//! and how serde's and TOML's errors become one.

use std::fmt;
use std::path::PathBuf;

use super::schema;

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
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} error(s)", self.file.display(), self.errors.len())?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

pub(super) fn deserialize(text: &str) -> Result<schema::File, Vec<ConfigError>> {
    let de = toml::Deserializer::parse(text).map_err(|e| vec![toml_error(text, "(syntax)", &e)])?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = match e.path().to_string() {
            p if p == "." => "(top level)".to_string(),
            p => p,
        };
        vec![toml_error(text, &key, e.inner())]
    })
}

fn toml_error(text: &str, key: &str, e: &toml::de::Error) -> ConfigError {
    let line = e
        .span()
        .map(|s| text.get(..s.start).unwrap_or("").matches('\n').count() + 1);
    let message = e.message().trim().to_string();
    ConfigError {
        key: key.to_string(),
        reason: match line {
            Some(l) => format!("{message} (line {l})"),
            None => message,
        },
    }
}
