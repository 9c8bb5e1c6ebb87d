//! A password in a connection string never shows: not in `Debug` or
//! `Display` of the configuration, its location and `PostgresUrl`, not in
//! an error or anywhere down its `source()` chain, not in the log, not in
//! the admin tool's output; whatever the password holds and however
//! malformed the string around it is.

mod common;

use std::process::Command;

use proptest::prelude::*;
use silmari_store::{Error, Location, Store, StoreConfig};

use common::{admin_tool, capture_logs, logged, shown as shown_error};

/// Everything the public types show for `url`: the parsed configuration
/// (`Debug`, its location and `PostgresUrl` both ways) or the parse error,
/// then the store or the error `Store::open` gives.
fn shown_for(url: &str) -> String {
    let mut text = match url.parse::<StoreConfig>() {
        Ok(config) => {
            let mut text = format!("{config:?}\n{}\n{:?}", config.location, config.location);
            if let Location::Postgres(pg) = &config.location {
                text.push_str(&format!("\n{pg}\n{pg:?}"));
            }
            text
        }
        Err(e) => shown_error(&e),
    };
    match Store::open(url) {
        Ok(store) => text.push_str(&format!("\n{store:?}\n{}", store.location())),
        Err(e) => text.push_str(&format!("\n{}", shown_error(&e))),
    }
    text
}

/// The parts of `secret` that must not show either: the whole, and every
/// run of at least five letters and digits in it.
fn pieces(secret: &str) -> Vec<&str> {
    let mut pieces = vec![secret];
    pieces.extend(
        secret
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|p| p.len() >= 5),
    );
    pieces
}

/// The first piece of `secret` that shows in `text`.
fn leaked<'s>(secret: &'s str, text: &str) -> Option<&'s str> {
    pieces(secret).into_iter().find(|p| text.contains(p))
}

#[track_caller]
fn assert_hidden(secret: &str, what: &str, text: &str) {
    if let Some(piece) = leaked(secret, text) {
        panic!("{piece:?} of the password shows for {what}:\n{text}");
    }
}

/// Percent-encodes everything but letters and digits.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Quotes a value for a libpq `key=value` string.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Connection strings holding `pw`, in the shapes people write, right and
/// wrong. Every host is 127.0.0.1 port 1, where nothing listens.
fn shapes(pw: &str) -> Vec<String> {
    let enc = encode(pw);
    let host = "127.0.0.1:1";
    vec![
        // Well formed.
        format!("postgresql://u:{enc}@{host}/db"),
        format!("postgresql+asyncpg://u:{enc}@{host}/db?sslmode=prefer&pool_size=2"),
        format!("postgresql://u@{host}/db?password={enc}"),
        format!("postgresql://u@{host}/db?pass%77ord={enc}"),
        format!("postgresql://u@{host}/db?PASSWORD={enc}"),
        format!(
            "host=127.0.0.1 port=1 user=u password={} dbname=db",
            quote(pw)
        ),
        // The password not percent-encoded.
        format!("postgresql://u:{pw}@{host}/db"),
        format!("postgres://u:{pw}@{host}/db?pool_size=2"),
        format!("postgresql://u@{host}/db?password={pw}"),
        format!("postgresql://u@{host}/db?password={pw}&sslmode=prefer"),
        format!("host=127.0.0.1 port=1 user=u password={pw} dbname=db"),
        // Malformed around it.
        format!("postgresql:/u:{pw}@{host}/db"),
        format!("postgresql//u:{pw}@{host}/db"),
        format!("u:{pw}@{host}/db"),
        // The host forgotten (encoded: raw, "u:@x" would name a host x).
        format!("postgresql://u:{enc}"),
        format!("postgresql://u:{enc}@"),
        format!("postgresql://u:{enc}@{host}/db?pool_size=%zz"),
        format!("postgresql://u:{enc}@{host}/db?pool_size={enc}"),
        format!("postgresql://u:{enc}@{host}/db?{enc}"),
        format!("postgresql://u:{enc}@{host}/db?{enc}=1"),
        format!("postgresql://u:{enc}@{host}/db?sslmode={enc}"),
        format!("postgresql://u:{enc}@{host}/db#{enc}"),
        format!("postgresql://u:{enc}@127.0.0.1:99999/db"),
        format!("postgres ql://u:{enc}@{host}/db"),
        format!("mysql://u:{enc}@{host}/db"),
        format!("sqlite://u:{enc}@{host}/db"),
        format!("memory://u:{enc}@{host}"),
        format!("host=127.0.0.1 port=1 user=u password='{pw}"),
        format!("host=127.0.0.1 port=1 user=u password={} {pw}", quote(pw)),
    ]
}

#[test]
fn the_issue_urls_never_show_their_password() {
    capture_logs();
    let cases = [
        ("postgresql://u:SECRET?x@127.0.0.1:1/db", "SECRET?x"),
        ("postgresql://u:SECRET/x@127.0.0.1:1/db", "SECRET/x"),
        ("postgresql://u@127.0.0.1:1/db?pass%77ord=SECRET", "SECRET"),
        ("postgresql:/u:SECRET@127.0.0.1:1/db", "SECRET"),
        ("postgresql//u:SECRET@127.0.0.1:1/db", "SECRET"),
        ("u:SECRET@127.0.0.1:1/db", "SECRET"),
        ("postgresql://u:Sec/ret@127.0.0.1:1/db", "Sec/ret"),
        (
            "host=127.0.0.1 port=1 user=u password=SECRET dbname=db",
            "SECRET",
        ),
    ];
    for (url, secret) in cases {
        let text = shown_for(url);
        // "Sec/ret" has no run of five: look for both halves.
        for secret in [secret, "SECRET", "Sec/ret", "/ret@"] {
            assert!(
                !text.contains(secret),
                "{secret:?} shows for {url}:\n{text}"
            );
        }
    }
    for secret in ["SECRET", "Sec/ret"] {
        assert!(!logged().contains(secret), "{secret} in the log");
    }
}

#[test]
fn a_libpq_key_value_string_is_understood_like_the_driver_does() {
    let config: StoreConfig = "host=db.example port=5433 user=writer password='s3 cr\\'et' \
                               dbname=silmari pool_size=4 sslmode=prefer"
        .parse()
        .unwrap();
    assert_eq!(config.pool.pool_size, 4);
    let Location::Postgres(pg) = &config.location else {
        panic!("{:?}", config.location)
    };
    let shown = format!("{pg} {pg:?} {config:?}");
    assert!(!shown.contains("s3") && !shown.contains("et'"), "{shown}");
    assert!(
        shown.contains("writer") && shown.contains("db.example") && shown.contains("silmari"),
        "{shown}"
    );
    #[cfg(feature = "postgres")]
    {
        let driver: postgres::Config = pg.expose().parse().unwrap();
        assert_eq!(driver.get_user(), Some("writer"));
        assert_eq!(driver.get_password(), Some(&b"s3 cr'et"[..]));
        assert_eq!(driver.get_dbname(), Some("silmari"));
        assert_eq!(driver.get_ports(), [5433]);
    }
}

#[test]
fn a_password_with_reserved_characters_is_refused_unless_encoded() {
    // The driver would split these somewhere else than their writer meant.
    for url in [
        "postgresql://u:Sec/ret@h/db",
        "postgresql://u:Sec?ret@h/db",
        "postgresql://u:Sec#ret@h/db",
        "postgresql://u:Sec@ret@h/db",
    ] {
        match url.parse::<StoreConfig>() {
            Err(Error::InvalidInput { field, reason }) => {
                assert_eq!(field, "url", "{url}");
                assert!(reason.contains("percent-encode"), "{url}: {reason}");
                assert!(!reason.contains("ret"), "{url}: {reason}");
            }
            other => panic!("{url}: {other:?}"),
        }
    }
    // Encoded, they reach the driver whole.
    let config: StoreConfig = "postgresql://u:Sec%2F%3F%23%40ret@h/db".parse().unwrap();
    let Location::Postgres(pg) = &config.location else {
        panic!()
    };
    assert_eq!(pg.to_string(), "postgresql://u:***@h/db");
    #[cfg(feature = "postgres")]
    {
        let driver: postgres::Config = pg.expose().parse().unwrap();
        assert_eq!(driver.get_password(), Some(&b"Sec/?#@ret"[..]));
    }
}

/// A password: a distinctive marker amid random printable characters,
/// those URLs reserve included.
fn password() -> impl Strategy<Value = String> {
    let printable = prop::collection::vec(
        prop_oneof![
            3 => prop::char::range(' ', '~'),
            1 => prop::sample::select(vec!['?', '/', '@', '#', ':', '%', '&', '=', ' ', '\'', '\\', 'é', '€']),
        ],
        0..8,
    );
    (printable.clone(), printable).prop_map(|(before, after)| {
        let before: String = before.into_iter().collect();
        let after: String = after.into_iter().collect();
        format!("{before}Pw7qZ3mK{after}")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_passwords_never_show_in_any_shape(pw in password()) {
        capture_logs();
        for url in shapes(&pw) {
            let text = shown_for(&url);
            prop_assert!(leaked(&pw, &text).is_none(), "password {pw:?} shows for {url}:\n{text}");
        }
        let log = logged();
        prop_assert!(leaked(&pw, &log).is_none(), "password {pw:?} in the log:\n{log}");
    }
}

/// What the admin tool prints (both streams) for `args`, with `DATABASE_URL`
/// set to `env_url` if given; it must fail.
fn admin_output(args: &[&str], env_url: Option<&str>) -> String {
    let mut command = Command::new(admin_tool());
    command.args(args).env_remove("DATABASE_URL");
    if let Some(url) = env_url {
        command.env("DATABASE_URL", url);
    }
    let out = command.output().expect("run the admin tool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{args:?} succeeded: {text}");
    text
}

/// The ways `url` reaches the admin tool: arguments and `DATABASE_URL`.
fn admin_invocations(url: &str) -> Vec<(Vec<&str>, Option<&str>)> {
    vec![
        (vec!["--url", url, "migrate", "status"], None),
        (vec!["migrate", "status"], Some(url)),
        (vec!["check", "--url", url], None),
        (vec!["copy", "--from", "memory://", "--to", url], None),
        // A URL where the tool expects none: the argument error must not echo it.
        (vec!["migrate", "status", url], None),
    ]
}

#[test]
fn the_admin_tool_never_prints_a_password() {
    let password = "Adm1n-Secr3t/?@#:%&= x";
    for url in shapes(password) {
        for (args, env) in admin_invocations(&url) {
            let text = admin_output(&args, env);
            assert_hidden(password, &format!("{args:?} {env:?}"), &text);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_passwords_never_show_in_the_admin_tool(
        pw in password(),
        shape in any::<prop::sample::Index>(),
        invocation in any::<prop::sample::Index>(),
    ) {
        let shapes = shapes(&pw);
        let url = shape.get(&shapes);
        let invocations = admin_invocations(url);
        let (args, env) = invocation.get(&invocations);
        let text = admin_output(args, *env);
        prop_assert!(leaked(&pw, &text).is_none(), "password {pw:?} shows for {args:?} {env:?}:\n{text}");
    }
}

#[cfg(feature = "postgres")]
#[test]
fn a_wrong_password_with_reserved_characters_never_shows() {
    capture_logs();
    let Some(database) = common::pg::Database::create() else {
        return;
    };
    let (scheme, rest) = database.url.split_once("://").unwrap();
    let (userinfo, host) = rest.rsplit_once('@').unwrap();
    let user = userinfo.split(':').next().unwrap();
    for wrong in ["Wr0ng/pass@word", "Wr0ng?pass#word", "Wr0ng pass:word%"] {
        for url in [
            format!("{scheme}://{user}:{}@{host}", encode(wrong)),
            format!("{scheme}://{user}:{wrong}@{host}"),
        ] {
            let text = shown_for(&url);
            assert_hidden(wrong, &url, &text);
        }
    }
    assert_hidden("Wr0ng/pass@word", "the log", &logged());
}

/// A login role of the test server with `password`, dropped afterwards
/// (declare it before the databases it may own objects in).
#[cfg(feature = "postgres")]
struct Role {
    server: String,
    name: String,
}

#[cfg(feature = "postgres")]
impl Role {
    fn create(server: &str, password: &str) -> Role {
        let name = format!("silmari_r_{}", uuid::Uuid::new_v4().simple());
        let mut admin = postgres::Client::connect(server, postgres::NoTls).unwrap();
        let quoted = password.replace('\'', "''");
        admin
            .batch_execute(&format!("CREATE ROLE {name} LOGIN PASSWORD '{quoted}'"))
            .unwrap();
        Role {
            server: server.to_owned(),
            name,
        }
    }
}

#[cfg(feature = "postgres")]
impl Drop for Role {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.server, postgres::NoTls) {
            let _ = admin.batch_execute(&format!("DROP ROLE IF EXISTS {}", self.name));
        }
    }
}

#[cfg(feature = "postgres")]
#[test]
fn a_password_of_reserved_characters_logs_in_encoded_or_quoted() {
    let Some(server) = common::postgres_server() else {
        return;
    };
    let password = "p/?#@: %&='\\x";
    let role = Role::create(&server, password);
    let Some(database) = common::pg::Database::create() else {
        return;
    };
    database
        .client()
        .batch_execute(&format!("GRANT ALL ON SCHEMA public TO {}", role.name))
        .unwrap();
    let (_, rest) = database.url.split_once("://").unwrap();
    let (_, host_and_db) = rest.rsplit_once('@').unwrap();
    let (host, db) = host_and_db.split_once('/').unwrap();
    let (ip, port) = host.split_once(':').unwrap();
    let urls = [
        format!(
            "postgresql://{}:{}@{host_and_db}",
            role.name,
            encode(password)
        ),
        format!(
            "host={ip} port={port} user={} password={} dbname={db}",
            role.name,
            quote(password)
        ),
    ];
    for url in urls {
        let store = Store::open(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
        use silmari_store::ConversationRepository;
        store
            .conversations()
            .create(silmari_store::NewConversation::titled("logged in"))
            .unwrap();
        assert_hidden(
            "p/?#@: %&='\\x",
            &url,
            &format!("{store:?} {}", store.location()),
        );
    }
}
