//! What the API does with a backend's record operations, written once for
//! every backend: appends, single-message writes, branches, archive and
//! reads that take more than one statement.
//!
//! The tree is kept in two columns of each message: `parent_id`, and
//! `on_path`, set on the messages of the current branch. A child is always
//! positioned after its parent, so the current branch in position order runs
//! from its first message to the current leaf, which is the last of them.

use time::OffsetDateTime;

use super::{Archive, Branches, Fields, Node, PositionRange, Session, TimeKey, Touch};
use crate::error::{Entity, Error, Result};
use crate::limits::MAX_CONTENT_BYTES;
use crate::model::{
    Archived, Conversation, ConversationEdit, ConversationId, ConversationOrder,
    ConversationSummary, ConversationTree, Message, MessageEdit, MessageId,
};

/// The API's operations over any [`Session`].
pub(crate) trait Chat: Session {
    /// Appends `messages` as a chain below the current leaf (the last becomes
    /// the current leaf), setting their parents. With `bump`, moves
    /// `updated_at` forward; without, leaves it (imports keep the stored
    /// value). [`Error::NotFound`] when the conversation is not there.
    fn append_chain(
        &self,
        conversation: ConversationId,
        messages: &mut [Message],
        bump: Option<OffsetDateTime>,
    ) -> Result<()> {
        let added = i64::try_from(messages.len()).unwrap_or(i64::MAX);
        self.touch(conversation, Touch::write(bump, added))?;
        if let [message] = messages {
            message.parent_id = self.append_message(conversation, message)?;
            return Ok(());
        }
        self.insert_chain(conversation, messages)
    }

    /// The node of message `id`, or [`Error::NotFound`].
    fn existing(&self, id: MessageId) -> Result<Node> {
        self.node(id)?
            .ok_or_else(|| Error::not_found(Entity::Message, id))
    }

    /// A page of the current branch, or `None` when the conversation does
    /// not exist. Messages imply their conversation: only an empty page asks.
    fn branch_page(
        &self,
        conversation: ConversationId,
        range: PositionRange,
    ) -> Result<Option<Vec<(i64, Message)>>> {
        let page = self.message_page(conversation, Branches::Current, range)?;
        if page.is_empty() && !self.conversation_exists(conversation)? {
            return Ok(None);
        }
        Ok(Some(
            page.into_iter().map(|s| (s.position, s.message)).collect(),
        ))
    }

    /// Touches the conversation of message `id` (locking it before the
    /// message is written), or says why not: [`Error::Stale`] when a version
    /// was expected and the message is there, else [`Error::NotFound`].
    fn touch_of(&self, id: MessageId, touch: Touch) -> Result<ConversationId> {
        if let Some(conversation) = self.touch_conversation_of(id, touch)? {
            return Ok(conversation);
        }
        Err(match (touch.expected, self.node(id)?) {
            (Some(_), Some(node)) => Error::stale(Entity::Conversation, node.conversation_id),
            _ => Error::not_found(Entity::Message, id),
        })
    }

    /// `edit_message` of the API: the conversation (version checked when
    /// the edit names one), then the row, in the caller's transaction.
    fn edit_one(&self, id: MessageId, edit: &MessageEdit, now: OffsetDateTime) -> Result<Message> {
        let touch = Touch {
            expected: edit.if_version,
            ..Touch::write(Some(now), 0)
        };
        self.touch_of(id, touch)?;
        self.edit_message(id, edit)?
            .ok_or_else(|| Error::not_found(Entity::Message, id))
    }

    /// `append_to_message` of the API.
    fn grow_one(&self, id: MessageId, delta: &str, now: OffsetDateTime) -> Result<Message> {
        let touch = Touch::write(Some(now), 0);
        if let Some(message) = self.grow_message(id, touch, delta)? {
            return Ok(message);
        }
        // Not there (or deleted between two statements: PostgreSQL reads
        // each statement's own snapshot), or too long.
        self.existing(id)?;
        Err(Error::invalid(
            "delta",
            format!("would make the content longer than {MAX_CONTENT_BYTES} bytes"),
        ))
    }

    /// `delete_message` of the API: the message goes, its children move up
    /// to its parent. [`Error::NotFound`] when it is not there.
    fn delete_one(&self, id: MessageId, now: OffsetDateTime) -> Result<()> {
        let conversation = self.touch_of(id, Touch::write(Some(now), -1))?;
        let node = self.existing(id)?;
        self.reparent(conversation, id, node.parent_id)?;
        self.delete_message(id)
    }

    /// `delete_branch` of the API: the message and everything below it;
    /// how many messages went. [`Error::NotFound`] when it is not there.
    fn delete_branch_one(&self, id: MessageId, now: OffsetDateTime) -> Result<u64> {
        let conversation = self.touch_of(id, Touch::write(Some(now), 0))?;
        let doomed = self.subtree(id)?;
        for message in &doomed {
            self.delete_message(message.id)?;
        }
        let removed = i64::try_from(doomed.len()).unwrap_or(i64::MAX);
        self.adjust_count(conversation, -removed)?;
        Ok(doomed.len() as u64)
    }

    /// Makes `leaf` the current leaf (`None`: the current branch empty).
    fn select_leaf(&self, conversation: ConversationId, leaf: Option<MessageId>) -> Result<()> {
        let Some(leaf) = leaf else {
            return self.set_path(conversation, None, &[]);
        };
        let up = self.path_to(leaf)?;
        let fork = up.last().filter(|n| n.on_path).map(|n| n.position);
        let mark: Vec<MessageId> = up.iter().filter(|n| !n.on_path).map(|n| n.id).collect();
        self.set_path(conversation, fork, &mark)
    }

    /// `branch_from` of the API: `message` becomes a new child of `parent`
    /// (`None`: a new first message) and the current leaf.
    fn branch_one(
        &self,
        conversation: ConversationId,
        parent: Option<MessageId>,
        message: &mut Message,
        now: OffsetDateTime,
    ) -> Result<()> {
        self.touch(conversation, Touch::write(Some(now), 1))?;
        if let Some(parent) = parent {
            let node = self.existing(parent)?;
            if node.conversation_id != conversation {
                return Err(Error::invalid(
                    "parent_id",
                    format!(
                        "message {parent} is in conversation {}, not {conversation}",
                        node.conversation_id
                    ),
                ));
            }
        }
        self.select_leaf(conversation, parent)?;
        message.parent_id = self.append_message(conversation, message)?;
        Ok(())
    }

    /// `switch_branch` of the API: the current leaf becomes the newest
    /// message at or below `id`; the conversation as it is then.
    fn switch_one(&self, id: MessageId) -> Result<Conversation> {
        let conversation = self.touch_of(id, Touch::write(None, 0))?;
        let newest = self
            .subtree(id)?
            .into_iter()
            .max_by_key(|n| n.position)
            .ok_or_else(|| Error::not_found(Entity::Message, id))?;
        self.select_leaf(conversation, Some(newest.id))?;
        self.conversation(conversation)?
            .ok_or_else(|| Error::not_found(Entity::Conversation, conversation))
    }

    /// `alternatives` of the API: message `id` and its siblings, oldest first.
    fn alternatives_of(&self, id: MessageId) -> Result<Vec<Message>> {
        let mut out = Vec::new();
        self.in_snapshot(&mut || {
            let node = self.existing(id)?;
            out = self.children(node.conversation_id, node.parent_id)?;
            Ok(())
        })?;
        Ok(out)
    }

    /// `tree` of the API.
    fn tree_of(&self, id: ConversationId) -> Result<Option<ConversationTree>> {
        let mut out = None;
        self.in_snapshot(&mut || {
            let Some(conversation) = self.conversation(id)? else {
                return Ok(());
            };
            let messages = self.message_page(id, Branches::All, PositionRange::ALL)?;
            let current_leaf = conversation.messages.last().map(|m| m.id);
            let count = messages.len() as u64;
            out = Some(ConversationTree {
                conversation: conversation.summary_counting(count),
                current_leaf,
                messages: messages.into_iter().map(|s| s.message).collect(),
            });
            Ok(())
        })?;
        Ok(out)
    }

    /// `edit`, `archive` and `unarchive` of the API: `fields` written, the
    /// version moved forward (and `updated_at` with `bump`).
    fn set_fields_one(
        &self,
        id: ConversationId,
        fields: Fields<'_>,
        expected: Option<u64>,
        bump: Option<OffsetDateTime>,
    ) -> Result<ConversationSummary> {
        self.touch(
            id,
            Touch {
                expected,
                ..Touch::write(bump, 0)
            },
        )?;
        self.set_fields(id, fields)?
            .ok_or_else(|| Error::not_found(Entity::Conversation, id))
    }

    /// `edit` of the API.
    fn edit_conversation(
        &self,
        id: ConversationId,
        edit: &ConversationEdit,
        now: OffsetDateTime,
    ) -> Result<ConversationSummary> {
        let fields = Fields {
            title: edit.title.as_deref(),
            metadata: edit.metadata.as_ref(),
            archive: None,
        };
        self.set_fields_one(id, fields, edit.if_version, Some(now))
    }

    /// `archive` (`Some(now)`) and `unarchive` (`None`) of the API.
    fn archive_one(
        &self,
        id: ConversationId,
        at: Option<OffsetDateTime>,
    ) -> Result<ConversationSummary> {
        let archive = Some(at.map_or(Archive::Clear, Archive::At));
        let fields = Fields {
            archive,
            ..Fields::default()
        };
        self.set_fields_one(id, fields, None, None)
    }

    /// Summaries by `order` after `after`, as `archived` filters them:
    /// one index scan each for archived or not, merged for both.
    fn list_summaries(
        &self,
        order: ConversationOrder,
        archived: Archived,
        after: Option<TimeKey>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>> {
        match archived {
            Archived::Hide => self.conversations(order, false, after, limit),
            Archived::Only => self.conversations(order, true, after, limit),
            Archived::Include => {
                let mut both = Vec::new();
                self.in_snapshot(&mut || {
                    both = self.conversations(order, false, after, limit)?;
                    both.extend(self.conversations(order, true, after, limit)?);
                    Ok(())
                })?;
                let key = |s: &ConversationSummary| match order {
                    ConversationOrder::UpdatedAt => (s.updated_at, s.id),
                    ConversationOrder::CreatedAt => (s.created_at, s.id),
                };
                both.sort_by_key(|s| std::cmp::Reverse(key(s)));
                both.truncate(limit);
                Ok(both)
            }
        }
    }
}

impl<S: Session + ?Sized> Chat for S {}
