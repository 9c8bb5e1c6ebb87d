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
use std::time::Duration;

use crate::error::{Error, Result};

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

/// A PostgreSQL connection URL (normalized to `postgresql://`), with the
/// store's own query parameters taken out. Shown with the password masked.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    url: String,
    root_cert: Option<String>,
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

/// `url` with the password of its user info, and any `password` query
/// parameter, replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let authority_end = before_query.find('/').unwrap_or(before_query.len());
    let (authority, path) = before_query.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let mut out = format!("{scheme}://{authority}{path}");
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

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
        parse_url(url)
    }
}

fn malformed(url: &str, reason: impl fmt::Display) -> Error {
    Error::invalid("url", format!("{}: {reason}", redact(url)))
}

fn parse_url(url: &str) -> Result<StoreConfig> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| malformed(url, "expected scheme://…"))?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return Err(malformed(url, format!("bad scheme {scheme:?}")));
    }
    let base = scheme
        .split('+')
        .next()
        .unwrap_or(scheme)
        .to_ascii_lowercase();
    let (target, query) = match rest.split_once('?') {
        Some((target, query)) => (target, query),
        None => (rest, ""),
    };
    let mut config = StoreConfig::new(Location::Memory);
    let mut driver_params = Vec::new();
    let mut root_cert = None;
    for (key, value) in parse_query(url, query)? {
        let seconds = || parse_seconds(&key, &value);
        match key.as_str() {
            "pool_size" => config.pool.pool_size = parse_number(&key, &value)?,
            "max_overflow" => config.pool.max_overflow = parse_number(&key, &value)?,
            "pool_timeout" => config.pool.pool_timeout = seconds()?,
            "pool_recycle" if value.trim() == "-1" => config.pool.pool_recycle = None,
            "pool_recycle" => config.pool.pool_recycle = Some(seconds()?),
            "busy_timeout" if base == "sqlite" => config.sqlite.busy_timeout = seconds()?,
            "sslrootcert" if matches!(base.as_str(), "postgres" | "postgresql") => {
                root_cert = Some(value)
            }
            _ if matches!(base.as_str(), "postgres" | "postgresql") => {
                driver_params.push((key, value))
            }
            _ => {
                return Err(Error::invalid(
                    key.clone(),
                    format!("unknown query parameter for a {base} URL"),
                ));
            }
        }
    }
    config.pool.validate()?;
    config.location = match base.as_str() {
        "memory" if target.is_empty() => Location::Memory,
        "memory" => return Err(malformed(url, "memory:// takes no host or path")),
        "sqlite" => sqlite_location(url, target)?,
        "postgres" | "postgresql" => {
            if target.is_empty() {
                return Err(malformed(url, "missing host"));
            }
            let mut normalized = format!("postgresql://{target}");
            let query: Vec<String> = driver_params
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            if !query.is_empty() {
                normalized.push('?');
                normalized.push_str(&query.join("&"));
            }
            Location::Postgres(PostgresUrl {
                url: normalized,
                root_cert,
            })
        }
        _ => {
            return Err(Error::invalid(
                "url",
                format!(
                    "unknown scheme {scheme:?} (expected sqlite, memory, postgres or postgresql)"
                ),
            ));
        }
    };
    Ok(config)
}

fn sqlite_location(url: &str, target: &str) -> Result<Location> {
    if target.is_empty() {
        return Ok(Location::SqliteMemory);
    }
    let Some(path) = target.strip_prefix('/') else {
        return Err(malformed(
            url,
            "an sqlite URL takes no host: use sqlite:///relative.db or sqlite:////absolute.db",
        ));
    };
    let path = decode(url, path)?;
    if path.is_empty() || path == ":memory:" {
        return Ok(Location::SqliteMemory);
    }
    if path.contains('\0') {
        return Err(malformed(url, "the path contains a NUL byte"));
    }
    Ok(Location::SqliteFile(PathBuf::from(path)))
}

fn parse_query(url: &str, query: &str) -> Result<Vec<(String, String)>> {
    let mut params: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            malformed(
                url,
                format!("query parameter {:?} has no value", decode_lossy(pair)),
            )
        })?;
        let (key, value) = (decode(url, key)?, decode(url, value)?);
        if params.iter().any(|(k, _)| *k == key) {
            return Err(Error::invalid(key, "query parameter given twice"));
        }
        params.push((key, value));
    }
    Ok(params)
}

fn parse_number(key: &str, value: &str) -> Result<u32> {
    value.trim().parse().map_err(|_| {
        Error::invalid(
            key,
            format!("{value:?} is not a whole number from 0 to {}", u32::MAX),
        )
    })
}

fn parse_seconds(key: &str, value: &str) -> Result<Duration> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| Error::invalid(key, format!("{value:?} is not a number of seconds")))
}

/// Percent-decodes `s`; the result must be UTF-8.
fn decode(url: &str, s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| malformed(url, "bad percent-encoding"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| malformed(url, "percent-encoding is not UTF-8"))
}

fn decode_lossy(s: &str) -> String {
    decode("", s).unwrap_or_else(|_| s.to_owned())
}

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_userinfo_and_query_passwords() {
        assert_eq!(
            redact("postgresql://me:s3cret@db:5432/x?password=hunter2&sslmode=require"),
            "postgresql://me:***@db:5432/x?password=***&sslmode=require"
        );
        assert_eq!(redact("postgres://me@db/x"), "postgres://me@db/x");
        assert_eq!(redact("sqlite:///./dev.db"), "sqlite:///./dev.db");
    }

    #[test]
    fn percent_coding_round_trips() {
        let s = "a b/ç?&=%";
        assert_eq!(decode("", &encode(s)).ok().as_deref(), Some(s));
        assert!(decode("", "%zz").is_err());
        assert!(decode("", "%ff").is_err(), "not UTF-8");
    }
}
