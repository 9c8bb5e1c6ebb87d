//! Model-based testing: random sequences of repository operations, including
//! invalid inputs and transactions that fail midway, applied to a simple
//! reference model and to a backend; after every step the results and the
//! full contents agree. proptest shrinks a failure to a minimal sequence and
//! keeps it in `tests/model.proptest-regressions`, replayed on every run.
//!
//! Memory and SQLite always; PostgreSQL when `SILMARI_TEST_POSTGRES_URL` is
//! set (always in CI). `PROPTEST_CASES` raises the number of sequences.

mod common;

use proptest::prelude::*;
use silmari_store::prelude::*;

/// One step of a sequence. Indexes pick among the records that exist.
#[derive(Debug, Clone)]
enum Op {
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
}

/// Text that is sometimes invalid (a NUL byte) and sometimes SQL-ish.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-zA-Z0-9 ']{0,12}",
        1 => Just("'); DROP TABLE messages; --".to_owned()),
        1 => "[a-z]{0,3}\u{0}[a-z]{0,3}",
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => text().prop_map(|title| Op::CreateConversation { title }),
        4 => (any::<usize>(), text()).prop_map(|(conversation, content)| Op::Append { conversation, content }),
        2 => (any::<usize>(), prop::collection::vec(text(), 0..4))
            .prop_map(|(conversation, contents)| Op::AppendBatch { conversation, contents }),
        2 => (any::<usize>(), any::<usize>(), text())
            .prop_map(|(conversation, remove, title)| Op::Update { conversation, remove, title }),
        1 => any::<usize>().prop_map(|conversation| Op::DeleteConversation { conversation }),
        2 => prop_oneof![4 => "[a-z]{1,8}\\.txt", 1 => Just(String::new())]
            .prop_map(|filename| Op::CreateFile { filename }),
        1 => any::<usize>().prop_map(|file| Op::DeleteFile { file }),
        1 => (text(), text()).prop_map(|(title, content)| Op::FailingTransaction { title, content }),
    ]
}

/// A conversation in the model: id, title, messages' (id, content) in order.
type ModelConversation = (ConversationId, String, Vec<(MessageId, String)>);

/// The reference: conversations (in creation order) and files.
#[derive(Debug, Default, Clone, PartialEq)]
struct Model {
    conversations: Vec<ModelConversation>,
    files: Vec<(FileId, String)>,
}

fn valid(text: &str) -> bool {
    !text.contains('\0')
}

/// The store's whole contents in the model's shape (conversations and files by id).
fn observe(store: &Store) -> Model {
    let mut conversations: Vec<_> = store
        .conversations()
        .list_all()
        .unwrap()
        .into_iter()
        .map(|c| {
            let messages = c.messages.into_iter().map(|m| (m.id, m.content)).collect();
            (c.id, c.title, messages)
        })
        .collect();
    conversations.sort_by_key(|c| c.0);
    let mut files: Vec<_> = store
        .files()
        .list(PageRequest::first(1000))
        .unwrap()
        .items
        .into_iter()
        .map(|f| (f.id, f.filename))
        .collect();
    files.sort_by_key(|f| f.0);
    Model {
        conversations,
        files,
    }
}

fn sorted(model: &Model) -> Model {
    let mut m = model.clone();
    m.conversations.sort_by_key(|c| c.0);
    m.files.sort_by_key(|f| f.0);
    m
}

/// Applies `op` to the store and the model; checks the result agrees.
fn step(store: &Store, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    let pick = |n: usize, len: usize| (len > 0).then(|| n % len);
    match op {
        Op::CreateConversation { title } => {
            let result = store
                .conversations()
                .create(NewConversation::titled(title.clone()));
            if valid(title) {
                let c = result.map_err(|e| TestCaseError::fail(e.to_string()))?;
                model.conversations.push((c.id, title.clone(), Vec::new()));
            } else {
                prop_assert!(result.unwrap_err().is_invalid_input());
            }
        }
        Op::Append {
            conversation,
            content,
        } => {
            let Some(i) = pick(*conversation, model.conversations.len()) else {
                return Ok(());
            };
            let id = model.conversations[i].0;
            let result = store
                .conversations()
                .append_message(id, NewMessage::new(Role::User, content.clone()));
            if valid(content) {
                let m = result.map_err(|e| TestCaseError::fail(e.to_string()))?;
                model.conversations[i].2.push((m.id, content.clone()));
            } else {
                prop_assert!(result.unwrap_err().is_invalid_input());
            }
        }
        Op::AppendBatch {
            conversation,
            contents,
        } => {
            let Some(i) = pick(*conversation, model.conversations.len()) else {
                return Ok(());
            };
            let id = model.conversations[i].0;
            let inputs = contents
                .iter()
                .map(|c| NewMessage::new(Role::Assistant, c.clone()))
                .collect();
            let result = store.conversations().append_messages(id, inputs);
            if contents.iter().all(|c| valid(c)) {
                let made = result.map_err(|e| TestCaseError::fail(e.to_string()))?;
                model.conversations[i]
                    .2
                    .extend(made.into_iter().map(|m| (m.id, m.content)));
            } else {
                prop_assert!(
                    result.unwrap_err().is_invalid_input(),
                    "nothing of the batch written"
                );
            }
        }
        Op::Update {
            conversation,
            remove,
            title,
        } => {
            let Some(i) = pick(*conversation, model.conversations.len()) else {
                return Ok(());
            };
            let mut c = store
                .conversations()
                .get(model.conversations[i].0)
                .unwrap()
                .unwrap();
            if let Some(r) = pick(*remove, c.messages.len()) {
                c.messages.remove(r);
            }
            c.title = title.clone();
            let result = store.conversations().update(&c);
            if valid(title) {
                result.map_err(|e| TestCaseError::fail(e.to_string()))?;
                let messages = c.messages.into_iter().map(|m| (m.id, m.content)).collect();
                model.conversations[i] = (c.id, title.clone(), messages);
            } else {
                prop_assert!(result.unwrap_err().is_invalid_input());
            }
        }
        Op::DeleteConversation { conversation } => {
            let Some(i) = pick(*conversation, model.conversations.len()) else {
                return Ok(());
            };
            let (id, _, _) = model.conversations.remove(i);
            prop_assert!(store.conversations().delete(id).unwrap());
            prop_assert!(!store.conversations().delete(id).unwrap());
        }
        Op::CreateFile { filename } => {
            let result = store.files().create(NewFile {
                filename: filename.clone(),
                content_type: "text/plain".into(),
                size: 1,
                ..Default::default()
            });
            if filename.is_empty() {
                prop_assert!(result.unwrap_err().is_invalid_input());
            } else {
                let f = result.map_err(|e| TestCaseError::fail(e.to_string()))?;
                model.files.push((f.id, filename.clone()));
            }
        }
        Op::DeleteFile { file } => {
            let Some(i) = pick(*file, model.files.len()) else {
                return Ok(());
            };
            let (id, _) = model.files.remove(i);
            prop_assert!(store.files().delete(id).unwrap());
        }
        Op::FailingTransaction { title, content } => {
            let result: Result<(), Error> = store.transaction(|tx| {
                let c = tx
                    .conversations()
                    .create(NewConversation::titled(title.clone()))?;
                tx.conversations()
                    .append_message(c.id, NewMessage::new(Role::User, content.clone()))?;
                Err(Error::InTransaction) // fails midway, after writing
            });
            prop_assert!(result.is_err());
        }
    }
    prop_assert_eq!(observe(store), sorted(model), "after {:?}", op);
    Ok(())
}

/// Runs sequences against stores made by `fresh`.
fn check(fresh: impl Fn() -> Store, cases: u32) {
    let config = ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in prop::collection::vec(op(), 1..40))| {
        let store = fresh();
        let mut model = Model::default();
        for op in &ops {
            step(&store, &mut model, op)?;
        }
    });
}

#[test]
fn memory_agrees_with_the_model() {
    check(|| Store::open("memory://").unwrap(), 64);
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_agrees_with_the_model() {
    check(|| Store::open("sqlite://").unwrap(), 48);
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_agrees_with_the_model() {
    let Some(database) = common::pg::Database::create() else {
        return;
    };
    // One database, emptied before each sequence.
    let store = Store::open(&database.url).unwrap();
    check(
        || {
            for c in store.conversations().list_all().unwrap() {
                store.conversations().delete(c.id).unwrap();
            }
            for f in store.files().list(PageRequest::first(1000)).unwrap().items {
                store.files().delete(f.id).unwrap();
            }
            store.clone()
        },
        24,
    );
}
