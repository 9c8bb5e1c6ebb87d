//! A relative SQLite path is resolved once, when the store opens: changing
//! the working directory afterwards does not move the database. This binary
//! holds one test, since it changes the process's working directory.
#![cfg(feature = "sqlite")]

use std::sync::mpsc;

use silmari_store::prelude::*;

#[test]
fn a_relative_path_stays_where_it_was_opened() {
    let first = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    std::env::set_current_dir(first.path()).unwrap();
    let url = "sqlite:///./dev.db?pool_size=1&max_overflow=4";
    let c = {
        let store = Store::open(url).unwrap();
        let c = store
            .conversations()
            .create(NewConversation::titled("kept"))
            .unwrap();
        store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, "still here"))
            .unwrap();
        c
    };
    // Reopened, the pool holds exactly one connection, opened here; every
    // other is opened after the directory changes.
    let store = Store::open(url).unwrap();

    std::env::set_current_dir(other.path()).unwrap();

    // One thread holds the pool's only idle connection in a transaction;
    // meanwhile four readers need connections of their own, which the pool
    // opens now, after the directory changed.
    let (holding_tx, holding) = mpsc::channel();
    let (release_tx, release) = mpsc::channel::<()>();
    let holder = {
        let store = store.clone();
        std::thread::spawn(move || {
            store.transaction(|tx| -> silmari_store::Result<usize> {
                holding_tx.send(()).unwrap();
                release.recv().unwrap();
                Ok(tx
                    .conversations()
                    .get(c.id)?
                    .map_or(0, |c| c.messages.len()))
            })
        })
    };
    holding.recv().unwrap();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || -> silmari_store::Result<()> {
                for _ in 0..50 {
                    let conversation = store.conversations().get(c.id)?;
                    assert_eq!(conversation.unwrap().messages[0].content, "still here");
                }
                Ok(())
            })
        })
        .collect();
    for reader in readers {
        reader.join().unwrap().unwrap();
    }
    release_tx.send(()).unwrap();
    assert_eq!(holder.join().unwrap().unwrap(), 1);

    let path = store.path().expect("a file store").to_path_buf();
    assert!(path.is_absolute(), "{}", path.display());
    assert_eq!(
        path,
        first.path().canonicalize().unwrap().join("dev.db"),
        "the file it was opened at"
    );

    // Writes, a backup and a snapshot (taken before migrating) go to the same file.
    store
        .conversations()
        .append_message(c.id, NewMessage::new(Role::User, "and this"))
        .unwrap();
    store.migrations().down(1).unwrap();
    store.migrations().up().unwrap();
    let snapshots = store.migrations().snapshots().unwrap();
    assert_eq!(snapshots.len(), 2);
    assert!(snapshots.iter().all(|s| s.path.parent() == path.parent()));
    store.backup_to(first.path().join("backup.db")).unwrap();
    assert_eq!(store.check().unwrap().counts.messages, 2);

    let strays: Vec<_> = std::fs::read_dir(other.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        strays.is_empty(),
        "files created in the new directory: {strays:?}"
    );

    drop(store);
    std::env::set_current_dir(std::env::temp_dir()).unwrap();
}
