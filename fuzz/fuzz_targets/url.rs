//! Database URLs and cursors from arbitrary text: parsed or refused with an
//! error, never a panic; a password never shows in what is displayed.
//!
//! The text is tried as a whole URL, as the query of each kind of URL, and
//! as the value of each of the store's own query parameters, so that the
//! range checks of every numeric setting meet arbitrary values; and after a
//! password, in a URL and in a libpq key=value string, which must never
//! show.
#![no_main]

use libfuzzer_sys::fuzz_target;
use silmari_store::{Cursor, Location, Store, StoreConfig};

/// The password of the connection strings the text is appended to.
const SECRET: &str = "fuzz-Secr3t-9kQ";

/// The store's own query parameters.
const PARAMETERS: [&str; 5] = [
    "pool_size",
    "max_overflow",
    "pool_timeout",
    "pool_recycle",
    "busy_timeout",
];

fuzz_target!(|text: &str| {
    check(text);
    for base in [
        "sqlite:///fuzz.db?",
        "sqlite://?",
        "memory://?",
        "postgresql://u@h/db?",
    ] {
        check(&format!("{base}{text}"));
    }
    for key in PARAMETERS {
        check(&format!("sqlite:///fuzz.db?{key}={text}"));
        check(&format!("memory://?pool_size=1&{key}={text}"));
    }
    // A password the text follows: it never shows, whatever the text does
    // to the rest of the connection string.
    if !text.contains("Secr3t") {
        for shape in [
            format!("postgresql://u:{SECRET}@h/db?{text}"),
            format!("postgresql+asyncpg://u:{SECRET}@h/db?pool_size=1&{text}"),
            format!("postgresql://u@h/db?password={SECRET}&{text}"),
            format!("host=h user=u password={SECRET} {text}"),
        ] {
            let shown = match shape.parse::<StoreConfig>() {
                Ok(config) => format!("{config:?} {} {:?}", config.location, config.location),
                Err(e) => format!("{e} {e:?}"),
            };
            assert!(!shown.contains(SECRET), "{shape} shows {shown}");
        }
    }
    if let Ok(cursor) = text.parse::<Cursor>() {
        // A cursor that parses prints back to a cursor that parses the same.
        let again: Cursor = cursor.to_string().parse().expect("round trip");
        assert_eq!(again, cursor);
    }
});

/// Parses `url`; what parses is inside the documented ranges, and an
/// in-memory store opens from it.
fn check(url: &str) {
    match url.parse::<StoreConfig>() {
        Ok(config) => {
            let _ = format!("{config:?} {}", config.location);
            let day = std::time::Duration::from_secs(86_400);
            let pool = config.pool;
            assert!((1..=100).contains(&pool.pool_size), "{pool:?}");
            assert!(pool.max_overflow <= 100, "{pool:?}");
            assert!(pool.pool_timeout >= std::time::Duration::from_millis(1));
            assert!(pool.pool_timeout <= day, "{pool:?}");
            assert!(
                pool.pool_recycle
                    .is_none_or(|r| r.as_secs() >= 1 && r <= day)
            );
            assert!(config.sqlite.busy_timeout <= day, "{:?}", config.sqlite);
            if config.location == Location::Memory {
                // The whole open path, without touching the disk.
                let store = Store::open_with(config).expect("an in-range memory:// URL opens");
                drop(store);
            }
        }
        Err(e) => {
            let _ = format!("{e} {e:?}");
        }
    }
}
