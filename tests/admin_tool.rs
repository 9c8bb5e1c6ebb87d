//! The admin tool (`examples/silmari/`) on a store with a branched and an
//! archived conversation: `list` shows and filters them, `show` prints every
//! branch, and `export` / `import` carry branches, archive and metadata.
//! The tool runs as its own process, so the store is an SQLite file.
#![cfg(feature = "sqlite")]

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::json;
use silmari_store::prelude::*;
use silmari_store::{ConversationTree, TransferOptions};
use time::macros::datetime;

use common::{admin_tool, sqlite_url};

/// The conversations of [`fixture`].
struct Fixture {
    plain: ConversationId,
    branched: ConversationId,
    archived: ConversationId,
}

fn metadata(value: serde_json::Value) -> Metadata {
    value.as_object().expect("an object").clone()
}

/// Three conversations: "Plain" (two messages, one branch), "Branched" (a
/// prompt answered twice, the second answer followed up: two branches, the
/// second current) and "Old", archived. Metadata on conversations and
/// messages, a title that tries to move the cursor.
fn fixture(store: &Store) -> Fixture {
    let at = datetime!(2024-02-29 12:00:00.123456 UTC);
    let conversations = store.conversations();
    let new = |title: &str, meta: Metadata| NewConversation {
        title: title.into(),
        created_at: Some(at),
        metadata: meta,
        ..Default::default()
    };
    let plain = conversations.create(new("Plain", Metadata::new())).unwrap();
    conversations
        .append_messages(
            plain.id,
            vec![
                NewMessage::new(Role::User, "Hello\nthere"),
                NewMessage::new(Role::Assistant, "Hi!").with_attachments(vec![Attachment {
                    file_id: FileId::new(),
                    filename: "a.pdf".into(),
                    content_type: "application/pdf".into(),
                    size: 3,
                }]),
            ],
        )
        .unwrap();

    let branched = conversations
        .create(new("Branched", metadata(json!({"project": "novel"}))))
        .unwrap();
    let prompt = conversations
        .append_message(branched.id, NewMessage::new(Role::User, "Tell me a story"))
        .unwrap();
    conversations
        .append_message(
            branched.id,
            NewMessage::new(Role::Assistant, "Once upon a time")
                .with_metadata(metadata(json!({"model": "a"}))),
        )
        .unwrap();
    conversations
        .branch_from(
            branched.id,
            Some(prompt.id),
            NewMessage::new(Role::Assistant, "It was a dark night")
                .with_metadata(metadata(json!({"model": "b", "tokens": 5}))),
        )
        .unwrap();
    conversations
        .append_message(branched.id, NewMessage::new(Role::User, "Go on"))
        .unwrap();

    let archived = conversations
        .create(new("Old \u{1b}[2J", metadata(json!({"pinned": false}))))
        .unwrap();
    conversations
        .append_message(archived.id, NewMessage::new(Role::User, "Anyone?"))
        .unwrap();
    conversations.archive(archived.id).unwrap();
    Fixture {
        plain: plain.id,
        branched: branched.id,
        archived: archived.id,
    }
}

fn sqlite_store(path: &Path) -> Store {
    Store::open(&sqlite_url(path)).unwrap()
}

/// What the tool prints on standard output for `args` against `url`; it
/// must succeed.
fn run(url: &str, args: &[&str]) -> String {
    let out = Command::new(admin_tool())
        .arg("--url")
        .arg(url)
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run the admin tool");
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The fields of the `list` row of conversation `id`: id, date, time,
/// messages, branches, status, then the title's words.
fn row(listing: &str, id: ConversationId) -> Option<Vec<String>> {
    let id = id.to_string();
    listing
        .lines()
        .find(|l| l.starts_with(&id))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
}

#[test]
fn list_shows_archived_conversations_marked_with_counts_and_branches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let f = fixture(&sqlite_store(&path));
    let url = sqlite_url(&path);

    let all = run(&url, &["list"]);
    let fields = |id| row(&all, id).unwrap_or_else(|| panic!("no row for {id} in:\n{all}"));
    // messages (every branch), branches, status, title
    assert_eq!(fields(f.plain)[3..], ["2", "1", "active", "Plain"], "{all}");
    assert_eq!(
        fields(f.branched)[3..],
        ["4", "2", "active", "Branched"],
        "{all}"
    );
    assert_eq!(
        fields(f.archived)[3..],
        ["1", "1", "archived", "Old", r"\u{1b}[2J"],
        "{all}"
    );
    assert!(!all.contains('\u{1b}'), "control characters are escaped");
    assert!(all.starts_with("ID "), "a header row:\n{all}");
    assert!(
        all.ends_with("3 conversations, 1 of them archived\n"),
        "{all}"
    );

    let archived = run(&url, &["list", "--archived"]);
    assert!(row(&archived, f.archived).is_some(), "{archived}");
    assert!(row(&archived, f.plain).is_none(), "{archived}");
    assert!(row(&archived, f.branched).is_none(), "{archived}");
    assert!(archived.ends_with("\n1 conversation\n"), "{archived}");

    let active = run(&url, &["list", "--active"]);
    assert!(row(&active, f.plain).is_some(), "{active}");
    assert!(row(&active, f.branched).is_some(), "{active}");
    assert!(row(&active, f.archived).is_none(), "{active}");

    // Most recently updated first; a limit says there is more.
    let one = run(&url, &["list", "--limit", "1"]);
    assert_eq!(one.lines().count(), 3, "{one}");
    assert!(row(&one, f.archived).is_some(), "{one}");
    assert!(one.contains("more not listed"), "{one}");
    let every = run(&url, &["list", "--all"]);
    assert_eq!(every, all);

    for refused in [
        &["--archived", "--active"][..],
        &["--limit", "0"],
        &["--limit", "5", "--all"],
    ] {
        let out = Command::new(admin_tool())
            .args(["--url", &url, "list"])
            .args(refused)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "list {refused:?} is refused");
    }
}

#[test]
fn show_prints_every_branch_marking_the_current_one_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = sqlite_store(&path);
    let f = fixture(&store);
    let url = sqlite_url(&path);

    let shown = run(&url, &["show", &f.branched.to_string()]);
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines[0], format!("conversation {}", f.branched));
    assert!(
        shown.contains("\narchived     no\n") && shown.contains("\ntitle        Branched\n"),
        "{shown}"
    );
    assert!(
        shown.contains("\nmetadata     {\"project\":\"novel\"}\n"),
        "{shown}"
    );
    assert!(
        shown.contains("\nmessages     4 on 2 branches, 3 on the current one\n"),
        "{shown}"
    );
    let tree: Vec<&str> = lines
        .iter()
        .skip_while(|l| !l.is_empty())
        .skip(1)
        .copied()
        .collect();
    assert_eq!(
        tree,
        [
            "* user       Tell me a story",
            r#"    [1/2] assistant  Once upon a time  {"model":"a"}"#,
            r#"*   [2/2] assistant  It was a dark night  {"model":"b","tokens":5}"#,
            "*         user       Go on",
        ],
        "{shown}"
    );

    // Switching branches moves the marks, not the tree.
    let first_answer = store
        .conversations()
        .tree(f.branched)
        .unwrap()
        .unwrap()
        .messages[1]
        .id;
    store.conversations().switch_branch(first_answer).unwrap();
    let switched = run(&url, &["show", &f.branched.to_string(), "--ids"]);
    let marked: Vec<&str> = switched.lines().filter(|l| l.starts_with("* ")).collect();
    assert_eq!(marked.len(), 2, "{switched}");
    assert!(marked[1].contains(&first_answer.to_string()), "{switched}");
    assert!(
        marked[1].contains("[1/2] assistant  Once upon a time"),
        "{switched}"
    );

    // A conversation that never branched prints flat; text stays on its line.
    let plain = run(&url, &["show", &f.plain.to_string()]);
    assert!(
        plain.ends_with("\n* user       Hello\\nthere\n* assistant  Hi!  (1 attachment)\n"),
        "{plain}"
    );
    assert!(
        plain.contains("\nmessages     2 on 1 branch, 2 on the current one\n"),
        "{plain}"
    );
    let archived = run(&url, &["show", &f.archived.to_string()]);
    assert!(archived.contains("\narchived     20"), "{archived}");
    assert!(
        archived.contains("\nmetadata     {\"pinned\":false}\n"),
        "{archived}"
    );

    let missing = Command::new(admin_tool())
        .args(["--url", &url, "show", &ConversationId::new().to_string()])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));
}

/// Every conversation's whole tree, versions left out (each store counts
/// its own writes).
fn trees(store: &Store, ids: &[ConversationId]) -> Vec<ConversationTree> {
    ids.iter()
        .map(|id| {
            let mut tree = store.conversations().tree(*id).unwrap().expect("exists");
            tree.conversation.version = 0;
            tree
        })
        .collect()
}

/// Makes the current branches of [`fixture`] the older ones, and gives
/// "Plain" a second first message: what an export must keep beyond the
/// newest messages.
fn rearrange(store: &Store, f: &Fixture) {
    let conversations = store.conversations();
    let first_answer = conversations.tree(f.branched).unwrap().unwrap().messages[1].id;
    conversations.switch_branch(first_answer).unwrap();
    let hello = conversations.get(f.plain).unwrap().unwrap().messages[0].id;
    conversations
        .branch_from(f.plain, None, NewMessage::new(Role::System, "Be brief"))
        .unwrap();
    conversations.switch_branch(hello).unwrap();
    let tree = conversations.tree(f.plain).unwrap().unwrap();
    assert_eq!(tree.current_path().len(), 2, "back on the older branch");
    assert_eq!(tree.children(None).count(), 2);
}

/// Exports the fixture from an SQLite file with the tool, imports the file
/// into the store at `to` with the tool, and checks that every tree, and
/// everything the tool shows, came across.
fn round_trip_through_the_tool(dir: &Path, to: &str) {
    let from_path = dir.join("from.db");
    let source = sqlite_store(&from_path);
    let f = fixture(&source);
    rearrange(&source, &f);
    let ids = [f.plain, f.branched, f.archived];
    let from = sqlite_url(&from_path);
    let dump = dir.join("dump.jsonl");
    let dump = dump.to_str().unwrap();

    run(&from, &["export", dump]);
    run(to, &["import", dump]);

    let target = Store::open(to).unwrap();
    let expected = trees(&source, &ids);
    assert_eq!(trees(&target, &ids), expected);
    assert!(expected[2].conversation.archived_at.is_some());
    assert_eq!(expected[1].messages.len(), 4);
    assert_eq!(expected[1].current_leaf, Some(expected[1].messages[1].id));
    for id in ids {
        let id = id.to_string();
        assert_eq!(run(to, &["show", &id]), run(&from, &["show", &id]));
    }
    assert_eq!(run(to, &["list"]), run(&from, &["list"]));
    assert_eq!(
        run(to, &["export", "-"]),
        std::fs::read_to_string(dump).unwrap(),
        "export → import → export is the same file"
    );
}

#[test]
fn export_then_import_through_the_tool_keeps_branches_archive_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    round_trip_through_the_tool(dir.path(), &sqlite_url(&dir.path().join("to.db")));
}

#[cfg(feature = "postgres")]
#[test]
fn export_then_import_into_postgres_through_the_tool_keeps_every_branch() {
    let Some(database) = common::pg::Database::create() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    round_trip_through_the_tool(dir.path(), &database.url);
}

#[test]
fn export_and_import_keep_every_branch_on_every_local_backend() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Store::open("memory://").unwrap();
    let f = fixture(&memory);
    rearrange(&memory, &f);
    let ids = [f.plain, f.branched, f.archived];
    let mut exported = Vec::new();
    memory.export_jsonl(&mut exported, |_| {}).unwrap();

    let sqlite = sqlite_store(&dir.path().join("import.db"));
    sqlite
        .import_jsonl(&exported[..], TransferOptions::default(), |_| {})
        .unwrap();
    assert_eq!(trees(&sqlite, &ids), trees(&memory, &ids));
    let back = Store::open("memory://").unwrap();
    sqlite
        .copy_to(&back, TransferOptions::default(), |_| {})
        .unwrap();
    assert_eq!(trees(&back, &ids), trees(&memory, &ids));
}

/// `search` prints one line per hit with the matched words marked, filters
/// by role, conversation, branch and archive, and prints the page as JSON;
/// `check --repair` rebuilds the search index.
#[test]
fn search_finds_marks_and_filters_and_check_repairs_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let f = fixture(&sqlite_store(&path));
    let url = sqlite_url(&path);

    let hits = run(&url, &["search", "hello"]);
    assert!(hits.contains(&f.plain.to_string()), "{hits}");
    assert!(hits.contains("**Hello**"), "{hits}");
    // Only the current branch, unless asked; roles and conversations filter.
    assert_eq!(run(&url, &["search", "once"]).trim(), "no hits");
    let all = run(&url, &["search", "once", "--all-branches"]);
    assert!(
        all.contains("**Once**") && all.contains("assistant"),
        "{all}"
    );
    assert_eq!(
        run(
            &url,
            &["search", "once", "--all-branches", "--role", "user"]
        )
        .trim(),
        "no hits"
    );
    let other = f.plain.to_string();
    let elsewhere = run(&url, &["search", "dark", "--conversation", &other]);
    assert_eq!(elsewhere.trim(), "no hits");
    assert!(run(&url, &["search", "dark"]).contains(&f.branched.to_string()));
    // Archived conversations only when asked; a title is a hit of its own.
    assert_eq!(run(&url, &["search", "anyone"]).trim(), "no hits");
    let archived = run(&url, &["search", "anyone", "--archived"]);
    assert!(archived.contains(&f.archived.to_string()), "{archived}");
    assert!(run(&url, &["search", "branched"]).contains("title"));

    let json: serde_json::Value =
        serde_json::from_str(&run(&url, &["search", "story", "--json"])).unwrap();
    let hit = &json["items"][0];
    let text = hit["snippet"]["text"].as_str().unwrap();
    let range = &hit["snippet"]["highlights"][0];
    let (start, end) = (
        range["start"].as_u64().unwrap() as usize,
        range["end"].as_u64().unwrap() as usize,
    );
    assert_eq!(&text[start..end], "story");
    assert_eq!(hit["message"]["role"], "user");

    let bad = Command::new(common::admin_tool())
        .args(["--url", &url, "search", "--", "-only"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("query"));

    let checked = run(&url, &["check", "--repair"]);
    assert!(
        checked.contains("search index       0 texts out of step"),
        "{checked}"
    );
    assert!(checked.contains("healthy            true"), "{checked}");
    assert!(run(&url, &["search", "hello"]).contains("**Hello**"));
}
