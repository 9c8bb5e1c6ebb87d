//! Parsing database URLs and libpq `key=value` strings.
//!
//! Nothing of the input is ever echoed in an error: a connection string may
//! hold a password anywhere, misplaced or mangled. Errors name the problem,
//! the field when it is one of the known parameters, and at most the scheme.

use std::path::PathBuf;

use super::pool::{parse_count, parse_seconds, parse_whole};
use super::postgres::{self, Parts};
use super::{Location, PostgresUrl, StoreConfig, libpq};
use crate::error::{Error, Result};

/// The store's own query parameters.
pub(super) const STORE_KEYS: [&str; 8] = [
    "pool_size",
    "max_overflow",
    "pool_timeout",
    "pool_recycle",
    "busy_timeout",
    "slow_statement",
    "mmap_size",
    "cache_size",
];

/// What a URL's scheme names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Base {
    Memory,
    Sqlite,
    Postgres,
}

/// An [`Error::InvalidInput`] about the URL as a whole.
pub(super) fn malformed(reason: impl Into<String>) -> Error {
    Error::invalid("url", reason)
}

pub(super) fn parse_url(url: &str) -> Result<StoreConfig> {
    if libpq::is_key_value(url) {
        let params = libpq::parse(url)?;
        let mut config = StoreConfig::new(Location::Memory);
        let rest = store_parameters(&mut config, Base::Postgres, params)?;
        config.location = Location::Postgres(PostgresUrl::new(Parts::from_key_value(rest)?)?);
        config.validate()?;
        return Ok(config);
    }
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        malformed(
            "expected scheme://… (sqlite:///file.db, memory://, \
             postgresql://user:password@host/db) or a libpq key=value string",
        )
    })?;
    let base = base_of(scheme)?;
    let mut config = StoreConfig::new(Location::Memory);
    config.location = match base {
        Base::Postgres => {
            let (authority, query) = postgres::split(rest)?;
            let params = store_parameters(&mut config, base, parse_query(base, query)?)?;
            Location::Postgres(PostgresUrl::new(Parts::from_url(authority, params)?)?)
        }
        Base::Memory | Base::Sqlite => {
            let (target, query) = rest.split_once('?').unwrap_or((rest, ""));
            store_parameters(&mut config, base, parse_query(base, query)?)?;
            match base {
                Base::Memory if target.is_empty() => Location::Memory,
                Base::Memory => return Err(malformed("memory:// takes no host or path")),
                _ => sqlite_location(target)?,
            }
        }
    };
    config.validate()?;
    Ok(config)
}

/// The backend `scheme` names; a `+driver` suffix is ignored.
fn base_of(scheme: &str) -> Result<Base> {
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        // Not a scheme: maybe the start of a mangled URL. Not shown.
        return Err(malformed("the text before :// is not a URL scheme"));
    }
    let name = scheme.split('+').next().unwrap_or(scheme);
    match name.to_ascii_lowercase().as_str() {
        "memory" => Ok(Base::Memory),
        "sqlite" => Ok(Base::Sqlite),
        "postgres" | "postgresql" => Ok(Base::Postgres),
        _ if scheme.len() <= 32 => Err(malformed(format!(
            "unknown scheme {scheme:?} (expected sqlite, memory, postgres or postgresql)"
        ))),
        _ => Err(malformed(
            "unknown scheme (expected sqlite, memory, postgres or postgresql)",
        )),
    }
}

/// Takes the store's own parameters into `config`; returns the others
/// (PostgreSQL's, for the driver), refusing those `base` does not take.
fn store_parameters(
    config: &mut StoreConfig,
    base: Base,
    params: Vec<(String, String)>,
) -> Result<Vec<(String, String)>> {
    let mut rest = Vec::new();
    for (key, value) in params {
        let seconds = || parse_seconds(&key, &value);
        match key.as_str() {
            "pool_size" => config.pool.pool_size = parse_count(&key, &value)?,
            "max_overflow" => config.pool.max_overflow = parse_count(&key, &value)?,
            "pool_timeout" => config.pool.pool_timeout = seconds()?,
            "pool_recycle" if value.trim() == "-1" => config.pool.pool_recycle = None,
            "pool_recycle" => config.pool.pool_recycle = Some(seconds()?),
            "busy_timeout" if base == Base::Sqlite => config.sqlite.busy_timeout = seconds()?,
            "slow_statement" if base == Base::Sqlite => {
                config.sqlite.slow_statement = Some(seconds()?);
            }
            "mmap_size" if base == Base::Sqlite => {
                config.sqlite.mmap_size = parse_whole(&key, &value)?;
            }
            "cache_size" if base == Base::Sqlite => {
                config.sqlite.cache_size = parse_whole(&key, &value)?;
            }
            "busy_timeout" | "slow_statement" | "mmap_size" | "cache_size" => {
                return Err(Error::invalid(key, "only SQLite URLs take it"));
            }
            _ if base == Base::Postgres => rest.push((key, value)),
            _ if plausible_name(&key) => {
                return Err(Error::invalid(key, "unknown query parameter"));
            }
            _ => return Err(malformed("unknown query parameter")),
        }
    }
    Ok(rest)
}

/// The field an error about query parameter `key` may name: the key when
/// it is one the store knows, or for URLs that cannot hold a password one
/// that looks like a parameter name; `url` otherwise (the "key" may be a
/// piece of a password that holds `&`).
fn field_of(base: Base, key: &str) -> String {
    let known = STORE_KEYS.contains(&key) || postgres::is_known_key(key);
    if known || (base != Base::Postgres && plausible_name(key)) {
        key.to_owned()
    } else {
        "url".to_owned()
    }
}

/// Lowercase letters, digits and `_`, starting with a letter, at most 40.
fn plausible_name(key: &str) -> bool {
    key.len() <= 40
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn sqlite_location(target: &str) -> Result<Location> {
    if target.is_empty() {
        return Ok(Location::SqliteMemory);
    }
    let Some(path) = target.strip_prefix('/') else {
        return Err(malformed(
            "an sqlite URL takes no host: use sqlite:///relative.db or sqlite:////absolute.db",
        ));
    };
    let path = decode(path, "the path")?;
    if path.is_empty() || path == ":memory:" {
        return Ok(Location::SqliteMemory);
    }
    if path.contains('\0') {
        return Err(malformed("the path contains a NUL byte"));
    }
    Ok(Location::SqliteFile(PathBuf::from(path)))
}

/// The decoded `key=value` pairs of a query, each key once.
fn parse_query(base: Base, query: &str) -> Result<Vec<(String, String)>> {
    let mut params: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| malformed("a query parameter has no value (expected key=value)"))?;
        let key = decode(key, "a query parameter's name")?;
        let value = decode(value, "a query parameter's value")?;
        if params.iter().any(|(k, _)| *k == key) {
            return Err(Error::invalid(
                field_of(base, &key),
                "query parameter given twice",
            ));
        }
        params.push((key, value));
    }
    Ok(params)
}

/// Percent-decodes `s` (`what` it is, for the error); the result must be
/// UTF-8.
pub(super) fn decode(s: &str, what: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    malformed(format!(
                        "bad percent-encoding in {what} (write % itself as %25)"
                    ))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| malformed(format!("the percent-encoding of {what} is not UTF-8")))
}

/// Percent-encodes everything but unreserved characters.
pub(super) fn encode(s: &str) -> String {
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
    fn percent_coding_round_trips() {
        let s = "a b/ç?&=%";
        assert_eq!(decode(&encode(s), "s").ok().as_deref(), Some(s));
        assert!(decode("%zz", "s").is_err());
        assert!(decode("%ff", "s").is_err(), "not UTF-8");
    }

    #[test]
    fn errors_never_echo_the_input() {
        for url in [
            "postgresql:/u:hunter2@h/db",
            "hunter2",
            "postgres ql://u:hunter2@h/db",
            "postgresql://u:hunter2@h/db?hunter2",
            "postgresql://u:hunter2@h/db?hunter2=1",
            "postgresql://u@h/db?password=x&hunter2=1",
            "postgresql://u:hunter2@h/db?pool_size=hunter2",
            "postgresql://u:hunter2@h/db#hunter2",
            "sqlite://u:hunter2@h/x.db",
            "memory://u:hunter2@h",
            "sqlite:///x.db?pool_size=hunter2",
            "sqlite:///hunter2%zz.db",
        ] {
            match parse_url(url) {
                Err(e) => assert!(!format!("{e} {e:?}").contains("hunter2"), "{url}: {e}"),
                Ok(config) => panic!("{url} parsed: {config:?}"),
            }
        }
    }
}
