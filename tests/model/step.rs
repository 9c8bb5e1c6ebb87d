//! One operation applied to the store and to the model, its result
//! checked: the conversation and file operations here, the tree operations
//! in `tree.rs`; and the helpers both use.

use proptest::prelude::*;
use silmari_store::prelude::*;

use crate::observe::Effect;
use crate::ops::{Op, Pick, Version, valid, valid_metadata};
use crate::reference::{MConversation, MMessage, Model};

pub fn fail(e: Error) -> TestCaseError {
    TestCaseError::fail(format!("{e:?}"))
}

pub fn pick(n: usize, len: usize) -> Option<usize> {
    (len > 0).then(|| n % len)
}

/// The message a [`Pick`] names, with the index of its conversation when
/// the model holds it.
pub fn target(model: &Model, message: &Pick) -> Option<(MessageId, Option<usize>)> {
    match message {
        Pick::Live(n) => {
            let all = model.all_messages();
            let (c, id) = all[pick(*n, all.len())?];
            Some((id, Some(c)))
        }
        Pick::Ghost(n) => Some((model.ghosts[pick(*n, model.ghosts.len())?], None)),
        Pick::Unknown => Some((MessageId::new(), None)),
    }
}

/// A message as the model keeps it; the model sets its parent.
pub fn fresh(m: &Message) -> MMessage {
    MMessage {
        parent: None,
        ..MMessage::of(m)
    }
}

/// Checks `result` is the refusal of invalid input.
pub fn refused<T: std::fmt::Debug>(result: Result<T, Error>) -> Result<(), TestCaseError> {
    match result {
        Err(e) if e.is_invalid_input() => Ok(()),
        other => Err(TestCaseError::fail(format!(
            "expected InvalidInput, got {other:?}"
        ))),
    }
}

/// Checks `result` is NotFound.
pub fn not_found<T: std::fmt::Debug>(result: Result<T, Error>) -> Result<(), TestCaseError> {
    match result {
        Err(e) if e.is_not_found() => Ok(()),
        other => Err(TestCaseError::fail(format!(
            "expected NotFound, got {other:?}"
        ))),
    }
}

/// Checks `result` is Stale.
pub fn stale<T: std::fmt::Debug>(result: Result<T, Error>) -> Result<(), TestCaseError> {
    match result {
        Err(e) if e.is_stale() => Ok(()),
        other => Err(TestCaseError::fail(format!(
            "expected Stale, got {other:?}"
        ))),
    }
}

/// The `if_version` an edit names for a conversation at `current`.
pub fn expected_version(version: Version, current: u64) -> u64 {
    match version {
        Version::Current => current,
        Version::Previous => current - 1,
    }
}

/// The stored version of conversation `id`.
pub fn version_of(store: &Store, id: ConversationId) -> Result<u64, TestCaseError> {
    Ok(store
        .conversations()
        .get(id)
        .map_err(fail)?
        .expect("in the model")
        .version)
}

/// Applies `op` to the store and the model; checks the result agrees and
/// returns what it did to a conversation's version and `updated_at`.
/// Tree operations go to [`tree::step`](crate::tree::step).
pub fn step(store: &Store, model: &mut Model, op: &Op) -> Result<Option<Effect>, TestCaseError> {
    let conversations = store.conversations();
    match op {
        Op::CreateConversation { title } => {
            let result = conversations.create(NewConversation::titled(title.clone()));
            if valid(title) {
                let c = result.map_err(fail)?;
                prop_assert_eq!(c.version, 1);
                model
                    .conversations
                    .push(MConversation::new(c.id, title.clone()));
            } else {
                refused(result)?;
            }
            Ok(None)
        }
        Op::Append {
            conversation,
            content,
        } => {
            let Some(i) = pick(*conversation, model.conversations.len()) else {
                return Ok(None);
            };
            let c = &mut model.conversations[i];
            let result =
                conversations.append_message(c.id, NewMessage::new(Role::User, content.clone()));
            if !valid(content) {
                refused(result)?;
                return Ok(None);
            }
            let m = result.map_err(fail)?;
            prop_assert_eq!(m.parent_id, c.leaf, "a child of the current leaf");
            c.append(fresh(&m));
            Ok(Some(Effect::write(c.id)))
        }
        Op::AppendBatch {
            conversation,
            contents,
        } => {
            let Some(i) = pick(*conversation, model.conversations.len()) else {
                return Ok(None);
            };
            let c = &mut model.conversations[i];
            let inputs = contents
                .iter()
                .map(|content| NewMessage::new(Role::Assistant, content.clone()))
                .collect();
            let result = conversations.append_messages(c.id, inputs);
            if !contents.iter().all(|content| valid(content)) {
                refused(result)?; // nothing of the batch written
                return Ok(None);
            }
            let made = result.map_err(fail)?;
            prop_assert_eq!(made.len(), contents.len());
            for m in &made {
                prop_assert_eq!(m.parent_id, c.leaf, "each below the one before");
                c.append(fresh(m));
            }
            Ok((!made.is_empty()).then(|| Effect::write(c.id)))
        }
        Op::Update {
            conversation,
            remove,
            title,
        } => {
            let Some(i) = pick(*conversation, model.conversations.len()) else {
                return Ok(None);
            };
            let id = model.conversations[i].id;
            let mut c = conversations.get(id).map_err(fail)?.expect("in the model");
            if let Some(r) = pick(*remove, c.messages.len()) {
                c.messages.remove(r);
            }
            c.title = title.clone();
            let result = conversations.update(&c);
            if !valid(title) {
                refused(result)?;
                return Ok(None);
            }
            let written = result.map_err(fail)?;
            let list: Vec<MMessage> = c.messages.iter().map(fresh).collect();
            let model_c = &mut model.conversations[i];
            model_c.title = title.clone();
            let dropped = model_c.rewrite(&list);
            model.ghosts.extend(dropped);
            check_written(&written, &model.conversations[i])?;
            Ok(Some(Effect::write(id)))
        }
        Op::Rewrite {
            conversation,
            keep,
            swap,
            edit,
            push,
            metadata,
        } => {
            let Some(i) = pick(*conversation, model.conversations.len()) else {
                return Ok(None);
            };
            let id = model.conversations[i].id;
            let mut c = conversations.get(id).map_err(fail)?.expect("in the model");
            if let Some((a, b)) = keep {
                let len = c.messages.len();
                let start = a % (len + 1);
                let end = start + b % (len - start + 1);
                c.messages = c.messages[start..end].to_vec();
            }
            let len = c.messages.len();
            let mut reordered = false;
            if let Some((a, b)) = swap.filter(|_| len >= 2) {
                let (a, b) = (a % len, b % len);
                c.messages.swap(a, b);
                reordered = a != b;
            }
            let mut ok = true;
            if let Some((e, content)) = edit.as_ref().filter(|_| len > 0) {
                c.messages[e % len].content = content.clone();
                ok &= valid(content);
            }
            if let Some(content) = push {
                c.push_message(NewMessage::new(Role::Assistant, content.clone()));
                ok &= valid(content);
            }
            if let Some(metadata) = metadata {
                c.metadata = metadata.clone();
                ok &= valid_metadata(metadata);
            }
            let result = conversations.update(&c);
            if !ok {
                refused(result)?;
                return Ok(None);
            }
            if reordered && model.conversations[i].has_other_branches() {
                match &result {
                    Err(Error::InvalidInput { field, .. }) if field == "messages" => {}
                    other => {
                        return Err(TestCaseError::fail(format!(
                            "reordering a branched conversation: expected InvalidInput on \
                             messages, got {other:?}"
                        )));
                    }
                }
                return Ok(None);
            }
            let written = result.map_err(fail)?;
            let list: Vec<MMessage> = c.messages.iter().map(fresh).collect();
            let model_c = &mut model.conversations[i];
            model_c.metadata = c.metadata.clone();
            let dropped = model_c.rewrite(&list);
            model.ghosts.extend(dropped);
            check_written(&written, &model.conversations[i])?;
            Ok(Some(Effect::write(id)))
        }
        Op::DeleteConversation { conversation } => {
            let Some(i) = pick(*conversation, model.conversations.len()) else {
                return Ok(None);
            };
            let c = model.conversations.remove(i);
            prop_assert!(conversations.delete(c.id).map_err(fail)?);
            prop_assert!(!conversations.delete(c.id).map_err(fail)?);
            model.ghosts.extend(c.messages.iter().map(|m| m.id));
            Ok(None)
        }
        Op::CreateFile { filename } => {
            let result = store.files().create(NewFile {
                filename: filename.clone(),
                content_type: "text/plain".into(),
                size: 1,
                ..Default::default()
            });
            if filename.is_empty() {
                refused(result)?;
            } else {
                let f = result.map_err(fail)?;
                model.files.push((f.id, filename.clone()));
            }
            Ok(None)
        }
        Op::DeleteFile { file } => {
            let Some(i) = pick(*file, model.files.len()) else {
                return Ok(None);
            };
            let (id, _) = model.files.remove(i);
            prop_assert!(store.files().delete(id).map_err(fail)?);
            Ok(None)
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
            Ok(None)
        }
        Op::RefusedInTransaction {
            conversation,
            message,
            content,
        } => {
            let (Some(i), Some((taken, Some(_)))) = (
                pick(*conversation, model.conversations.len()),
                target(model, message),
            ) else {
                return Ok(None);
            };
            let c = model.conversations[i].id;
            let mut duplicate = NewMessage::new(Role::User, "duplicate");
            duplicate.id = Some(taken);
            let result: Result<(), Error> = store.transaction(|tx| {
                let refused = tx.conversations().append_messages(
                    c,
                    vec![NewMessage::new(Role::User, content.clone()), duplicate],
                );
                assert!(
                    matches!(
                        refused,
                        Err(Error::Conflict { .. } | Error::InvalidInput { .. })
                    ),
                    "{refused:?}"
                );
                Ok(())
            });
            result.map_err(fail)?;
            Ok(None)
        }
        _ => crate::tree::step(store, model, op),
    }
}

/// Checks what `update` returned: the current branch the model expects.
fn check_written(written: &Conversation, c: &MConversation) -> Result<(), TestCaseError> {
    let got: Vec<MMessage> = written.messages.iter().map(MMessage::of).collect();
    let want: Vec<MMessage> = c.path().into_iter().cloned().collect();
    prop_assert_eq!(got, want, "update returns the branch as stored");
    prop_assert_eq!(&written.title, &c.title);
    Ok(())
}
