//! How `update` turns a stored message list into the caller's list: one plan,
//! computed the same way for every backend so positions agree everywhere.

use std::collections::{HashMap, HashSet};

use crate::model::{Conversation, ConversationId, ConversationSummary, Message, MessageId};

/// Every conversation's summary, archived or not, most recently updated
/// first: two index scans, merged.
#[allow(dead_code)] // unused in a memory-only build
pub(crate) fn every_summary(
    session: &(impl super::Session + ?Sized),
) -> crate::error::Result<Vec<ConversationSummary>> {
    use crate::model::ConversationOrder::UpdatedAt;
    let mut all = session.conversations(UpdatedAt, false, None, usize::MAX)?;
    all.extend(session.conversations(UpdatedAt, true, None, usize::MAX)?);
    all.sort_by_key(|s| std::cmp::Reverse((s.updated_at, s.id)));
    Ok(all)
}

/// Makes `messages` one branch below `parent`: each message's parent is the
/// one before it, the first's is `parent`. (A current branch read without
/// its parents gets them back this way, from `None`.)
pub(crate) fn link_branch(messages: &mut [Message], mut parent: Option<MessageId>) {
    for message in messages {
        message.parent_id = parent;
        parent = Some(message.id);
    }
}

/// Whole conversations from their summaries (in list order) and all
/// messages (grouped by conversation, each group in append order).
#[allow(dead_code)] // unused in a memory-only build
pub(crate) fn assemble(
    summaries: Vec<ConversationSummary>,
    messages: impl IntoIterator<Item = Message>,
) -> Vec<Conversation> {
    let mut by_conversation: HashMap<ConversationId, Vec<Message>> = HashMap::new();
    for m in messages {
        by_conversation
            .entry(m.conversation_id)
            .or_default()
            .push(m);
    }
    summaries
        .into_iter()
        .map(|s| {
            let messages = by_conversation.remove(&s.id).unwrap_or_default();
            s.into_conversation(messages)
        })
        .collect()
}

/// The writes that make the stored list equal the desired one.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SyncPlan<'a> {
    /// Stored messages absent from the desired list.
    pub delete: Vec<MessageId>,
    /// Desired messages not stored yet, with their positions.
    pub insert: Vec<(i64, &'a Message)>,
    /// Stored messages whose position or fields change.
    pub update: Vec<(i64, &'a Message)>,
    /// Whether kept messages move (the list was reordered, or a message was
    /// put between two stored ones): the list is renumbered from 1.
    pub renumbered: bool,
}

/// Plans the writes from `stored` (with positions, in order) to `desired`.
///
/// Kept messages keep their positions and new ones go after `last` (the
/// highest position in the conversation) when that preserves the desired
/// order (the usual edit: change some, delete some, add at the end). Any
/// other reordering renumbers the list from 1.
pub(crate) fn plan<'a>(
    stored: &[(i64, Message)],
    desired: &'a [Message],
    last: i64,
) -> SyncPlan<'a> {
    let by_id: HashMap<MessageId, (i64, &Message)> =
        stored.iter().map(|(p, m)| (m.id, (*p, m))).collect();
    let wanted: HashSet<MessageId> = desired.iter().map(|m| m.id).collect();
    let delete = stored
        .iter()
        .filter(|(_, m)| !wanted.contains(&m.id))
        .map(|(_, m)| m.id)
        .collect();

    let mut previous = i64::MIN;
    let mut seen_new = false;
    let keeps_positions = desired.iter().all(|m| match by_id.get(&m.id) {
        Some(&(position, _)) => {
            let in_order = !seen_new && position > previous;
            previous = position;
            in_order
        }
        None => {
            seen_new = true;
            true
        }
    });

    let mut next_new = stored.iter().map(|(p, _)| *p).fold(last, i64::max);
    let mut plan = SyncPlan {
        delete,
        renumbered: !keeps_positions,
        ..SyncPlan::default()
    };
    for (index, message) in desired.iter().enumerate() {
        let position = if keeps_positions {
            match by_id.get(&message.id) {
                Some(&(position, _)) => position,
                None => {
                    next_new += 1;
                    next_new
                }
            }
        } else {
            index as i64 + 1
        };
        match by_id.get(&message.id) {
            None => plan.insert.push((position, message)),
            Some(&(old_position, old)) if old_position != position || old != message => {
                plan.update.push((position, message))
            }
            Some(_) => {}
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConversationId, NewMessage, Role};

    fn messages(n: usize) -> Vec<Message> {
        let c = ConversationId::new();
        (0..n)
            .map(|i| Message::new(c, NewMessage::new(Role::User, format!("m{i}"))))
            .collect()
    }

    fn stored(list: &[Message]) -> Vec<(i64, Message)> {
        list.iter()
            .enumerate()
            .map(|(i, m)| (i as i64 + 1, m.clone()))
            .collect()
    }

    #[test]
    fn unchanged_list_writes_nothing() {
        let list = messages(3);
        assert_eq!(plan(&stored(&list), &list, 0), SyncPlan::default());
    }

    #[test]
    fn edit_delete_and_append_keep_positions() {
        let list = messages(4);
        let mut desired = vec![list[0].clone(), list[2].clone(), list[3].clone()];
        desired[1].content = "edited".into();
        desired.push(messages(1).remove(0));
        let p = plan(&stored(&list), &desired, 0);
        assert_eq!(p.delete, vec![list[1].id]);
        assert_eq!(p.update, vec![(3, &desired[1])]);
        assert_eq!(p.insert, vec![(5, &desired[3])]);
        assert!(!p.renumbered);
    }

    #[test]
    fn new_messages_go_after_the_last_position_of_any_branch() {
        let list = messages(2);
        let mut desired = list.clone();
        desired.push(messages(1).remove(0));
        let p = plan(&stored(&list), &desired, 9);
        assert_eq!(p.insert, vec![(10, &desired[2])]);
    }

    #[test]
    fn reordering_renumbers() {
        let list = messages(3);
        let desired = vec![list[2].clone(), list[0].clone(), list[1].clone()];
        let p = plan(&stored(&list), &desired, 0);
        assert!(p.delete.is_empty() && p.insert.is_empty() && p.renumbered);
        assert_eq!(
            p.update,
            vec![(1, &desired[0]), (2, &desired[1]), (3, &desired[2])]
        );
    }

    #[test]
    fn insert_in_the_middle_renumbers() {
        let list = messages(2);
        let new = messages(1).remove(0);
        let desired = vec![list[0].clone(), new, list[1].clone()];
        let p = plan(&stored(&list), &desired, 0);
        assert_eq!(p.insert, vec![(2, &desired[1])]);
        assert_eq!(p.update, vec![(3, &desired[2])]);
    }
}
