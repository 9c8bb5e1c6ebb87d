//! `update` on every backend: the caller's list becomes the current branch.
//!
//! The header is written first, conditional on the caller's version (which
//! also takes the conversation's row), then the plan from the stored branch
//! to the caller's list is written row by row. Other branches are left as
//! they are, except that a branch hanging from a message the list drops
//! moves up to the nearest message kept above it.

use time::OffsetDateTime;

use super::message_list::{link_branch, plan};
use super::{Branches, HeaderWrite, PositionRange, Session, Stored};
use crate::error::{Entity, Error, Result};
use crate::model::{Conversation, Message, MessageId};

/// Writes `conversation` (validated) as `update` does; the stored conversation.
pub(crate) fn update_conversation<S: Session + ?Sized>(
    session: &S,
    conversation: &Conversation,
    now: OffsetDateTime,
) -> Result<Conversation> {
    let id = conversation.id;
    let written = session.write_header(HeaderWrite {
        id,
        expected: conversation.version,
        title: &conversation.title,
        metadata: &conversation.metadata,
        now,
    })?;
    let Some(header) = written else {
        return Err(if session.conversation_exists(id)? {
            Error::stale(Entity::Conversation, id)
        } else {
            Error::not_found(Entity::Conversation, id)
        });
    };
    let tree = session.message_page(id, Branches::All, PositionRange::ALL)?;
    let path: Vec<(i64, Message)> = tree
        .iter()
        .filter(|s| s.on_path)
        .map(|s| (s.position, s.message.clone()))
        .collect();
    let branched = path.len() < tree.len();
    let last = tree.iter().map(|s| s.position).max().unwrap_or(0);

    // The list is one branch: each message follows the one before it.
    let mut desired = conversation.messages.clone();
    link_branch(&mut desired, None);
    let plan = plan(&path, &desired, last);
    if plan.renumbered && branched {
        return Err(Error::invalid(
            "messages",
            "reorders the current branch of a conversation that has other branches; \
             only changing, removing and adding at the end are possible there",
        ));
    }
    // Branches hanging from a dropped message move up to the nearest kept one.
    let dropped: std::collections::HashSet<MessageId> = plan.delete.iter().copied().collect();
    let mut kept_above = None;
    for (_, message) in &path {
        if dropped.contains(&message.id) {
            session.reparent(id, message.id, kept_above)?;
        } else {
            kept_above = Some(message.id);
        }
    }
    for message in &plan.delete {
        session.delete_message(*message)?;
    }
    let on_path = |(position, m): &(i64, &Message)| Stored {
        position: *position,
        on_path: true,
        message: (*m).clone(),
    };
    let stored_text: std::collections::HashMap<MessageId, &str> = path
        .iter()
        .map(|(_, m)| (m.id, m.content.as_str()))
        .collect();
    for change in &plan.update {
        let text_changed = stored_text.get(&change.1.id) != Some(&change.1.content.as_str());
        session.update_message(&on_path(change), text_changed)?;
    }
    for new in &plan.insert {
        session.insert_message(&on_path(new))?;
    }
    let delta = plan.insert.len() as i64 - plan.delete.len() as i64;
    if delta != 0 {
        session.adjust_count(id, delta)?;
    }
    Ok(header.into_conversation(desired))
}
