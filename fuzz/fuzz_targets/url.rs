//! Database URLs and cursors from arbitrary text: parsed or refused with an
//! error, never a panic; a password never shows in what is displayed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use silmari_store::{Cursor, StoreConfig};

fuzz_target!(|text: &str| {
    if let Ok(config) = text.parse::<StoreConfig>() {
        let _ = format!("{config:?} {}", config.location);
    }
    if let Ok(cursor) = text.parse::<Cursor>() {
        // A cursor that parses prints back to a cursor that parses the same.
        let again: Cursor = cursor.to_string().parse().expect("round trip");
        assert_eq!(again, cursor);
    }
});
