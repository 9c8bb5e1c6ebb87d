//! Encrypting, re-keying and decrypting: what survives, what is refused, what is left.

use std::path::Path;
use std::time::Duration;

use silmari_store::prelude::*;
use silmari_store::{Key, KeyProblem, StoreConfig};

use crate::common::{self, sqlite_url as url};
use crate::{assert_whole, files_holding, key_problem, make, names, new_key, old_key, open};

#[test]
fn encrypt_rekey_and_decrypt_keep_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let c = make(&path, None, 300);

    Store::encrypt(&path, &old_key()).unwrap();
    assert!(matches!(
        open(&path, None).err(),
        Some(Error::Key {
            problem: KeyProblem::Missing,
            ..
        })
    ));
    assert_whole(&path, Some(old_key()), c, 300);

    Store::rekey(&path, &old_key(), &new_key()).unwrap();
    assert!(matches!(
        open(&path, Some(old_key())).err(),
        Some(Error::Key {
            problem: KeyProblem::Wrong,
            ..
        })
    ));
    assert_whole(&path, Some(new_key()), c, 300);

    let plain = dir.path().join("plain-copy.db");
    Store::decrypt(&path, &new_key(), &plain).unwrap();
    assert_whole(&plain, None, c, 300);
    // The encrypted original is still encrypted, and still opens.
    assert_whole(&path, Some(new_key()), c, 300);
    // Nothing is left beside them but their lock files and (closing) logs.
    for name in names(dir.path()) {
        assert!(!name.contains("partial"), "left behind: {name}");
    }
}

#[test]
fn a_key_that_does_not_fit_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.db");
    let encrypted = dir.path().join("encrypted.db");
    make(&plain, None, 10);
    make(&encrypted, Some(old_key()), 10);
    let read = |p: &Path| std::fs::read(p).unwrap();
    let (plain_bytes, encrypted_bytes) = (read(&plain), read(&encrypted));

    // Encrypting an encrypted file: it needs a key to be read.
    assert_eq!(
        key_problem(Store::encrypt(&encrypted, &new_key())),
        KeyProblem::Missing
    );
    assert_eq!(
        key_problem(Store::rekey(&encrypted, &new_key(), &old_key())),
        KeyProblem::Wrong
    );
    assert_eq!(
        key_problem(Store::rekey(&plain, &old_key(), &new_key())),
        KeyProblem::NotEncrypted
    );
    let to = dir.path().join("never.db");
    assert_eq!(
        key_problem(Store::decrypt(&encrypted, &new_key(), &to)),
        KeyProblem::Wrong
    );
    assert!(!to.exists());
    // A decrypted copy never replaces a file.
    let taken = dir.path().join("taken.db");
    std::fs::write(&taken, "mine").unwrap();
    match Store::decrypt(&encrypted, &old_key(), &taken) {
        Err(Error::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::AlreadyExists)
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(std::fs::read_to_string(&taken).unwrap(), "mine");
    match Store::encrypt(dir.path().join("missing.db"), &new_key()) {
        Err(Error::Open { reason, .. }) => assert!(reason.contains("no database"), "{reason}"),
        other => panic!("expected Open, got {other:?}"),
    }

    assert!(read(&plain) == plain_bytes, "the plain file changed");
    assert!(
        read(&encrypted) == encrypted_bytes,
        "the encrypted file changed"
    );
    for name in names(dir.path()) {
        assert!(!name.contains("partial"), "left behind: {name}");
    }
}

#[test]
fn an_open_store_blocks_the_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    let c = make(&path, None, 20);
    let store = open(&path, None).unwrap();
    match Store::encrypt(&path, &new_key()) {
        Err(Error::Unavailable { reason, .. }) => assert!(reason.contains("close"), "{reason}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // The open store goes on, on its plain file.
    store
        .conversations()
        .append_message(c, NewMessage::new(Role::User, "still here"))
        .unwrap();
    drop(store);
    // Once it is closed (its pool may take a moment), the change goes through.
    Store::encrypt(&path, &new_key()).unwrap();
    assert_whole(&path, Some(new_key()), c, 21);
}

#[test]
fn a_connection_opened_before_cannot_write_into_the_replaced_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moved.db");
    let c = make(&path, None, 5);
    // Opened, never used: it holds no lock, so the change goes through.
    let early = rusqlite::Connection::open(&path).unwrap();
    Store::encrypt(&path, &new_key()).unwrap();
    let wrote = early.execute(
        "INSERT INTO file_metadata (id, filename, content_type, size, created_at) \
         VALUES ('x', 'lost.txt', 'text/plain', 1, 0)",
        [],
    );
    // It fails (SQLite sees the file was replaced), or it wrote to the old
    // file, which no store will read again: either way, not acknowledged
    // into the new one silently.
    assert!(
        wrote.is_err(),
        "a write into the replaced file was accepted: {wrote:?}"
    );
    drop(early);
    assert_whole(&path, Some(new_key()), c, 5);
}

/// The key never shows: not in `Debug` of the options, the configuration
/// or the builder, not in any error, not in any log record (every level,
/// slow-statement logging on), through opening, failing, re-keying and
/// decrypting.
#[test]
fn the_key_is_never_shown() {
    common::capture_logs();
    let secret = "zanzibar-quartz-7";
    let key = || Key::passphrase(secret).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quiet.db");
    let mut config: StoreConfig = url(&path).parse().unwrap();
    config.sqlite.key = Some(key());
    config.sqlite.slow_statement = Some(Duration::ZERO);
    let builder = Store::builder().url(url(&path)).key(key());
    let mut shown = format!("{config:?} {:?} {builder:?}", config.sqlite);
    let store = Store::open_with(config).unwrap();
    fill_one(&store);
    drop(store);
    for result in [
        Store::encrypt(&path, &key()),
        Store::rekey(&path, &new_key(), &key()),
        Store::decrypt(&path, &new_key(), dir.path().join("x.db")),
    ] {
        let e = result.unwrap_err();
        shown.push_str(&common::shown(&e));
    }
    Store::rekey(
        &path,
        &key(),
        &Key::passphrase(format!("{secret}-2")).unwrap(),
    )
    .unwrap();
    Store::decrypt(
        &path,
        &Key::passphrase(format!("{secret}-2")).unwrap(),
        dir.path().join("plain.db"),
    )
    .unwrap();
    shown.push_str(&common::logged());
    assert!(!shown.is_empty());
    assert!(!shown.contains("zanzibar"), "the key was shown: {shown}");
    // The hex form SQLCipher is handed (a derived key) never shows either.
    let hex_key = shown.match_indices("x'").any(|(at, _)| {
        shown[at + 2..]
            .bytes()
            .take_while(u8::is_ascii_hexdigit)
            .count()
            >= 64
    });
    assert!(!hex_key, "a raw key was shown: {shown}");
}

fn fill_one(store: &Store) {
    store
        .conversations()
        .create(NewConversation::titled("quiet"))
        .unwrap();
}

/// Through a symbolic link, the file it points to is encrypted (replacing
/// the link would leave the plain file where it was) and the link still
/// leads to it.
#[cfg(unix)]
#[test]
fn a_symbolic_link_encrypts_the_file_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.db");
    let link = dir.path().join("link.db");
    let c = make(&real, None, 4);
    std::os::unix::fs::symlink(&real, &link).unwrap();
    Store::encrypt(&link, &new_key()).unwrap();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(matches!(
        open(&real, None).err(),
        Some(Error::Key {
            problem: KeyProblem::Missing,
            ..
        })
    ));
    assert_whole(&link, Some(new_key()), c, 4);
}

/// Encrypting leaves no plain copy behind: the snapshots taken before
/// migrations are encrypted with the file (first), and neither a journal
/// nor a partial file holds the old pages; re-keying re-keys the snapshots,
/// which still restore.
#[test]
fn encrypting_leaves_no_plain_copy_and_snapshots_follow_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drafts.db");
    let c = make(&path, None, 30);
    let store = open(&path, None).unwrap();
    store.migrations().down_to(1).unwrap();
    store.migrations().up().unwrap();
    let snapshots = store.migrations().snapshots().unwrap();
    assert_eq!(snapshots.len(), 2);
    drop(store);
    // The control: the plain file and both snapshots hold the text.
    assert_eq!(files_holding(dir.path(), "lighthouse").len(), 3);

    Store::encrypt(&path, &old_key()).unwrap();
    assert_eq!(
        files_holding(dir.path(), "lighthouse"),
        Vec::<String>::new()
    );
    for name in names(dir.path()) {
        assert!(
            !name.ends_with("-journal") && !name.contains("partial"),
            "{name}"
        );
    }
    Store::rekey(&path, &old_key(), &new_key()).unwrap();
    for snapshot in &snapshots {
        assert!(matches!(
            open(&snapshot.path, Some(old_key())).err(),
            Some(Error::Key { .. })
        ));
    }
    let store = open(&path, Some(new_key())).unwrap();
    store.conversations().delete(c).unwrap();
    let latest = snapshots
        .iter()
        .find(|s| s.version == common::LATEST)
        .unwrap();
    store.migrations().restore_snapshot(&latest.path).unwrap();
    assert_eq!(
        store
            .conversations()
            .get(c)
            .unwrap()
            .unwrap()
            .messages
            .len(),
        30
    );
}

/// The file keeps its permissions through a change; a plain copy is
/// readable by its owner only; a file with other names (hard links, which
/// would keep the old contents) is refused.
#[cfg(unix)]
#[test]
fn permissions_are_kept_and_hard_links_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private.db");
    let c = make(&path, None, 3);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    Store::encrypt(&path, &new_key()).unwrap();
    assert_eq!(mode(&path), 0o640);
    let copy = dir.path().join("plain.db");
    Store::decrypt(&path, &new_key(), &copy).unwrap();
    assert_eq!(mode(&copy), 0o600);

    let other = dir.path().join("other-name.db");
    std::fs::hard_link(&path, &other).unwrap();
    let before = std::fs::read(&path).unwrap();
    match Store::rekey(&path, &new_key(), &old_key()) {
        Err(Error::Open { reason, .. }) => assert!(reason.contains("hard links"), "{reason}"),
        other => panic!("expected Open naming hard links, got {other:?}"),
    }
    assert!(std::fs::read(&path).unwrap() == before, "the file changed");
    std::fs::remove_file(&other).unwrap();
    Store::rekey(&path, &new_key(), &old_key()).unwrap();
    assert_whole(&path, Some(old_key()), c, 3);
}
