//! Opening an existing encrypted database and running a first query, key
//! derivation included, beside the same with a plain file (the
//! `encryption` feature).

use std::time::Duration;

use criterion::Criterion;
use silmari_store::Key;
use silmari_store::prelude::*;

use super::{conversation_of, quick, sqlite_encrypted_file, sqlite_file};

/// The passphrase of the benches' encrypted files.
pub fn passphrase() -> Key {
    Key::passphrase("a passphrase of the benches").expect("a key")
}

/// Opens the file at `url` with `key` and reads its newest conversations:
/// what an app does at start.
fn open_and_list(url: &str, key: Option<Key>) -> usize {
    let mut builder = Store::builder().url(url);
    if let Some(key) = key {
        builder = builder.key(key);
    }
    let store = builder.open().expect("open");
    store
        .conversations()
        .list(ConversationQuery::recent(20))
        .expect("list")
        .items
        .len()
}

/// Open + first query, on files holding 10 conversations of 100 messages.
/// SQLCipher's key derivation: PBKDF2-HMAC-SHA512, 256,000 iterations, once
/// per store (the store keys its other connections with the result); a raw
/// key has none.
pub(crate) fn open_and_first_query(c: &mut Criterion) {
    let mut g = c.benchmark_group("open a database of 1000 messages and list 20 conversations");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(if quick() { 2 } else { 6 }));
    let (_plain_dir, plain, store) = sqlite_file();
    let (_encrypted_dir, encrypted, encrypted_store) = sqlite_encrypted_file();
    let raw_key = Key::raw(&[0x2a; 32]);
    let raw_dir = tempfile::tempdir().expect("temp dir");
    let raw = raw_dir.path().join("raw.db");
    let raw_store = Store::builder()
        .url(format!("sqlite:///{}", raw.display()))
        .key(raw_key.clone())
        .open()
        .expect("open");
    for s in [&store, &encrypted_store, &raw_store] {
        for _ in 0..10 {
            conversation_of(s, 100);
        }
    }
    drop((store, encrypted_store, raw_store));
    let url = |p: &std::path::Path| format!("sqlite:///{}", p.display());
    let cases = [
        ("sqlite", url(&plain), None),
        (
            "sqlite encrypted, passphrase",
            url(&encrypted),
            Some(passphrase()),
        ),
        ("sqlite encrypted, raw key", url(&raw), Some(raw_key)),
    ];
    for (name, url, key) in cases {
        g.bench_function(name, |bench| {
            bench.iter(|| assert_eq!(open_and_list(&url, key.clone()), 10))
        });
    }
    g.finish();
}
