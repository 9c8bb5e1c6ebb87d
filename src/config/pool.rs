//! Pool and SQLite settings.

use std::time::Duration;

use crate::error::{Error, Result};

/// Connection pool settings, named and defaulted as in the original plan
/// (SQLAlchemy's `create_engine`).
///
/// Mapped onto r2d2 as `max_size = pool_size + max_overflow`,
/// `min_idle = pool_size`, `connection_timeout = pool_timeout`,
/// `max_lifetime = pool_recycle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Connections kept open while idle. Default 10.
    pub pool_size: u32,
    /// Extra connections opened under load. Default 20.
    pub max_overflow: u32,
    /// How long a call waits for a free connection before
    /// [`Error::Unavailable`]. Default 30 s.
    pub pool_timeout: Duration,
    /// Connections older than this are closed and replaced; `None` keeps them.
    /// Default 1800 s.
    pub pool_recycle: Option<Duration>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            pool_size: 10,
            max_overflow: 20,
            pool_timeout: Duration::from_secs(30),
            pool_recycle: Some(Duration::from_secs(1800)),
        }
    }
}

impl PoolConfig {
    /// Most connections open at once: `pool_size + max_overflow`.
    pub fn max_size(&self) -> u32 {
        self.pool_size.saturating_add(self.max_overflow)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.pool_size == 0 {
            return Err(Error::invalid("pool_size", "must be at least 1"));
        }
        if self.pool_timeout.is_zero() {
            return Err(Error::invalid("pool_timeout", "must be more than zero"));
        }
        if self.pool_recycle.is_some_and(|d| d.is_zero()) {
            return Err(Error::invalid(
                "pool_recycle",
                "must be more than zero (or None to keep connections)",
            ));
        }
        Ok(())
    }
}

/// Settings of the SQLite backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// How long a connection waits for another's write lock before
    /// [`Error::Unavailable`]. Default 5 s.
    pub busy_timeout: Duration,
    /// Prepared statements cached per connection. Default 64.
    pub statement_cache_capacity: usize,
    /// Refuse to open a database file that cannot use the WAL journal (for
    /// example on some network file systems). Default `true`. With `false`
    /// the store logs a warning and keeps the journal mode SQLite gives it.
    pub require_wal: bool,
    /// How many snapshots of a database file to keep: before migrations run
    /// on a file that holds data, it is copied beside itself
    /// (`<file>.v<version>-<time>.snapshot`) and older copies beyond this
    /// number are removed. Default 3; 0 takes none.
    pub snapshots_kept: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_secs(5),
            statement_cache_capacity: 64,
            require_wal: true,
            snapshots_kept: 3,
        }
    }
}
