//! [`PostgresUrl`]: a PostgreSQL URL that never shows its password.

use std::fmt;

use super::redact;

/// A PostgreSQL connection URL (normalized to `postgresql://`), with the
/// store's own query parameters taken out. Shown with the password masked.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    pub(super) url: String,
    pub(super) root_cert: Option<String>,
}

impl PostgresUrl {
    /// The full URL, password included: pass it only to the driver.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// The `sslrootcert` parameter: a PEM file of trusted certificate
    /// authorities, or `system` for the operating system's. When set, the
    /// server's certificate and host name are verified (feature
    /// `postgres-tls`).
    pub fn ssl_root_cert(&self) -> Option<&str> {
        self.root_cert.as_deref()
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.url))
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresUrl")
            .field("url", &redact(&self.url))
            .field("ssl_root_cert", &self.root_cert)
            .finish()
    }
}
