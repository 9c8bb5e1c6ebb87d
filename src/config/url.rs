//! Parsing database URLs.

use std::fmt;
use std::path::PathBuf;

use super::pool::{parse_count, parse_seconds};
use super::{Location, PostgresUrl, StoreConfig, redact};
use crate::error::{Error, Result};

fn malformed(url: &str, reason: impl fmt::Display) -> Error {
    Error::invalid("url", format!("{}: {reason}", redact(url)))
}

pub(super) fn parse_url(url: &str) -> Result<StoreConfig> {
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
            "pool_size" => config.pool.pool_size = parse_count(&key, &value)?,
            "max_overflow" => config.pool.max_overflow = parse_count(&key, &value)?,
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
    config.validate()?;
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
