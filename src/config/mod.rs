//! Database URLs, pool settings and SQLite options.
//!
//! Accepted URL forms (a `+driver` suffix on the scheme, as in SQLAlchemy URLs,
//! is ignored):
//!
//! | URL | store |
//! |---|---|
//! | `sqlite:///./dev.db`, `sqlite+aiosqlite:///./dev.db`, `sqlite:///dev.db` | SQLite file at the relative path `./dev.db` / `dev.db` |
//! | `sqlite:////abs/path.db` | SQLite file at the absolute path `/abs/path.db` |
//! | `sqlite://`, `sqlite:///:memory:` | in-memory SQLite, shared by the pool's connections |
//! | `memory://` | the pure-Rust in-memory backend |
//! | `postgres://…`, `postgresql://…`, `postgresql+asyncpg://…` | PostgreSQL (with the `postgres` feature) |
//!
//! Query parameters `pool_size`, `max_overflow`, `pool_timeout` and
//! `pool_recycle` (seconds; `-1` turns recycling off) set the [`PoolConfig`];
//! `busy_timeout` (seconds) sets [`SqliteOptions::busy_timeout`] on SQLite
//! URLs. PostgreSQL URLs also take the libpq-style parameters the `postgres`
//! crate understands (`sslmode`, `connect_timeout`, `application_name`, …)
//! and `sslrootcert` (see [`PostgresUrl::ssl_root_cert`]). Anything else is
//! refused with [`Error::InvalidInput`] naming it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{Error, Result};

mod pool;
mod postgres;
mod redact;
mod url;

pub use pool::{PoolConfig, SqliteOptions};
pub use postgres::PostgresUrl;
pub use redact::redact;

/// Where the data lives, parsed from a database URL.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// The pure-Rust in-memory backend (`memory://`).
    Memory,
    /// An SQLite database file.
    SqliteFile(PathBuf),
    /// An in-memory SQLite database, shared by all connections of the store's
    /// pool (SQLite's `memdb` VFS). It has no WAL: while a write transaction
    /// is open, readers wait for it (up to the busy timeout).
    SqliteMemory,
    /// A PostgreSQL server. The URL is kept whole (it may hold a password) and
    /// never shown: `Debug` and `Display` mask the password.
    Postgres(PostgresUrl),
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Memory => f.write_str("Memory"),
            Location::SqliteFile(path) => f.debug_tuple("SqliteFile").field(path).finish(),
            Location::SqliteMemory => f.write_str("SqliteMemory"),
            Location::Postgres(url) => f.debug_tuple("Postgres").field(url).finish(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Memory => f.write_str("memory://"),
            Location::SqliteFile(path) => write!(f, "sqlite file {}", path.display()),
            Location::SqliteMemory => f.write_str("sqlite in-memory"),
            Location::Postgres(url) => fmt::Display::fmt(url, f),
        }
    }
}

/// Everything [`Store::open`](crate::Store::open) needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Which database.
    pub location: Location,
    /// Pool settings (SQL backends).
    pub pool: PoolConfig,
    /// SQLite settings.
    pub sqlite: SqliteOptions,
    /// Apply pending migrations when the store opens. Default `true`.
    pub migrate_on_open: bool,
}

impl StoreConfig {
    /// A configuration for `location` with every default.
    pub fn new(location: Location) -> Self {
        StoreConfig {
            location,
            pool: PoolConfig::default(),
            sqlite: SqliteOptions::default(),
            migrate_on_open: true,
        }
    }
}

impl FromStr for StoreConfig {
    type Err = Error;

    /// Parses a database URL (see the [module docs](self) for the forms).
    fn from_str(url: &str) -> Result<Self> {
        url::parse_url(url)
    }
}
