//! The tree operations of a sequence (branches, single-message writes,
//! archive, reads, transactions), applied to the store and to the model.

use proptest::prelude::*;
use silmari_store::prelude::*;

use crate::observe::{Change, Effect};
use crate::ops::{Op, Parent, Version, valid, valid_metadata};
use crate::reference::{MMessage, Model};
use crate::step::{
    expected_version, fail, fresh, not_found, pick, refused, stale, target, version_of,
};

/// Applies tree operation `op` to the store and the model, as
/// [`step`](crate::step::step) does.
pub fn step(store: &Store, model: &mut Model, op: &Op) -> Result<Option<Effect>, TestCaseError> {
    let conversations = store.conversations();
    match op {
        Op::BranchFrom {
            conversation,
            parent,
            content,
            metadata,
        } => {
            let Some(i) = pick(*conversation, model.conversations.len()) else {
                return Ok(None);
            };
            let c = &model.conversations[i];
            // The parent, and whether the store must refuse it.
            enum Expect {
                Ok,
                Foreign,
                Missing,
            }
            let (parent, expect) = match parent {
                Parent::Same(n) => match pick(*n, c.messages.len()) {
                    Some(j) => (Some(c.messages[j].id), Expect::Ok),
                    None => (None, Expect::Ok),
                },
                Parent::Foreign(n) => {
                    let others: Vec<MessageId> = model
                        .all_messages()
                        .into_iter()
                        .filter(|(holder, _)| *holder != i)
                        .map(|(_, id)| id)
                        .collect();
                    match pick(*n, others.len()) {
                        Some(j) => (Some(others[j]), Expect::Foreign),
                        None => (None, Expect::Ok),
                    }
                }
                Parent::Ghost(n) => match pick(*n, model.ghosts.len()) {
                    Some(j) => (Some(model.ghosts[j]), Expect::Missing),
                    None => (None, Expect::Ok),
                },
                Parent::Root => (None, Expect::Ok),
            };
            let input =
                NewMessage::new(Role::Assistant, content.clone()).with_metadata(metadata.clone());
            let result = conversations.branch_from(c.id, parent, input);
            if !valid(content) || !valid_metadata(metadata) {
                refused(result)?;
                return Ok(None);
            }
            match expect {
                Expect::Foreign => {
                    match &result {
                        Err(Error::InvalidInput { field, .. }) if field == "parent_id" => {}
                        other => {
                            return Err(TestCaseError::fail(format!(
                                "a parent of another conversation: expected InvalidInput on \
                                 parent_id, got {other:?}"
                            )));
                        }
                    }
                    Ok(None)
                }
                Expect::Missing => {
                    not_found(result)?;
                    Ok(None)
                }
                Expect::Ok => {
                    let m = result.map_err(fail)?;
                    prop_assert_eq!(m.parent_id, parent);
                    prop_assert_eq!(&m.metadata, metadata);
                    let c = &mut model.conversations[i];
                    c.branch(parent, fresh(&m));
                    Ok(Some(Effect::write(c.id)))
                }
            }
        }
        Op::SwitchBranch { message } => {
            let Some((id, holder)) = target(model, message) else {
                return Ok(None);
            };
            let result = conversations.switch_branch(id);
            let Some(i) = holder else {
                not_found(result)?;
                return Ok(None);
            };
            let switched = result.map_err(fail)?;
            let c = &mut model.conversations[i];
            c.switch(id);
            let got: Vec<MMessage> = switched.messages.iter().map(MMessage::of).collect();
            let want: Vec<MMessage> = c.path().into_iter().cloned().collect();
            prop_assert_eq!(got, want, "switch_branch returns the new current branch");
            Ok(Some(Effect::version_only(c.id, Change::Up)))
        }
        Op::DeleteMessage { message } => {
            let Some((id, holder)) = target(model, message) else {
                return Ok(None);
            };
            let deleted = conversations.delete_message(id).map_err(fail)?;
            prop_assert_eq!(deleted, holder.is_some());
            let Some(i) = holder else {
                return Ok(None);
            };
            let c = &mut model.conversations[i];
            c.splice(id);
            let effect = Effect::write(c.id);
            model.ghosts.push(id);
            Ok(Some(effect))
        }
        Op::DeleteBranch { message } => {
            let Some((id, holder)) = target(model, message) else {
                return Ok(None);
            };
            let count = conversations.delete_branch(id).map_err(fail)?;
            let Some(i) = holder else {
                prop_assert_eq!(count, 0);
                return Ok(None);
            };
            let c = &mut model.conversations[i];
            let doomed = c.delete_branch(id);
            prop_assert_eq!(count, doomed.len() as u64);
            let effect = Effect::write(c.id);
            model.ghosts.extend(doomed);
            Ok(Some(effect))
        }
        Op::EditMessage {
            message,
            content,
            metadata,
            if_version,
        } => {
            let Some((id, holder)) = target(model, message) else {
                return Ok(None);
            };
            let mut edit = MessageEdit::new();
            if let Some(content) = content {
                edit = edit.content(content.clone());
            }
            if let Some(metadata) = metadata {
                edit = edit.metadata(metadata.clone());
            }
            let mut expected = None;
            if let Some(version) = if_version {
                let current = match holder {
                    Some(i) => version_of(store, model.conversations[i].id)?,
                    None => 5,
                };
                expected = Some(expected_version(*version, current));
                edit = edit.if_version(expected_version(*version, current));
            }
            let result = conversations.edit_message(id, edit);
            if !content.as_deref().is_none_or(valid)
                || !metadata.as_ref().is_none_or(valid_metadata)
                || expected == Some(0)
            {
                refused(result)?;
                return Ok(None);
            }
            let Some(i) = holder else {
                not_found(result)?;
                return Ok(None);
            };
            if matches!(if_version, Some(Version::Previous)) {
                stale(result)?;
                return Ok(None);
            }
            let edited = result.map_err(fail)?;
            let c = &mut model.conversations[i];
            let m = c.get_mut(id).expect("in the model");
            if let Some(content) = content {
                m.content.clone_from(content);
            }
            if let Some(metadata) = metadata {
                m.metadata.clone_from(metadata);
            }
            prop_assert_eq!(
                &MMessage::of(&edited),
                &*m,
                "edit_message returns it as stored"
            );
            Ok(Some(Effect::write(c.id)))
        }
        Op::AppendToMessage { message, delta } => {
            let Some((id, holder)) = target(model, message) else {
                return Ok(None);
            };
            let result = conversations.append_to_message(id, delta);
            if !valid(delta) {
                refused(result)?;
                return Ok(None);
            }
            let Some(i) = holder else {
                not_found(result)?;
                return Ok(None);
            };
            let grown = result.map_err(fail)?;
            let c = &mut model.conversations[i];
            let m = c.get_mut(id).expect("in the model");
            m.content.push_str(delta);
            prop_assert_eq!(&MMessage::of(&grown), &*m);
            Ok(Some(Effect::write(c.id)))
        }
        Op::Archive { conversation } | Op::Unarchive { conversation } => {
            let archive = matches!(op, Op::Archive { .. });
            let Some(i) = pick(*conversation, model.conversations.len()) else {
                let unknown = ConversationId::new();
                if archive {
                    not_found(conversations.archive(unknown))?;
                } else {
                    not_found(conversations.unarchive(unknown))?;
                }
                return Ok(None);
            };
            let c = &mut model.conversations[i];
            if archive {
                let summary = conversations.archive(c.id).map_err(fail)?;
                prop_assert!(summary.archived_at.is_some());
                if c.archived_at.is_some() {
                    prop_assert_eq!(summary.archived_at, c.archived_at, "the first time is kept");
                }
                c.archived_at = summary.archived_at;
                Ok(Some(Effect::version_only(c.id, Change::Up)))
            } else {
                let summary = conversations.unarchive(c.id).map_err(fail)?;
                prop_assert_eq!(summary.archived_at, None);
                c.archived_at = None;
                Ok(Some(Effect::version_only(c.id, Change::NotDown)))
            }
        }
        Op::EditConversation {
            conversation,
            title,
            metadata,
            if_version,
        } => {
            let Some(i) = pick(*conversation, model.conversations.len()) else {
                return Ok(None);
            };
            let c = &mut model.conversations[i];
            let mut edit = ConversationEdit::new();
            if let Some(title) = title {
                edit = edit.title(title.clone());
            }
            if let Some(metadata) = metadata {
                edit = edit.metadata(metadata.clone());
            }
            let mut expected = None;
            if let Some(version) = if_version {
                let current = version_of(store, c.id)?;
                expected = Some(expected_version(*version, current));
                edit = edit.if_version(expected_version(*version, current));
            }
            let result = conversations.edit(c.id, edit);
            if !title.as_deref().is_none_or(valid)
                || !metadata.as_ref().is_none_or(valid_metadata)
                || expected == Some(0)
            {
                refused(result)?;
                return Ok(None);
            }
            if matches!(if_version, Some(Version::Previous)) {
                stale(result)?;
                return Ok(None);
            }
            let summary = result.map_err(fail)?;
            if let Some(title) = title {
                c.title.clone_from(title);
            }
            if let Some(metadata) = metadata {
                c.metadata.clone_from(metadata);
            }
            prop_assert_eq!(&summary.title, &c.title);
            prop_assert_eq!(&summary.metadata, &c.metadata);
            prop_assert_eq!(summary.message_count, c.messages.len() as u64);
            Ok(Some(Effect::write(c.id)))
        }
        Op::Alternatives { message } => {
            let Some((id, holder)) = target(model, message) else {
                return Ok(None);
            };
            let result = conversations.alternatives(id);
            let Some(i) = holder else {
                not_found(result)?;
                return Ok(None);
            };
            let c = &model.conversations[i];
            let parent = c.get(id).expect("in the model").parent;
            let got: Vec<MMessage> = result.map_err(fail)?.iter().map(MMessage::of).collect();
            let want: Vec<MMessage> = c.children(parent).into_iter().cloned().collect();
            prop_assert_eq!(got, want, "the siblings, oldest first");
            Ok(None)
        }
        Op::ReadPages { conversation, size } => {
            let Some(i) = pick(*conversation, model.conversations.len()) else {
                not_found(
                    conversations.messages(ConversationId::new(), PageRequest::first(*size)),
                )?;
                return Ok(None);
            };
            let c = &model.conversations[i];
            let mut request = PageRequest::first(*size);
            let mut got = Vec::new();
            loop {
                let page = conversations
                    .messages(c.id, request.clone())
                    .map_err(fail)?;
                prop_assert!(page.items.len() <= *size as usize);
                got.extend(page.items.iter().map(MMessage::of));
                match page.next {
                    Some(cursor) => request = request.after(cursor),
                    None => break,
                }
                prop_assert!(got.len() <= c.messages.len(), "the pages never end");
            }
            let want: Vec<MMessage> = c.path().into_iter().cloned().collect();
            prop_assert_eq!(got, want, "messages() pages through the current branch");
            Ok(None)
        }
        Op::Transaction {
            conversation,
            parent,
            content,
            archive,
        } => {
            let Some(i) = pick(*conversation, model.conversations.len()) else {
                return Ok(None);
            };
            let c = &model.conversations[i];
            let parent = c
                .messages
                .get(parent % (c.messages.len() + 1))
                .map(|m| m.id);
            let (first, second, summary, switched, tree) = store
                .transaction(|tx| -> Result<_, Error> {
                    let chats = tx.conversations();
                    let input = NewMessage::new(Role::User, content.clone());
                    let first = chats.branch_from(c.id, parent, input)?;
                    let reply = NewMessage::new(Role::Assistant, "reply");
                    let second = chats.append_message(c.id, reply)?;
                    let summary = if *archive {
                        Some(chats.archive(c.id)?)
                    } else {
                        None
                    };
                    let oldest = chats.alternatives(first.id)?[0].id;
                    let switched = chats.switch_branch(oldest)?;
                    let tree = chats.tree(c.id)?.expect("it exists");
                    Ok((first, second, summary, switched, tree))
                })
                .map_err(fail)?;
            prop_assert_eq!(first.parent_id, parent);
            prop_assert_eq!(second.parent_id, Some(first.id));
            let c = &mut model.conversations[i];
            c.branch(parent, fresh(&first));
            c.append(fresh(&second));
            if let Some(summary) = summary {
                prop_assert!(summary.archived_at.is_some());
                if c.archived_at.is_some() {
                    prop_assert_eq!(summary.archived_at, c.archived_at, "the first time is kept");
                }
                c.archived_at = summary.archived_at;
            }
            let oldest = c.children(parent)[0].id;
            c.switch(oldest);
            let want: Vec<MMessage> = c.path().into_iter().cloned().collect();
            let got: Vec<MMessage> = switched.messages.iter().map(MMessage::of).collect();
            prop_assert_eq!(got, want, "the transaction reads its own switch");
            let got: Vec<MMessage> = tree.messages.iter().map(MMessage::of).collect();
            prop_assert_eq!(&got, &c.messages, "the transaction reads its own tree");
            prop_assert_eq!(tree.current_leaf, c.leaf);
            Ok(Some(Effect::write(c.id)))
        }
        Op::FailingTreeTransaction {
            conversation,
            message,
            content,
        } => {
            let Some(i) = pick(*conversation, model.conversations.len()) else {
                return Ok(None);
            };
            let c = &model.conversations[i];
            let target = pick(*message, c.messages.len()).map(|j| c.messages[j].id);
            let result: Result<(), Error> = store.transaction(|tx| {
                let chats = tx.conversations();
                chats.branch_from(c.id, target, NewMessage::new(Role::User, content.clone()))?;
                chats.archive(c.id)?;
                chats.edit(c.id, ConversationEdit::new().title("gone"))?;
                if let Some(target) = target {
                    chats.delete_branch(target)?;
                }
                Err(Error::InTransaction) // fails midway, after writing
            });
            prop_assert!(result.is_err());
            Ok(None)
        }
        _ => unreachable!("a conversation or file operation: {op:?}"),
    }
}
