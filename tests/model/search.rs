//! Search against the model: after every step, a few words of the stored
//! texts (and one that is nowhere) find exactly the messages and titles
//! that hold them, by a reference word split written here, independent of
//! the crate's tokenizer: texts are ASCII, so a word is a run of letters
//! and digits, compared without case.

use std::collections::BTreeSet;

use proptest::prelude::*;
use silmari_store::prelude::*;
use silmari_store::{Archived, SearchQuery};

use super::reference::Model;

/// The words of `text`, lowercased.
fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// A found text: a message id, or `title:` and its conversation's id.
fn key(message: Option<MessageId>, conversation: ConversationId) -> String {
    match message {
        Some(id) => id.to_string(),
        None => format!("title:{conversation}"),
    }
}

/// Checks `store`'s search for a few words against `model`: current
/// branches of conversations not archived, and every branch of every one.
pub fn check_search(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    let mut vocabulary = BTreeSet::new();
    for c in &model.conversations {
        vocabulary.extend(words(&c.title));
        for m in &c.messages {
            vocabulary.extend(words(&m.content));
        }
    }
    let mut probes: Vec<String> = vocabulary.iter().take(2).cloned().collect();
    probes.extend(vocabulary.iter().rev().take(2).cloned());
    probes.push("nowhere".to_owned());
    for word in probes {
        for everything in [false, true] {
            let mut expected = BTreeSet::new();
            for c in &model.conversations {
                if c.archived_at.is_some() && !everything {
                    continue;
                }
                if words(&c.title).contains(&word) {
                    expected.insert(key(None, c.id));
                }
                let texts: Vec<_> = if everything {
                    c.messages.iter().collect()
                } else {
                    c.path()
                };
                for m in texts {
                    if words(&m.content).contains(&word) {
                        expected.insert(key(Some(m.id), c.id));
                    }
                }
            }
            let mut query = SearchQuery::new(word.as_str()).newest_first().limit(1000);
            if everything {
                query = query.all_branches().archived(Archived::Include);
            }
            let page = store
                .search(&query)
                .map_err(|e| TestCaseError::fail(format!("search {word:?}: {e:?}")))?;
            let found: BTreeSet<String> = page
                .items
                .iter()
                .map(|h| key(h.message.as_ref().map(|m| m.id), h.conversation.id))
                .collect();
            prop_assert_eq!(found.len(), page.items.len(), "{:?}: a hit twice", word);
            prop_assert_eq!(
                found,
                expected,
                "search {:?} (every branch: {})",
                word,
                everything
            );
        }
    }
    Ok(())
}
