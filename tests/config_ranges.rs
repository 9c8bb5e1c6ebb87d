//! Every numeric setting, from a URL or from code, has a documented range:
//! a value outside it is refused with `InvalidInput` naming the field before
//! anything is opened or written. (tests/config_ranges_random.rs opens
//! stores from random values in child processes.)

use std::path::Path;
use std::time::Duration;

use silmari_store::prelude::*;
use silmari_store::{Checkpoint, Location, PoolConfig, SqliteOptions, StoreConfig};

/// The field an `InvalidInput` names, or a description of what came instead.
fn refused_field<T: std::fmt::Debug>(result: silmari_store::Result<T>) -> String {
    match result {
        Err(Error::InvalidInput { field, .. }) => field,
        other => format!("not refused: {other:?}"),
    }
}

/// The URL of a database file in `dir`.
fn file_url(dir: &Path, query: &str) -> String {
    format!("sqlite:///{}?{query}", dir.join("ranges.db").display())
}

#[test]
fn out_of_range_url_parameters_are_refused_naming_the_field() {
    let cases = [
        // The reports of the issue.
        ("busy_timeout=2147484", "busy_timeout"),
        ("busy_timeout=1e12", "busy_timeout"),
        ("pool_timeout=1e19", "pool_timeout"),
        ("pool_size=4294967295&max_overflow=4294967295", "pool_size"),
        ("pool_size=100000", "pool_size"),
        // Past each end of each range.
        ("pool_size=0", "pool_size"),
        ("pool_size=101", "pool_size"),
        ("max_overflow=101", "max_overflow"),
        ("max_overflow=-1", "max_overflow"),
        ("pool_timeout=0", "pool_timeout"),
        ("pool_timeout=0.0009", "pool_timeout"),
        ("pool_timeout=86400.001", "pool_timeout"),
        ("pool_recycle=0.5", "pool_recycle"),
        ("pool_recycle=86401", "pool_recycle"),
        ("pool_recycle=-1.5", "pool_recycle"),
        ("busy_timeout=86400.5", "busy_timeout"),
        ("busy_timeout=-0.001", "busy_timeout"),
        ("mmap_size=2147418113", "mmap_size"),
        ("mmap_size=-1", "mmap_size"),
        ("cache_size=262143", "cache_size"),
        ("cache_size=1073741825", "cache_size"),
        ("cache_size=0", "cache_size"),
        // Not numbers at all.
        ("pool_size=1.5", "pool_size"),
        ("pool_size=1e2", "pool_size"),
        ("pool_size=", "pool_size"),
        ("pool_timeout=", "pool_timeout"),
        ("pool_timeout=inf", "pool_timeout"),
        ("pool_timeout=-inf", "pool_timeout"),
        ("busy_timeout=NaN", "busy_timeout"),
        ("pool_recycle=1e400", "pool_recycle"),
        ("mmap_size=1e9", "mmap_size"),
        ("mmap_size=", "mmap_size"),
        ("mmap_size=1 GiB", "mmap_size"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (query, field) in cases {
        let url = file_url(dir.path(), query);
        assert_eq!(refused_field(url.parse::<StoreConfig>()), field, "{url}");
        assert_eq!(refused_field(Store::open(&url)), field, "{url}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing was written"
    );
}

#[test]
fn both_ends_of_every_url_range_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let low = "pool_size=1&max_overflow=0&pool_timeout=0.001&pool_recycle=1&busy_timeout=0\
        &mmap_size=0&cache_size=262144";
    let high = "pool_size=100&max_overflow=100&pool_timeout=86400&pool_recycle=86400\
        &busy_timeout=86400&mmap_size=2147418112&cache_size=1073741824";
    let config: StoreConfig = file_url(dir.path(), low).parse().unwrap();
    assert_eq!(
        config.pool,
        PoolConfig {
            pool_size: 1,
            max_overflow: 0,
            pool_timeout: Duration::from_millis(1),
            pool_recycle: Some(Duration::from_secs(1)),
        }
    );
    assert_eq!(config.sqlite.busy_timeout, Duration::ZERO);
    assert_eq!(config.sqlite.mmap_size, 0);
    assert_eq!(config.sqlite.cache_size, 256 << 10);
    let config: StoreConfig = file_url(dir.path(), high).parse().unwrap();
    assert_eq!(config.pool.max_size(), 200);
    assert_eq!(config.sqlite.busy_timeout, Duration::from_secs(86_400));
    assert_eq!(config.sqlite.mmap_size, 0x7fff_0000);
    assert_eq!(config.sqlite.cache_size, 1 << 30);
    // A store opens at both ends (but a 1 ms pool timeout, which a busy
    // machine may miss on the first call).
    #[cfg(feature = "sqlite")]
    for query in [&low.replace("0.001", "5"), high] {
        let store = Store::open(&file_url(dir.path(), query)).unwrap();
        store
            .conversations()
            .create(NewConversation::titled("in range"))
            .unwrap();
    }
}

/// A configuration of a database file in `dir` with `pool` and `sqlite`.
fn file_config(dir: &Path, pool: PoolConfig, sqlite: SqliteOptions) -> StoreConfig {
    let mut config = StoreConfig::new(Location::SqliteFile(dir.join("code.db")));
    config.pool = pool;
    config.sqlite = sqlite;
    config
}

#[test]
fn out_of_range_settings_from_code_are_refused_before_anything_is_written() {
    let day = Duration::from_secs(86_400);
    let sqlite = |change: &dyn Fn(&mut SqliteOptions)| {
        let mut options = SqliteOptions::default();
        change(&mut options);
        (PoolConfig::default(), options)
    };
    let pool = |change: &dyn Fn(&mut PoolConfig)| {
        let mut pool = PoolConfig::default();
        change(&mut pool);
        (pool, SqliteOptions::default())
    };
    let cases = [
        (
            "busy_timeout",
            sqlite(&|s| s.busy_timeout = Duration::from_secs(2_147_484)),
        ),
        ("busy_timeout", sqlite(&|s| s.busy_timeout = Duration::MAX)),
        (
            "busy_timeout",
            sqlite(&|s| s.busy_timeout = day + Duration::from_nanos(1)),
        ),
        (
            "statement_cache_capacity",
            sqlite(&|s| s.statement_cache_capacity = usize::MAX),
        ),
        (
            "statement_cache_capacity",
            sqlite(&|s| s.statement_cache_capacity = 1001),
        ),
        ("snapshots_kept", sqlite(&|s| s.snapshots_kept = usize::MAX)),
        ("snapshots_kept", sqlite(&|s| s.snapshots_kept = 101)),
        (
            "checkpoint",
            sqlite(&|s| s.checkpoint = Checkpoint::Background { pages: 0 }),
        ),
        (
            "checkpoint",
            sqlite(&|s| s.checkpoint = Checkpoint::Inline { pages: 1_000_001 }),
        ),
        ("mmap_size", sqlite(&|s| s.mmap_size = 0x7fff_0001)),
        ("mmap_size", sqlite(&|s| s.mmap_size = u64::MAX)),
        ("cache_size", sqlite(&|s| s.cache_size = 0)),
        ("cache_size", sqlite(&|s| s.cache_size = (1 << 30) + 1)),
        ("cache_size", sqlite(&|s| s.cache_size = u64::MAX)),
        ("pool_size", pool(&|p| p.pool_size = 0)),
        ("pool_size", pool(&|p| p.pool_size = 101)),
        ("max_overflow", pool(&|p| p.max_overflow = u32::MAX)),
        ("pool_timeout", pool(&|p| p.pool_timeout = Duration::MAX)),
        (
            "pool_timeout",
            pool(&|p| p.pool_timeout = Duration::from_micros(999)),
        ),
        (
            "pool_recycle",
            pool(&|p| p.pool_recycle = Some(Duration::MAX)),
        ),
        (
            "pool_recycle",
            pool(&|p| p.pool_recycle = Some(Duration::from_millis(999))),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (field, (pool, sqlite)) in cases {
        let what = format!("{field}: {pool:?} {sqlite:?}");
        let config = file_config(dir.path(), pool, sqlite.clone());
        assert_eq!(refused_field(Store::open_with(config)), field, "{what}");
        // The builder goes through the same check.
        let built = Store::builder()
            .url(file_url(dir.path(), ""))
            .pool(pool)
            .sqlite(sqlite.clone())
            .open();
        assert_eq!(refused_field(built), field, "{what}");
        // So does every backend, even one that ignores the setting.
        let mut memory = file_config(dir.path(), pool, sqlite);
        memory.location = Location::Memory;
        assert_eq!(refused_field(Store::open_with(memory)), field, "{what}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing was written"
    );
}
