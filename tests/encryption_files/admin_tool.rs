//! The admin tool: `encrypt`, `rekey`, `decrypt`, keys from files, the
//! environment and a prompt without echo.

use std::path::{Path, PathBuf};

use silmari_store::Key;

use crate::common::{self, sqlite_url as url};
use crate::{assert_whole, make};

/// Where a decrypted copy goes in `dir`.
fn copy_in(dir: &Path) -> PathBuf {
    dir.join("decrypted.db")
}

#[test]
fn the_admin_tool_encrypts_rekeys_and_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tool.db");
    let c = make(&path, None, 12);
    let tool = common::admin_tool();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let first = write("first.key", "first secret passphrase\n");
    let second = write("second.key", "second secret passphrase\n");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = std::process::Command::new(tool)
            .arg("--url")
            .arg(url(&path))
            .args(args)
            .env_remove("SILMARI_KEY")
            .env_remove("SILMARI_NEW_KEY")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !text.contains("secret passphrase"),
            "a key was shown: {text}"
        );
        (out.status.success(), text)
    };
    let first_s = first.to_str().unwrap();
    let second_s = second.to_str().unwrap();

    let (ok, text) = run(&["encrypt", "--new-key-file", first_s], &[]);
    assert!(ok, "{text}");
    // Without a key the tool says so; with it, it reads the store.
    let (ok, text) = run(&["list"], &[]);
    assert!(!ok && text.contains("no key was given"), "{text}");
    let (ok, text) = run(&["--key-file", first_s, "list"], &[]);
    assert!(ok && text.contains("lighthouse keeper"), "{text}");
    // Keys from the environment, never from the command line.
    let (ok, text) = run(
        &["rekey"],
        &[
            ("SILMARI_KEY", "first secret passphrase"),
            ("SILMARI_NEW_KEY", "second secret passphrase"),
        ],
    );
    assert!(ok, "{text}");
    let (ok, text) = run(&["--key-file", first_s, "list"], &[]);
    assert!(!ok && text.contains("does not open"), "{text}");
    // No key anywhere and no terminal to ask on: a clear refusal.
    let (ok, text) = run(&["rekey", "--new-key-file", first_s], &[]);
    assert!(!ok && text.contains("key"), "{text}");
    let copy = copy_in(dir.path());
    let (ok, text) = run(
        &[
            "--key-file",
            second_s,
            "decrypt",
            "--to",
            copy.to_str().unwrap(),
        ],
        &[],
    );
    assert!(ok, "{text}");
    assert_whole(&copy, None, c, 12);
    assert_whole(
        &path,
        Some(Key::passphrase("second secret passphrase").unwrap()),
        c,
        12,
    );
}

/// On a terminal (here `script`'s pseudo-terminal) the tool asks for the
/// new key twice, without echo, and the typed key encrypts the file.
#[test]
fn the_admin_tool_asks_for_a_key_without_echo() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prompted.db");
    let c = make(&path, None, 3);
    let command = format!(
        "{} --url {} encrypt",
        common::admin_tool().display(),
        url(&path)
    );
    // Typed after the prompt is up (typed earlier, a terminal would echo it
    // before the tool turns echo off).
    let typing = "sleep 2; printf 'typed secret words\\n'; sleep 1; printf 'typed secret words\\n'";
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("({typing}) | script -qec \"$0\" /dev/null"))
        .arg(&command)
        .env_remove("SILMARI_KEY")
        .env_remove("SILMARI_NEW_KEY")
        .output()
        .expect("sh and script (util-linux) are there");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("new key:") && shown.contains("again:"),
        "{shown}"
    );
    assert!(
        !shown.contains("typed secret"),
        "the key was echoed: {shown}"
    );
    assert_whole(
        &path,
        Some(Key::passphrase("typed secret words").unwrap()),
        c,
        3,
    );
}
