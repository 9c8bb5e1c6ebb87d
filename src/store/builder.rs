//! [`StoreBuilder`], and where [`Store::from_env`] finds its URL.

use super::Store;
use crate::config::{PoolConfig, SqliteOptions, StoreConfig};
use crate::error::{Error, Result};

/// The URL [`Store::from_env`] uses when `DATABASE_URL` is not set: an SQLite
/// file `dev.db` in the working directory, as in the original plan.
pub const DEFAULT_URL: &str = "sqlite:///./dev.db";

/// Builds a [`Store`] with settings beyond the URL.
///
/// Settings given here override those of the URL's query parameters.
///
/// ```
/// use silmari_store::{PoolConfig, Store};
///
/// # #[cfg(feature = "sqlite")]
/// # fn main() -> silmari_store::Result<()> {
/// let store = Store::builder()
///     .url("sqlite://")
///     .pool(PoolConfig { pool_size: 2, max_overflow: 2, ..PoolConfig::default() })
///     .migrate_on_open(true)
///     .open()?;
/// assert_eq!(store.backend(), silmari_store::BackendKind::Sqlite);
/// # Ok(()) }
/// # #[cfg(not(feature = "sqlite"))]
/// # fn main() {}
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct StoreBuilder {
    url: Option<String>,
    pool: Option<PoolConfig>,
    sqlite: Option<SqliteOptions>,
    #[cfg(feature = "encryption")]
    key: Option<crate::config::Key>,
    migrate_on_open: Option<bool>,
}

impl StoreBuilder {
    /// The database URL; [`DEFAULT_URL`] if never set.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Pool settings.
    pub fn pool(mut self, pool: PoolConfig) -> Self {
        self.pool = Some(pool);
        self
    }

    /// SQLite settings.
    pub fn sqlite(mut self, options: SqliteOptions) -> Self {
        self.sqlite = Some(options);
        self
    }

    /// The key of an encrypted SQLite file (the `encryption` feature): sets
    /// [`SqliteOptions::key`], also over options given by
    /// [`sqlite`](Self::sqlite) in either order.
    #[cfg(feature = "encryption")]
    pub fn key(mut self, key: crate::config::Key) -> Self {
        self.key = Some(key);
        self
    }

    /// Whether to apply pending migrations on open (default `true`). When
    /// off, call [`Migrations::up`](crate::Migrations::up) before using a fresh database.
    pub fn migrate_on_open(mut self, migrate: bool) -> Self {
        self.migrate_on_open = Some(migrate);
        self
    }

    /// The configuration this builder describes.
    pub fn config(&self) -> Result<StoreConfig> {
        let mut config: StoreConfig = self.url.as_deref().unwrap_or(DEFAULT_URL).parse()?;
        if let Some(pool) = self.pool {
            config.pool = pool;
        }
        if let Some(sqlite) = &self.sqlite {
            config.sqlite = sqlite.clone();
        }
        #[cfg(feature = "encryption")]
        if let Some(key) = &self.key {
            config.sqlite.key = Some(key.clone());
        }
        if let Some(migrate) = self.migrate_on_open {
            config.migrate_on_open = migrate;
        }
        Ok(config)
    }

    /// Opens the store.
    pub fn open(self) -> Result<Store> {
        Store::open_with(self.config()?)
    }
}

pub(super) fn url_from_env() -> Result<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(url),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(DEFAULT_URL.to_owned()),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(Error::invalid("DATABASE_URL", "is not valid Unicode"))
        }
    }
}
