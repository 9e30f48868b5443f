//! The TLS settings of an `https` check: the CA, the client certificate
//! and key, and the name to verify.
//!
//! A PEM file that cannot be read is a warning, not an error: before
//! `kubeadm init` has run, `/etc/kubernetes/pki/ca.crt` does not exist yet,
//! and anyvip must start anyway (and announce the VIP as soon as the
//! apiserver it brings up is healthy). The check then fails, naming the
//! file, and reads it again at each probe until it can. A file that is
//! there but is not what it should be is an error.

use std::fmt;
use std::path::PathBuf;

use super::schema;

#[derive(Debug, Clone, PartialEq)]
pub struct Tls {
    /// The CA certificates to trust; `None` only with `insecure_skip_verify`.
    pub ca: Option<PemFile>,
    /// Client certificate chain and its key.
    pub client_auth: Option<(PemFile, PemFile)>,
    pub insecure_skip_verify: bool,
    /// Verify the certificate against this name instead of the URL's host.
    pub server_name: Option<String>,
}

impl Tls {
    /// Whether every PEM file was read at load time.
    pub fn all_read(&self) -> bool {
        self.ca.iter().all(|f| f.pem.is_some())
            && self
                .client_auth
                .iter()
                .all(|(c, k)| c.pem.is_some() && k.pem.is_some())
    }
}

/// A PEM file as read at load time. Its `Debug` shows no contents (it may
/// hold a private key).
#[derive(Clone, PartialEq, Eq)]
pub struct PemFile {
    pub path: PathBuf,
    /// `None`: it could not be read when the configuration was loaded.
    pub pem: Option<Vec<u8>>,
}

impl fmt::Debug for PemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pem {
            Some(pem) => write!(f, "PemFile({}, {} bytes)", self.path.display(), pem.len()),
            None => write!(f, "PemFile({}, not read)", self.path.display()),
        }
    }
}

impl super::Validator<'_> {
    pub(super) fn tls(&mut self, key: &str, c: &schema::Check) -> Option<Tls> {
        let before = self.errors.len();
        let insecure_skip_verify = c.insecure_skip_verify.unwrap_or(false);
        match (&c.ca_file, insecure_skip_verify) {
            (None, false) => self.error(
                format!("{key}.ca_file"),
                "required for https: the CA that signed the server's certificate (e.g. /etc/kubernetes/pki/ca.crt), or set insecure_skip_verify = true",
            ),
            (Some(_), true) => self.error(
                format!("{key}.insecure_skip_verify"),
                "cannot be combined with ca_file: either verify against the CA or skip verification",
            ),
            _ => {}
        }
        let ca = c
            .ca_file
            .as_deref()
            .and_then(|f| self.pem_file(&format!("{key}.ca_file"), f));
        let client_auth = match (&c.client_cert, &c.client_key) {
            (Some(cert), Some(k)) => {
                let cert = self.pem_file(&format!("{key}.client_cert"), cert);
                let k = self.pem_file(&format!("{key}.client_key"), k);
                cert.zip(k)
            }
            (Some(_), None) => {
                self.error(format!("{key}.client_key"), "required with client_cert");
                None
            }
            (None, Some(_)) => {
                self.error(format!("{key}.client_cert"), "required with client_key");
                None
            }
            (None, None) => None,
        };
        if let Some(n) = &c.server_name {
            if rustls_pki_types::ServerName::try_from(n.as_str()).is_err() {
                self.error(
                    format!("{key}.server_name"),
                    format!("\"{n}\" is not a DNS name or an IP address"),
                );
            }
        }
        if self.errors.len() > before {
            return None;
        }
        let tls = Tls {
            ca,
            client_auth,
            insecure_skip_verify,
            server_name: c.server_name.clone(),
        };
        // Build it once here, so `check-config` finds a bad certificate or
        // a key that does not match, not the first probe: from the files
        // that could be read (the others are warnings, checked by the
        // first probe that can read them).
        let mut readable = tls.clone();
        if readable.ca.as_ref().is_some_and(|f| f.pem.is_none()) {
            readable.ca = None;
            readable.insecure_skip_verify = true;
        }
        if readable
            .client_auth
            .as_ref()
            .is_some_and(|(c, k)| c.pem.is_none() || k.pem.is_none())
        {
            readable.client_auth = None;
        }
        if let Err((k, reason)) = crate::health::http::client_config(&readable) {
            self.error(format!("{key}.{k}"), reason);
            return None;
        }
        Some(tls)
    }

    fn pem_file(&mut self, key: &str, file: &str) -> Option<PemFile> {
        if file.is_empty() {
            self.error(key, "must not be empty: the path of a PEM file");
            return None;
        }
        let path = self.base.join(file);
        match std::fs::read(&path) {
            Ok(pem) => Some(PemFile {
                path,
                pem: Some(pem),
            }),
            Err(e) => {
                self.warning(
                    key,
                    format!(
                        "cannot read {}: {e}; the check fails, and reads it again at each probe, until it can",
                        path.display()
                    ),
                );
                Some(PemFile { path, pem: None })
            }
        }
    }
}
