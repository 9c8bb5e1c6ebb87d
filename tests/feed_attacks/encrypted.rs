//! The change feed on an encrypted SQLite file (feature `encryption`):
//! the log works between stores holding the key, and is unreadable
//! without it.

use std::path::Path;
use std::time::Instant;

use silmari_store::prelude::*;
use silmari_store::{Key, StoreConfig};

use crate::{ACROSS, conv, url};

fn open(path: &Path) -> Store {
    let mut config: StoreConfig = url(path).parse().unwrap();
    config.sqlite.key = Some(Key::passphrase("correct horse").unwrap());
    Store::open_with(config).unwrap()
}

/// Two stores with the key on one encrypted file, both subscribed: each
/// hears its own change at once and the other's within the README's bound;
/// a connection without the key cannot read the `change_log`.
#[test]
fn an_encrypted_file_carries_changes_between_stores_and_hides_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.db");
    let listener = open(&path);
    let writer = open(&path);
    let feed = listener.subscribe().unwrap();
    let own = writer.subscribe().unwrap();
    let c = conv(&writer, "secret");
    let t = Instant::now();
    match feed.recv_timeout(ACROSS) {
        Some(FeedEvent::Change(x)) => assert_eq!(x.id, *c.as_uuid()),
        other => panic!("{other:?} after {:?}", t.elapsed()),
    }
    assert!(matches!(own.try_recv(), Some(FeedEvent::Change(x)) if x.id == *c.as_uuid()));
    let mine = conv(&listener, "mine");
    assert!(matches!(feed.try_recv(), Some(FeedEvent::Change(x)) if x.id == *mine.as_uuid()));
    match own.recv_timeout(ACROSS) {
        Some(FeedEvent::Change(x)) => assert_eq!(x.id, *mine.as_uuid()),
        other => panic!("{other:?}"),
    }
    let plain = rusqlite::Connection::open(&path).unwrap();
    assert!(
        plain
            .query_row("SELECT count(*) FROM change_log", [], |r| r
                .get::<_, i64>(0))
            .is_err()
    );
}
