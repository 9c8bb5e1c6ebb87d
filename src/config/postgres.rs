//! [`PostgresUrl`]: a PostgreSQL connection string taken apart and put back
//! together, so that what the driver gets is unambiguous and what is shown
//! is built from the parts without the password (never by masking text).

use std::fmt;

use super::url::{decode, encode, malformed};
use crate::error::{Error, Result};

/// The parameters of the `postgres` driver (libpq's names), besides the
/// store's own and `sslrootcert`.
const DRIVER_KEYS: [&str; 19] = [
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "sslmode",
    "sslnegotiation",
    "host",
    "hostaddr",
    "port",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];

/// libpq parameters the driver does not have: refused, but named.
const UNSUPPORTED_KEYS: [&str; 12] = [
    "passfile",
    "service",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "gssencmode",
    "krbsrvname",
    "client_encoding",
    "require_auth",
];

/// Parameters whose values are one of a few words: checked, and shown.
const ENUM_KEYS: [(&str, &[&str]); 5] = [
    ("sslmode", &["disable", "prefer", "require"]),
    ("sslnegotiation", &["postgres", "direct"]),
    ("target_session_attrs", &["any", "read-write", "read-only"]),
    ("channel_binding", &["disable", "prefer", "require"]),
    ("load_balance_hosts", &["disable", "random"]),
];

/// Parameters naming the server, shown with their values.
const SHOWN_KEYS: [&str; 5] = ["host", "hostaddr", "port", "user", "dbname"];

/// True for a parameter name the store or the driver knows.
pub(super) fn is_known_key(key: &str) -> bool {
    DRIVER_KEYS.contains(&key)
        || UNSUPPORTED_KEYS.contains(&key)
        || key == "sslrootcert"
        || key == "schema"
}

/// A PostgreSQL connection URL (normalized to `postgresql://`), with the
/// store's own query parameters taken out.
///
/// `Display` and `Debug` show the user, hosts, ports, database and the
/// parameters that name the server or pick a mode (`sslmode`, …), never the
/// password (`***`) nor free-text parameters (`application_name`,
/// `options`, …).
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    /// What the driver gets, password included.
    url: String,
    /// What is shown: built from the parts, without the password.
    shown: String,
    root_cert: Option<String>,
    schema: String,
}

/// The schema a store uses when the URL names none.
pub(crate) const DEFAULT_SCHEMA: &str = "public";

/// Longest schema name: PostgreSQL's identifiers hold 63 bytes.
const MAX_SCHEMA_BYTES: usize = 63;

/// A schema name the store can pin without quoting: lowercase ASCII letters,
/// digits and `_`, starting with a letter or `_`, at most 63 bytes.
fn check_schema(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if !first_ok
        || name.len() > MAX_SCHEMA_BYTES
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(Error::invalid(
            "schema",
            format!(
                "{name:?} is not a schema name the store takes: lowercase ASCII letters, \
                 digits and _, starting with a letter or _, at most {MAX_SCHEMA_BYTES} bytes"
            ),
        ));
    }
    Ok(())
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

    /// The schema every table of the store lives in (`schema=`, default
    /// `public`). Each connection's `search_path` is set to it alone, so a
    /// table of the same name elsewhere (say in the role's own schema,
    /// which PostgreSQL's default `search_path` puts first) is never used.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Puts `parts` together, checked.
    pub(super) fn new(parts: Parts) -> Result<PostgresUrl> {
        check_hosts(&parts.hosts)?;
        let mut root_cert = None;
        let mut schema = DEFAULT_SCHEMA.to_owned();
        let mut params = Vec::new();
        for (key, value) in parts.params {
            if key == "sslrootcert" {
                root_cert = Some(value);
            } else if key == "schema" {
                check_schema(&value)?;
                schema = value;
            } else if DRIVER_KEYS.contains(&key.as_str()) {
                check_value(&key, &value)?;
                params.push((key, value));
            } else if UNSUPPORTED_KEYS.contains(&key.as_str()) {
                return Err(Error::invalid(
                    key,
                    "not supported by the PostgreSQL driver of silmari-store",
                ));
            } else {
                // Not named: with a password holding `&`, the "key" may be
                // a piece of it.
                return Err(malformed(format!(
                    "unknown query parameter for a PostgreSQL URL (known: {}, sslrootcert, schema)",
                    DRIVER_KEYS.join(", ")
                )));
            }
        }
        let has_host = |k: &str| k == "host" || k == "hostaddr";
        if parts.hosts.is_empty() && !params.iter().any(|(k, _)| has_host(k)) {
            return Err(malformed("missing host"));
        }
        let mut url = String::from("postgresql://");
        let mut shown = url.clone();
        if let Some(user) = &parts.user {
            url.push_str(&encode(user));
            shown.push_str(&encode(user));
            if let Some(password) = &parts.password {
                url.push(':');
                url.push_str(&encode(password));
                shown.push_str(":***");
            }
            url.push('@');
            shown.push('@');
        } else if let Some(password) = parts.password {
            params.push(("password".to_owned(), password));
        }
        url.push_str(&parts.hosts);
        shown.push_str(&parts.hosts);
        if let Some(dbname) = &parts.dbname {
            url.push('/');
            url.push_str(&encode(dbname));
            shown.push('/');
            shown.push_str(&encode(dbname));
        }
        let mut shown_params = Vec::new();
        let mut url_params = Vec::new();
        for (key, value) in &params {
            url_params.push(format!("{}={}", encode(key), encode(value)));
            if key == "password" {
                shown_params.push("password=***".to_owned());
            } else if SHOWN_KEYS.contains(&key.as_str()) || ENUM_KEYS.iter().any(|(k, _)| k == key)
            {
                shown_params.push(format!("{key}={}", encode(value)));
            }
        }
        if schema != DEFAULT_SCHEMA {
            shown_params.push(format!("schema={schema}"));
        }
        for (text, query) in [(&mut url, url_params), (&mut shown, shown_params)] {
            if !query.is_empty() {
                text.push('?');
                text.push_str(&query.join("&"));
            }
        }
        Ok(PostgresUrl {
            url,
            shown,
            root_cert,
            schema,
        })
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresUrl")
            .field("url", &self.shown)
            .field("ssl_root_cert", &self.root_cert)
            .field("schema", &self.schema)
            .finish()
    }
}

/// A connection string taken apart, decoded.
pub(super) struct Parts {
    user: Option<String>,
    password: Option<String>,
    /// The URL's host part as written (`h1:5432,[::1]:5433`), checked by
    /// [`PostgresUrl::new`].
    hosts: String,
    dbname: Option<String>,
    /// Driver parameters, `sslrootcert` and `schema`.
    params: Vec<(String, String)>,
}

/// The part of a URL before its query.
pub(super) struct Authority<'a> {
    userinfo: Option<&'a str>,
    hosts: &'a str,
    path: Option<&'a str>,
}

/// Splits what follows `postgresql://` into its authority and its query.
///
/// The driver takes everything up to the first `@` anywhere as user info,
/// so `u:Sec/ret@h` connects with the password `Sec/ret`, while a URL
/// reader stops the host at `/`; rather than guess which the writer meant,
/// an `@` that is not the only one, or that follows a `/`, `?` or `#`, is
/// refused (without echoing anything): such characters must be
/// percent-encoded.
pub(super) fn split(rest: &str) -> Result<(Authority<'_>, &str)> {
    let (userinfo, after) = match rest.split_once('@') {
        Some((userinfo, after)) => {
            if after.contains('@') || userinfo.contains(['/', '?', '#']) {
                return Err(malformed(
                    "ambiguous URL: an unencoded '@' may only separate the user info from \
                     the host; percent-encode '@', '/', '?' and '#' in the user name, the \
                     password and elsewhere (%40, %2F, %3F, %23)",
                ));
            }
            (Some(userinfo), after)
        }
        None => (None, rest),
    };
    if after.contains('#') {
        return Err(malformed(
            "a PostgreSQL URL takes no #fragment (percent-encode '#' as %23)",
        ));
    }
    let (before_query, query) = after.split_once('?').unwrap_or((after, ""));
    let (hosts, path) = match before_query.split_once('/') {
        Some((hosts, path)) => (hosts, Some(path)),
        None => (before_query, None),
    };
    Ok((
        Authority {
            userinfo,
            hosts,
            path,
        },
        query,
    ))
}

impl Parts {
    /// The parts of a URL's authority, with its driver `params`.
    pub(super) fn from_url(
        authority: Authority<'_>,
        params: Vec<(String, String)>,
    ) -> Result<Self> {
        let (user, password) = match authority.userinfo {
            None => (None, None),
            Some(userinfo) => match userinfo.split_once(':') {
                Some((user, password)) => (
                    Some(decode(user, "the user name")?),
                    Some(decode(password, "the password")?),
                ),
                None => (Some(decode(userinfo, "the user name")?), None),
            },
        };
        let dbname = match authority.path {
            Some(path) if !path.is_empty() => Some(decode(path, "the database name")?),
            _ => None,
        };
        Ok(Parts {
            user,
            password,
            hosts: authority.hosts.to_owned(),
            dbname,
            params,
        })
    }

    /// The parts of a libpq `key=value` string's parameters (store
    /// parameters taken out): a single plain host and port go into the
    /// URL's host part, user, password and database into their places.
    pub(super) fn from_key_value(mut params: Vec<(String, String)>) -> Result<Self> {
        let mut take = |key: &str| {
            let i = params.iter().position(|(k, _)| k == key)?;
            Some(params.remove(i).1)
        };
        let (user, password, dbname) = (take("user"), take("password"), take("dbname"));
        let (host, port) = (take("host"), take("port"));
        let plain = |s: &str, more: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || more.contains(c))
        };
        let mut hosts = String::new();
        match (host, port) {
            (Some(host), port)
                if plain(&host, ".-") && port.as_deref().is_none_or(|p| plain(p, "")) =>
            {
                hosts = host;
                if let Some(port) = port {
                    hosts.push(':');
                    hosts.push_str(&port);
                }
            }
            (host, port) => {
                params.extend(host.map(|h| ("host".to_owned(), h)));
                params.extend(port.map(|p| ("port".to_owned(), p)));
            }
        }
        Ok(Parts {
            user,
            password,
            hosts,
            dbname,
            params,
        })
    }
}

/// Checks a URL's host part: hosts separated by commas, each a name,
/// address or `[IPv6]`, each with an optional port from 1 to 65535.
fn check_hosts(hosts: &str) -> Result<()> {
    if hosts.is_empty() {
        return Ok(());
    }
    let bad_port = || malformed("a port must be a number from 1 to 65535");
    for chunk in hosts.split(',') {
        let (host, port) = match chunk.strip_prefix('[') {
            Some(inner) => {
                let (host, rest) = inner
                    .split_once(']')
                    .ok_or_else(|| malformed("an IPv6 host lacks its closing ']'"))?;
                match rest {
                    "" => (host, None),
                    _ => (host, Some(rest.strip_prefix(':').ok_or_else(bad_port)?)),
                }
            }
            None => match chunk.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (chunk, None),
            },
        };
        if host.is_empty() {
            return Err(malformed("a host name is empty"));
        }
        decode(host, "a host name")?;
        if let Some(port) = port {
            let digits = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
            if !digits || !port.parse::<u16>().is_ok_and(|p| p > 0) {
                return Err(bad_port());
            }
        }
    }
    Ok(())
}

/// Checks the value of driver parameter `key` where it is one of a few
/// words, or a port list. Nothing of the value is echoed.
fn check_value(key: &str, value: &str) -> Result<()> {
    if let Some((_, words)) = ENUM_KEYS.iter().find(|(k, _)| *k == key)
        && !words.contains(&value)
    {
        return Err(Error::invalid(
            key,
            format!("must be one of {}", words.join(", ")),
        ));
    }
    if key == "port"
        && !value
            .split(',')
            .all(|p| p.is_empty() || p.parse::<u16>().is_ok_and(|p| p > 0))
    {
        return Err(Error::invalid(
            key,
            "must be a number from 1 to 65535 (or a list of them)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::{Location, StoreConfig};

    fn shown(url: &str) -> String {
        match url.parse::<StoreConfig>() {
            Ok(StoreConfig {
                location: Location::Postgres(pg),
                ..
            }) => pg.to_string(),
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn shows_the_server_and_modes_never_the_password_nor_free_text() {
        assert_eq!(
            shown(
                "postgresql://me:s3cret@db:5432/x?password=hunter2&sslmode=require\
                 &application_name=hunter3&options=-c%20x%3Dhunter4"
            ),
            "postgresql://me:***@db:5432/x?password=***&sslmode=require"
        );
        assert_eq!(shown("postgres://me@db/x"), "postgresql://me@db/x");
        assert_eq!(
            shown("postgresql://u@%2Fvar%2Frun%2Fpostgresql/db"),
            "postgresql://u@%2Fvar%2Frun%2Fpostgresql/db"
        );
        assert_eq!(
            shown("postgresql:///db?host=/tmp&port=5433"),
            "postgresql:///db?host=%2Ftmp&port=5433"
        );
        assert_eq!(
            shown("postgresql://u:p@[::1]:5433,h2/db"),
            "postgresql://u:***@[::1]:5433,h2/db"
        );
        assert_eq!(
            shown("host=h port=5 user=u password=p dbname=d"),
            "postgresql://u:***@h:5/d"
        );
        assert_eq!(
            shown("host=/tmp,h2 password=p"),
            "postgresql://?host=%2Ftmp%2Ch2&password=***"
        );
    }
}
