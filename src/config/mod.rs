//! Database URLs, pool settings and SQLite options.
//!
//! The URL forms, parameters and ranges are documented on [`StoreConfig`].

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{Error, Result};

#[cfg(feature = "encryption")]
mod key;
mod libpq;
mod pool;
mod postgres;
#[cfg(feature = "postgres")]
mod redact;
mod url;

#[cfg(feature = "encryption")]
pub use key::Key;
pub use pool::{Checkpoint, PoolConfig, SqliteOptions};
pub use postgres::PostgresUrl;
#[cfg(feature = "postgres")]
pub(crate) use redact::redact;

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

/// Everything [`Store::open`](crate::Store::open) needs, parsed from a
/// database URL or built in code.
///
/// Accepted URL forms (a `+driver` suffix on the scheme, as in SQLAlchemy URLs,
/// is ignored):
///
/// | URL | store |
/// |---|---|
/// | `sqlite:///./dev.db`, `sqlite+aiosqlite:///./dev.db`, `sqlite:///dev.db` | SQLite file at the relative path `./dev.db` / `dev.db` |
/// | `sqlite:////abs/path.db` | SQLite file at the absolute path `/abs/path.db` |
/// | `sqlite://`, `sqlite:///:memory:` | in-memory SQLite, shared by the pool's connections |
/// | `memory://` | the pure-Rust in-memory backend |
/// | `postgres://…`, `postgresql://…`, `postgresql+asyncpg://…` | PostgreSQL (with the `postgres` feature) |
/// | `host=h port=5432 user=u password='p w' dbname=db` | PostgreSQL, as a libpq `key=value` string (values `'quoted'`, `\` escapes) |
///
/// In a PostgreSQL URL, `@`, `/`, `?`, `#` and `%` in the user name, the
/// password or anywhere else but their URL roles must be percent-encoded
/// (`%40`, `%2F`, `%3F`, `%23`, `%25`): a URL where an `@` could separate the
/// user info from the host at more than one place is refused rather than
/// guessed at.
///
/// # Secrets
///
/// A connection string may hold a password, in its user info or a
/// `password` parameter, or anywhere when it is malformed. Errors about a
/// connection string never echo it: they name the problem, the parameter
/// when it is a known one, and at most the scheme. `Debug` and `Display` of
/// `StoreConfig`, [`Location`] and [`PostgresUrl`] are built from the
/// parsed parts and show no password.
///
/// Query parameters `pool_size`, `max_overflow`, `pool_timeout` and
/// `pool_recycle` (seconds; `-1` turns recycling off) set the [`PoolConfig`];
/// `busy_timeout` and `slow_statement` (seconds) set
/// [`SqliteOptions::busy_timeout`] and [`SqliteOptions::slow_statement`] on
/// SQLite URLs, and `mmap_size` and `cache_size` (bytes)
/// [`SqliteOptions::mmap_size`] and [`SqliteOptions::cache_size`].
/// PostgreSQL URLs also take the libpq-style parameters the `postgres`
/// crate understands (`sslmode`, `connect_timeout`, `application_name`, …)
/// `sslrootcert` (see [`PostgresUrl::ssl_root_cert`]) and `schema` (see
/// [`PostgresUrl::schema`]; default `public`). Anything else is
/// refused with [`Error::InvalidInput`] naming it.
///
/// # Ranges
///
/// Every numeric setting has a range. A value outside it, from a URL or from
/// code, is refused with [`Error::InvalidInput`] naming the field before
/// anything is opened or written, whatever the backend (so that no setting
/// can make the process panic, abort or run out of memory or files):
///
/// | setting | URL parameter | range | default |
/// |---|---|---|---|
/// | [`PoolConfig::pool_size`] | `pool_size` | 1 to 100 | 10 |
/// | [`PoolConfig::max_overflow`] | `max_overflow` | 0 to 100 | 20 |
/// | [`PoolConfig::pool_timeout`] | `pool_timeout` (s) | 1 ms to one day (86 400 s) | 30 s |
/// | [`PoolConfig::pool_recycle`] | `pool_recycle` (s, `-1` for `None`) | 1 s to one day, or `None` | 1800 s |
/// | [`SqliteOptions::busy_timeout`] | `busy_timeout` (s) | 0 to one day, whole milliseconds | 5 s |
/// | [`SqliteOptions::statement_cache_capacity`] | – | 0 to 1000 | 64 |
/// | [`SqliteOptions::snapshots_kept`] | – | 0 to 100 | 3 |
/// | [`SqliteOptions::slow_statement`] | `slow_statement` (s) | 0 to one day, or `None` | `None` (off) |
/// | [`SqliteOptions::checkpoint`] | – | 1 to 1,000,000 pages | background, 1000 pages |
/// | [`SqliteOptions::mmap_size`] | `mmap_size` (bytes) | 0 to 2,147,418,112 | 0 (off) |
/// | [`SqliteOptions::cache_size`] | `cache_size` (bytes) | 262,144 to 1,073,741,824 | 16 MiB |
///
/// URL values in seconds are decimal numbers (`2.5`, `1e3`); counts are
/// whole numbers. `pool_size + max_overflow` is at most 200 connections:
/// about 400 open files for an SQLite file, well inside the 1024 a desktop
/// process is often allowed.
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

    /// Refuses a setting outside its documented range with
    /// [`Error::InvalidInput`] naming it, whatever the backend. Every way of
    /// opening a store goes through here: URLs (parsing ends with it),
    /// [`Store::open_with`](crate::Store::open_with) and the builder.
    pub(crate) fn validate(&self) -> Result<()> {
        self.pool.validate()?;
        #[cfg(feature = "encryption")]
        if self.sqlite.key.is_some() && !matches!(self.location, Location::SqliteFile(_)) {
            // A key ignored would leave the data unprotected without a word.
            return Err(Error::invalid(
                "key",
                format!(
                    "only SQLite database files are encrypted, not {}",
                    self.location
                ),
            ));
        }
        self.sqlite.validate()
    }
}

impl FromStr for StoreConfig {
    type Err = Error;

    /// Parses a database URL (see [`StoreConfig`] for the forms).
    fn from_str(url: &str) -> Result<Self> {
        url::parse_url(url)
    }
}
