//! Database URL parsing: every form of DESIGN.md and the original plan, and
//! the bad ones.

use std::path::PathBuf;
use std::time::Duration;

use silmari_store::{Error, Location, PoolConfig, StoreConfig};

fn parse(url: &str) -> StoreConfig {
    url.parse()
        .unwrap_or_else(|e| panic!("{url} should parse: {e}"))
}

fn refused(url: &str) -> (String, String) {
    match url.parse::<StoreConfig>() {
        Err(Error::InvalidInput { field, reason }) => (field, reason),
        other => panic!("{url} should be refused, got {other:?}"),
    }
}

#[test]
fn original_plan_forms_as_written() {
    assert_eq!(
        parse("sqlite+aiosqlite:///./dev.db").location,
        Location::SqliteFile(PathBuf::from("./dev.db"))
    );
    let pg = parse("postgresql+asyncpg://user:password@host:5432/silmari_writer");
    match &pg.location {
        Location::Postgres(url) => {
            assert_eq!(
                url.expose(),
                "postgresql://user:password@host:5432/silmari_writer"
            );
            assert_eq!(
                url.to_string(),
                "postgresql://user:***@host:5432/silmari_writer"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn sqlite_forms() {
    let cases = [
        (
            "sqlite:///./dev.db",
            Location::SqliteFile("./dev.db".into()),
        ),
        ("sqlite:///dev.db", Location::SqliteFile("dev.db".into())),
        (
            "sqlite:////abs/path.db",
            Location::SqliteFile("/abs/path.db".into()),
        ),
        (
            "sqlite:///with%20space/x.db",
            Location::SqliteFile("with space/x.db".into()),
        ),
        (
            "SQLite+pysqlite:///x.db",
            Location::SqliteFile("x.db".into()),
        ),
        ("sqlite://", Location::SqliteMemory),
        ("sqlite:///", Location::SqliteMemory),
        ("sqlite:///:memory:", Location::SqliteMemory),
        ("memory://", Location::Memory),
    ];
    for (url, location) in cases {
        assert_eq!(parse(url).location, location, "{url}");
    }
}

#[test]
fn postgres_forms_keep_driver_parameters() {
    for url in [
        "postgres://u@localhost/db",
        "postgresql://u@localhost/db",
        "postgresql+asyncpg://u@localhost/db",
        "postgresql+psycopg2://u@localhost/db",
    ] {
        match parse(url).location {
            Location::Postgres(pg) => assert_eq!(pg.expose(), "postgresql://u@localhost/db"),
            other => panic!("{url}: {other:?}"),
        }
    }
    let config = parse(
        "postgres://u:p%40ss@db:5432/x?sslmode=require&pool_size=3&application_name=silmari writer",
    );
    assert_eq!(config.pool.pool_size, 3);
    match config.location {
        Location::Postgres(pg) => assert_eq!(
            pg.expose(),
            "postgresql://u:p%40ss@db:5432/x?sslmode=require&application_name=silmari%20writer"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn pool_defaults_match_the_original_plan() {
    let pool = parse("sqlite:///./dev.db").pool;
    assert_eq!(
        pool,
        PoolConfig {
            pool_size: 10,
            max_overflow: 20,
            pool_timeout: Duration::from_secs(30),
            pool_recycle: Some(Duration::from_secs(1800)),
        }
    );
    assert_eq!(pool, PoolConfig::default());
    assert_eq!(pool.max_size(), 30);
    let config = parse("sqlite:///./dev.db");
    assert!(config.migrate_on_open);
}

#[test]
fn pool_parameters_in_the_query() {
    let config = parse(
        "sqlite:///x.db?pool_size=5&max_overflow=0&pool_timeout=2.5&pool_recycle=60&busy_timeout=0.25",
    );
    assert_eq!(
        config.pool,
        PoolConfig {
            pool_size: 5,
            max_overflow: 0,
            pool_timeout: Duration::from_millis(2500),
            pool_recycle: Some(Duration::from_secs(60)),
        }
    );
    assert_eq!(config.sqlite.busy_timeout, Duration::from_millis(250));
    assert_eq!(parse("memory://?pool_recycle=-1").pool.pool_recycle, None);
}

#[test]
fn bad_urls_name_what_is_wrong() {
    let cases = [
        ("", "url"),
        ("dev.db", "url"),
        ("sqlite:dev.db", "url"),
        ("mysql://u@h/db", "url"),
        ("://nothing", "url"),
        ("sq lite:///x.db", "url"),
        ("sqlite://host/x.db", "url"),
        ("sqlite:///bad%zzescape.db", "url"),
        ("sqlite:///nul%00.db", "url"),
        ("memory://somewhere", "url"),
        ("postgres://", "url"),
        ("sqlite:///x.db?pool_size", "url"),
        (
            "sqlite:///x.db?check_same_thread=false",
            "check_same_thread",
        ),
        ("memory://?busy_timeout=1", "busy_timeout"),
        ("sqlite:///x.db?pool_size=ten", "pool_size"),
        ("sqlite:///x.db?pool_size=-1", "pool_size"),
        ("sqlite:///x.db?pool_size=0", "pool_size"),
        ("sqlite:///x.db?pool_size=1&pool_size=2", "pool_size"),
        ("sqlite:///x.db?pool_timeout=0", "pool_timeout"),
        ("sqlite:///x.db?pool_timeout=NaN", "pool_timeout"),
        ("sqlite:///x.db?pool_timeout=1e300", "pool_timeout"),
        ("sqlite:///x.db?pool_recycle=-2", "pool_recycle"),
        ("sqlite:///x.db?busy_timeout=-1", "busy_timeout"),
    ];
    for (url, field) in cases {
        let (got, reason) = refused(url);
        assert_eq!(got, field, "{url}: {reason}");
    }
    let (_, reason) = refused("mysql://u@h/db");
    assert!(reason.contains("mysql"), "names the scheme: {reason}");
}

#[test]
fn passwords_never_show() {
    let url = "postgresql://writer:hunter2@db.example:5432/silmari?password=hunter3";
    let config = parse(url);
    for shown in [format!("{config:?}"), format!("{}", config.location)] {
        assert!(!shown.contains("hunter"), "{shown}");
    }
    let (_, reason) = refused("postgresql+asyncpg://writer:hunter2@db/x?pool_size=%zz");
    assert!(!reason.contains("hunter2"), "{reason}");
    let err = silmari_store::Store::open("postgresql://writer:hunter2@127.0.0.1:1/x")
        .map(drop)
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("hunter2"));
}
