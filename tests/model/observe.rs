//! Reading a store's whole contents in the model's shape, checking on the
//! way that its reads agree with each other: `tree()`, `get()`, `list_all()`
//! and `list()` with every archive filter.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use silmari_store::prelude::*;
use silmari_store::{Archived, ConversationOrder, ConversationSummary};
use time::OffsetDateTime;

use super::reference::{MConversation, MMessage, Model};

/// What each conversation's row says beside the model: its version and
/// `updated_at`, which the model does not predict but checks move as documented.
pub type Stamps = BTreeMap<ConversationId, (u64, OffsetDateTime)>;

/// How a version or `updated_at` may change in one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Same,
    Up,
    NotDown,
}

/// What a step did to one conversation's row.
#[derive(Debug, Clone, Copy)]
pub struct Effect {
    pub id: ConversationId,
    pub version: Change,
    pub updated_at: Change,
}

impl Effect {
    /// A write: version and `updated_at` move forward.
    pub fn write(id: ConversationId) -> Self {
        Effect {
            id,
            version: Change::Up,
            updated_at: Change::Up,
        }
    }

    /// A change that moves the version only (switch, archive).
    pub fn version_only(id: ConversationId, version: Change) -> Self {
        Effect {
            id,
            version,
            updated_at: Change::Same,
        }
    }
}

fn fail(e: Error) -> TestCaseError {
    TestCaseError::fail(format!("{e:?}"))
}

/// The store's whole contents as a model (by id), with every conversation's
/// stamps. Fails when two reads of the store disagree.
pub fn observe(store: &Store) -> Result<(Model, Stamps), TestCaseError> {
    let all = store.conversations().list_all().map_err(fail)?;
    for pair in all.windows(2) {
        prop_assert!(
            pair[0].updated_at >= pair[1].updated_at,
            "list_all: most recently updated first"
        );
    }
    let mut conversations = Vec::new();
    let mut stamps = Stamps::new();
    let mut summaries = BTreeMap::new();
    for c in all {
        let tree = store
            .conversations()
            .tree(c.id)
            .map_err(fail)?
            .ok_or_else(|| TestCaseError::fail("listed, but tree() finds nothing"))?;
        let got = store
            .conversations()
            .get(c.id)
            .map_err(fail)?
            .ok_or_else(|| TestCaseError::fail("listed, but get() finds nothing"))?;
        prop_assert_eq!(&got, &c, "get() and list_all() agree");
        let path: Vec<Message> = tree.current_path().into_iter().cloned().collect();
        prop_assert_eq!(&path, &c.messages, "get() is the tree's current branch");
        prop_assert_eq!(tree.current_leaf, c.messages.last().map(|m| m.id));
        let mut summary = c.summary();
        summary.message_count = tree.messages.len() as u64;
        prop_assert_eq!(&tree.conversation, &summary, "tree() counts every branch");
        let mut seen = BTreeSet::new();
        for m in &tree.messages {
            prop_assert_eq!(m.conversation_id, c.id);
            if let Some(parent) = m.parent_id {
                prop_assert!(seen.contains(&parent), "a parent comes before its children");
            }
            seen.insert(m.id);
        }
        stamps.insert(c.id, (c.version, c.updated_at));
        summaries.insert(c.id, summary);
        conversations.push(MConversation {
            id: c.id,
            title: c.title,
            metadata: c.metadata,
            archived_at: c.archived_at,
            messages: tree.messages.iter().map(MMessage::of).collect(),
            leaf: tree.current_leaf,
        });
    }
    check_lists(store, &summaries)?;
    conversations.sort_by_key(|c| c.id);
    let mut files: Vec<_> = store
        .files()
        .list(PageRequest::first(1000))
        .map_err(fail)?
        .items
        .into_iter()
        .map(|f| (f.id, f.filename))
        .collect();
    files.sort_by_key(|f| f.0);
    let model = Model {
        conversations,
        files,
        ghosts: Vec::new(),
    };
    Ok((model, stamps))
}

/// `list()` with each archive filter and both orders, in small pages: each
/// lists exactly the conversations it should, once, in its order, with the
/// same rows as `tree()`.
fn check_lists(
    store: &Store,
    summaries: &BTreeMap<ConversationId, ConversationSummary>,
) -> Result<(), TestCaseError> {
    let cases = [
        (ConversationOrder::UpdatedAt, Archived::Hide, 3),
        (ConversationOrder::UpdatedAt, Archived::Include, 2),
        (ConversationOrder::UpdatedAt, Archived::Only, 1),
        (ConversationOrder::CreatedAt, Archived::Hide, 2),
        (ConversationOrder::CreatedAt, Archived::Include, 3),
        (ConversationOrder::CreatedAt, Archived::Only, 2),
    ];
    for (order, archived, limit) in cases {
        let mut query = ConversationQuery {
            order,
            page: PageRequest::first(limit),
            archived,
        };
        let mut listed: Vec<ConversationSummary> = Vec::new();
        loop {
            let page = store.conversations().list(query.clone()).map_err(fail)?;
            prop_assert!(page.items.len() <= limit as usize);
            listed.extend(page.items);
            match page.next {
                Some(cursor) => query = query.after(cursor),
                None => break,
            }
            prop_assert!(listed.len() <= summaries.len(), "{:?} never ends", archived);
        }
        let key = |s: &ConversationSummary| match order {
            ConversationOrder::UpdatedAt => (s.updated_at, s.id),
            ConversationOrder::CreatedAt => (s.created_at, s.id),
        };
        for pair in listed.windows(2) {
            prop_assert!(
                key(&pair[0]) > key(&pair[1]),
                "{:?} {:?}: newest first, ties by id, each once",
                order,
                archived
            );
        }
        let expected: Vec<&ConversationSummary> = summaries
            .values()
            .filter(|s| match archived {
                Archived::Hide => s.archived_at.is_none(),
                Archived::Include => true,
                Archived::Only => s.archived_at.is_some(),
            })
            .collect();
        let mut got: Vec<&ConversationSummary> = listed.iter().collect();
        got.sort_by_key(|s| s.id);
        prop_assert_eq!(got, expected, "list({:?}, {:?})", order, archived);
    }
    Ok(())
}

/// Checks every conversation's version and `updated_at` moved as `effect`
/// says (and no other did) between `before` and `after`.
pub fn check_stamps(
    before: &Stamps,
    after: &Stamps,
    effect: Option<Effect>,
) -> Result<(), TestCaseError> {
    fn moved<T: PartialOrd + std::fmt::Debug>(
        change: Change,
        old: &T,
        new: &T,
        what: &str,
    ) -> Result<(), TestCaseError> {
        let ok = match change {
            Change::Same => new == old,
            Change::Up => new > old,
            Change::NotDown => new >= old,
        };
        prop_assert!(ok, "{} should be {:?}: {:?} → {:?}", what, change, old, new);
        Ok(())
    }
    for (id, (version, updated_at)) in after {
        let Some((old_version, old_updated_at)) = before.get(id) else {
            continue; // created by this step
        };
        let (v, u) = match effect {
            Some(e) if e.id == *id => (e.version, e.updated_at),
            _ => (Change::Same, Change::Same),
        };
        moved(v, old_version, version, "version")?;
        moved(u, old_updated_at, updated_at, "updated_at")?;
    }
    Ok(())
}
