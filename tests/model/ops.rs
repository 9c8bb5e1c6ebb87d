//! The operations of a sequence and how proptest makes them.

use proptest::prelude::*;
use serde_json::{Value, json};
use silmari_store::Metadata;

/// A message to act on. `Live` indexes every message the model holds (all
/// conversations, in order); `Ghost` one deleted before; `Unknown` an id
/// the store never saw.
#[derive(Debug, Clone)]
pub enum Pick {
    Live(usize),
    Ghost(usize),
    Unknown,
}

/// The parent of a `branch_from`.
#[derive(Debug, Clone)]
pub enum Parent {
    /// `None`: a new first message.
    Root,
    /// A message of the same conversation.
    Same(usize),
    /// A message of another conversation (refused: `parent_id`).
    Foreign(usize),
    /// A deleted message (refused: not found).
    Ghost(usize),
}

/// One step of a sequence. Indexes pick among the records that exist.
#[derive(Debug, Clone)]
pub enum Op {
    CreateConversation {
        title: String,
    },
    Append {
        conversation: usize,
        content: String,
    },
    AppendBatch {
        conversation: usize,
        contents: Vec<String>,
    },
    Update {
        conversation: usize,
        remove: usize,
        title: String,
    },
    /// `update` of the current branch read with `get`: only a slice of it
    /// kept (dropping messages at both ends), two messages swapped (a
    /// reorder, refused where other branches exist), one edited, one pushed
    /// at the end, the metadata replaced.
    Rewrite {
        conversation: usize,
        keep: Option<(usize, usize)>,
        swap: Option<(usize, usize)>,
        edit: Option<(usize, String)>,
        push: Option<String>,
        metadata: Option<Metadata>,
    },
    DeleteConversation {
        conversation: usize,
    },
    CreateFile {
        filename: String,
    },
    DeleteFile {
        file: usize,
    },
    /// A transaction that creates a conversation, appends, then fails.
    FailingTransaction {
        title: String,
        content: String,
    },
    /// A committed transaction in which a batch is refused after its
    /// first message was written (its second takes the id of `message`).
    RefusedInTransaction {
        conversation: usize,
        message: Pick,
        content: String,
    },
    BranchFrom {
        conversation: usize,
        parent: Parent,
        content: String,
        metadata: Metadata,
    },
    SwitchBranch {
        message: Pick,
    },
    DeleteMessage {
        message: Pick,
    },
    DeleteBranch {
        message: Pick,
    },
    EditMessage {
        message: Pick,
        content: Option<String>,
        metadata: Option<Metadata>,
        if_version: Option<Version>,
    },
    AppendToMessage {
        message: Pick,
        delta: String,
    },
    Archive {
        conversation: usize,
    },
    Unarchive {
        conversation: usize,
    },
    EditConversation {
        conversation: usize,
        title: Option<String>,
        metadata: Option<Metadata>,
        if_version: Option<Version>,
    },
    Alternatives {
        message: Pick,
    },
    /// Reads the current branch with `messages`, `size` at a time.
    ReadPages {
        conversation: usize,
        size: u32,
    },
    /// A transaction that branches from a message (or the root), appends
    /// below the new message, maybe archives, and switches back to the
    /// parent's branch, reading its own writes; committed.
    Transaction {
        conversation: usize,
        parent: usize,
        content: String,
        archive: bool,
    },
    /// A transaction that branches, archives and deletes a branch in a
    /// conversation, then fails: nothing of it stays.
    FailingTreeTransaction {
        conversation: usize,
        message: usize,
        content: String,
    },
}

/// The `if_version` of an edit: the conversation's version, or the one
/// before it (stale; 0 for a new conversation, which no store hands out).
#[derive(Debug, Clone, Copy)]
pub enum Version {
    Current,
    Previous,
}

/// Text that is sometimes invalid (a NUL byte) and sometimes SQL-ish.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-zA-Z0-9 ']{0,12}",
        1 => Just("'); DROP TABLE messages; --".to_owned()),
        1 => "[a-z]{0,3}\u{0}[a-z]{0,3}",
    ]
}

/// A JSON value of the kinds metadata holds, now and then one with a NUL
/// (refused) and numbers at the edges of what is kept exactly.
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => any::<i64>().prop_map(Value::from),
        1 => prop::sample::select(vec![
            json!(u64::MAX),
            json!(i64::MIN),
            json!(0.1),
            json!(-0.0),
            json!(1.5e300),
            json!(0.30000000000000004),
        ]),
        1 => any::<bool>().prop_map(Value::from),
        1 => Just(Value::Null),
        4 => "[a-zA-Z0-9 ']{0,12}".prop_map(Value::from),
        1 => text().prop_map(Value::from),
        1 => (text(), any::<i32>()).prop_map(|(s, n)| json!({ "inner": [n, s, { "deep": null }] })),
    ]
}

/// Metadata: a few keys (one of them odd), sometimes refused.
pub fn metadata() -> impl Strategy<Value = Metadata> {
    let key = prop_oneof![
        20 => prop::sample::select(vec!["model", "tokens", "pinned", "système", "a.b"]).prop_map(str::to_owned),
        1 => Just("k\u{0}".to_owned()),
    ];
    prop::collection::vec((key, value()), 0..4).prop_map(|pairs| pairs.into_iter().collect())
}

fn version() -> impl Strategy<Value = Option<Version>> {
    prop_oneof![
        4 => Just(None),
        1 => Just(Some(Version::Current)),
        1 => Just(Some(Version::Previous)),
    ]
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        8 => (0..64usize).prop_map(Pick::Live),
        1 => (0..16usize).prop_map(Pick::Ghost),
        1 => Just(Pick::Unknown),
    ]
}

fn parent() -> impl Strategy<Value = Parent> {
    prop_oneof![
        2 => Just(Parent::Root),
        6 => (0..32usize).prop_map(Parent::Same),
        1 => (0..32usize).prop_map(Parent::Foreign),
        1 => (0..16usize).prop_map(Parent::Ghost),
    ]
}

/// An index among the records that exist (taken modulo their number):
/// small, so that proptest shrinks it to the first ones.
fn index() -> impl Strategy<Value = usize> {
    0..32usize
}

pub fn op() -> impl Strategy<Value = Op> {
    let c = index;
    prop_oneof![
        4 => text().prop_map(|title| Op::CreateConversation { title }),
        5 => (c(), text()).prop_map(|(conversation, content)| Op::Append { conversation, content }),
        2 => (c(), prop::collection::vec(text(), 0..4))
            .prop_map(|(conversation, contents)| Op::AppendBatch { conversation, contents }),
        2 => (c(), c(), text())
            .prop_map(|(conversation, remove, title)| Op::Update { conversation, remove, title }),
        2 => (
            c(),
            prop::option::weighted(0.3, (c(), c())),
            prop::option::weighted(0.3, (c(), c())),
            prop::option::of((c(), text())),
            prop::option::of(text()),
            prop::option::of(metadata()),
        )
            .prop_map(|(conversation, keep, swap, edit, push, metadata)| Op::Rewrite {
                conversation,
                keep,
                swap,
                edit,
                push,
                metadata,
            }),
        1 => c().prop_map(|conversation| Op::DeleteConversation { conversation }),
        2 => prop_oneof![4 => "[a-z]{1,8}\\.txt", 1 => Just(String::new())]
            .prop_map(|filename| Op::CreateFile { filename }),
        1 => c().prop_map(|file| Op::DeleteFile { file }),
        1 => (text(), text()).prop_map(|(title, content)| Op::FailingTransaction { title, content }),
        1 => (c(), pick(), text()).prop_map(|(conversation, message, content)| {
            Op::RefusedInTransaction { conversation, message, content }
        }),
        5 => (c(), parent(), text(), metadata()).prop_map(|(conversation, parent, content, metadata)| {
            Op::BranchFrom { conversation, parent, content, metadata }
        }),
        3 => pick().prop_map(|message| Op::SwitchBranch { message }),
        2 => pick().prop_map(|message| Op::DeleteMessage { message }),
        2 => pick().prop_map(|message| Op::DeleteBranch { message }),
        2 => (pick(), prop::option::of(text()), prop::option::of(metadata()), version())
            .prop_map(|(message, content, metadata, if_version)| {
                Op::EditMessage { message, content, metadata, if_version }
            }),
        2 => (pick(), text()).prop_map(|(message, delta)| Op::AppendToMessage { message, delta }),
        2 => c().prop_map(|conversation| Op::Archive { conversation }),
        1 => c().prop_map(|conversation| Op::Unarchive { conversation }),
        1 => (c(), prop::option::of(text()), prop::option::of(metadata()), version())
            .prop_map(|(conversation, title, metadata, if_version)| {
                Op::EditConversation { conversation, title, metadata, if_version }
            }),
        1 => pick().prop_map(|message| Op::Alternatives { message }),
        1 => (c(), 1..4u32).prop_map(|(conversation, size)| Op::ReadPages { conversation, size }),
        1 => (c(), c(), text()).prop_map(|(conversation, message, content)| {
            Op::FailingTreeTransaction { conversation, message, content }
        }),
        1 => (c(), c(), "[a-z]{0,6}", any::<bool>()).prop_map(|(conversation, parent, content, archive)| {
            Op::Transaction { conversation, parent, content, archive }
        }),
    ]
}

/// No NUL anywhere: what the store accepts as text.
pub fn valid(text: &str) -> bool {
    !text.contains('\0')
}

/// No NUL in any key or string, at any depth: what the store accepts as
/// metadata (the generated values are far below the size and depth limits).
pub fn valid_metadata(metadata: &Metadata) -> bool {
    fn ok(v: &Value) -> bool {
        match v {
            Value::String(s) => valid(s),
            Value::Array(items) => items.iter().all(ok),
            Value::Object(map) => valid_metadata(map),
            _ => true,
        }
    }
    metadata.iter().all(|(k, v)| valid(k) && ok(v))
}
