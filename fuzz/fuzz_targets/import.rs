//! The JSON Lines import from arbitrary bytes: imported or refused with an
//! error naming a line, never a panic, and a refused file writes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use silmari_store::TransferOptions;
use silmari_store::{Error, Store};

fuzz_target!(|data: &[u8]| {
    let store = Store::open("memory://").expect("memory store");
    match store.import_jsonl(data, TransferOptions::default(), |_| {}) {
        Ok(_) => {
            // What was imported exports and imports again.
            let mut out = Vec::new();
            store.export_jsonl(&mut out, |_| {}).expect("export");
            let again = Store::open("memory://").expect("memory store");
            again
                .import_jsonl(&out[..], TransferOptions::default(), |_| {})
                .expect("an export imports");
        }
        Err(Error::Import { .. }) | Err(Error::InvalidInput { .. }) => {
            assert!(
                store.counts().expect("counts").is_empty(),
                "a refused file wrote something"
            );
        }
        Err(other) => panic!("unexpected error kind: {other:?}"),
    }
});
