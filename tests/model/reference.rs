//! The reference model: each conversation a tree of messages (kept in the
//! order they were written, which is the order `tree()` returns them in)
//! with a current leaf, an archive time and metadata, written from the API
//! documentation of `src/repo.rs` alone.

use silmari_store::prelude::*;
use time::OffsetDateTime;

/// A message in the model.
#[derive(Debug, Clone, PartialEq)]
pub struct MMessage {
    pub id: MessageId,
    pub parent: Option<MessageId>,
    pub role: Role,
    pub content: String,
    pub metadata: Metadata,
}

impl MMessage {
    pub fn of(m: &Message) -> Self {
        MMessage {
            id: m.id,
            parent: m.parent_id,
            role: m.role,
            content: m.content.clone(),
            metadata: m.metadata.clone(),
        }
    }
}

/// A conversation in the model.
#[derive(Debug, Clone, PartialEq)]
pub struct MConversation {
    pub id: ConversationId,
    pub title: String,
    pub metadata: Metadata,
    /// The time the store gave when it was first archived (the model
    /// cannot know the clock; it keeps what the first `archive` returned).
    pub archived_at: Option<OffsetDateTime>,
    /// Every message of every branch, oldest first.
    pub messages: Vec<MMessage>,
    /// The last message of the current branch.
    pub leaf: Option<MessageId>,
}

impl MConversation {
    pub fn new(id: ConversationId, title: String) -> Self {
        MConversation {
            id,
            title,
            metadata: Metadata::new(),
            archived_at: None,
            messages: Vec::new(),
            leaf: None,
        }
    }

    pub fn get(&self, id: MessageId) -> Option<&MMessage> {
        self.messages.iter().find(|m| m.id == id)
    }

    pub fn get_mut(&mut self, id: MessageId) -> Option<&mut MMessage> {
        self.messages.iter_mut().find(|m| m.id == id)
    }

    /// The current branch, first message to leaf.
    pub fn path(&self) -> Vec<&MMessage> {
        let mut path = Vec::new();
        let mut next = self.leaf;
        while let Some(m) = next.and_then(|id| self.get(id)) {
            path.push(m);
            next = m.parent;
        }
        path.reverse();
        path
    }

    /// Whether messages exist off the current branch.
    pub fn has_other_branches(&self) -> bool {
        self.path().len() < self.messages.len()
    }

    /// The messages with this parent, oldest first.
    pub fn children(&self, parent: Option<MessageId>) -> Vec<&MMessage> {
        self.messages
            .iter()
            .filter(|m| m.parent == parent)
            .collect()
    }

    /// `id` and every message below it, oldest first.
    pub fn subtree(&self, id: MessageId) -> Vec<MessageId> {
        let mut inside = vec![id];
        for m in &self.messages {
            if m.parent.is_some_and(|p| inside.contains(&p)) && !inside.contains(&m.id) {
                inside.push(m.id);
            }
        }
        self.messages
            .iter()
            .map(|m| m.id)
            .filter(|id| inside.contains(id))
            .collect()
    }

    /// `append_message`: a child of the current leaf, the new leaf.
    pub fn append(&mut self, mut m: MMessage) {
        m.parent = self.leaf;
        self.leaf = Some(m.id);
        self.messages.push(m);
    }

    /// `branch_from`: a new child of `parent`, the new leaf.
    pub fn branch(&mut self, parent: Option<MessageId>, mut m: MMessage) {
        m.parent = parent;
        self.leaf = Some(m.id);
        self.messages.push(m);
    }

    /// `switch_branch`: the leaf becomes the newest message at or below `id`.
    pub fn switch(&mut self, id: MessageId) {
        self.leaf = self.subtree(id).last().copied();
    }

    /// `delete_message`: its children move up to its parent; when it was
    /// the leaf, its parent is.
    pub fn splice(&mut self, id: MessageId) {
        let parent = self.get(id).expect("a message of the model").parent;
        for m in &mut self.messages {
            if m.parent == Some(id) {
                m.parent = parent;
            }
        }
        self.messages.retain(|m| m.id != id);
        if self.leaf == Some(id) {
            self.leaf = parent;
        }
    }

    /// `delete_branch`: the subtree goes; when the leaf was in it, the
    /// deleted message's parent is the leaf. How many went.
    pub fn delete_branch(&mut self, id: MessageId) -> Vec<MessageId> {
        let parent = self.get(id).expect("a message of the model").parent;
        let doomed = self.subtree(id);
        if self.leaf.is_some_and(|l| doomed.contains(&l)) {
            self.leaf = parent;
        }
        self.messages.retain(|m| !doomed.contains(&m.id));
        doomed
    }

    /// `update` with `list` as the new current branch (no reorder, or a
    /// reorder of a conversation without other branches). Returns the ids
    /// that went.
    pub fn rewrite(&mut self, list: &[MMessage]) -> Vec<MessageId> {
        let path: Vec<MessageId> = self.path().iter().map(|m| m.id).collect();
        let wanted: Vec<MessageId> = list.iter().map(|m| m.id).collect();
        // A branch hanging from a dropped message moves up to the nearest
        // kept one above it (the first messages, when none is).
        let mut kept_above = None;
        let mut dropped = Vec::new();
        for id in path {
            if wanted.contains(&id) {
                kept_above = Some(id);
            } else {
                for m in &mut self.messages {
                    if m.parent == Some(id) {
                        m.parent = kept_above;
                    }
                }
                dropped.push(id);
            }
        }
        self.messages.retain(|m| !dropped.contains(&m.id));
        // The list, each message below the one before it.
        let reordered = {
            let old: Vec<MessageId> = self
                .messages
                .iter()
                .map(|m| m.id)
                .filter(|id| wanted.contains(id))
                .collect();
            let kept: Vec<MessageId> = wanted
                .iter()
                .copied()
                .filter(|id| old.contains(id))
                .collect();
            old != kept
        };
        let mut parent = None;
        let mut fresh = Vec::new();
        for m in list {
            let m = MMessage {
                parent,
                ..m.clone()
            };
            parent = Some(m.id);
            match self.get_mut(m.id) {
                Some(stored) => *stored = m,
                None => fresh.push(m),
            }
        }
        if reordered {
            // Only a single-branch conversation can be reordered: the list is all of it.
            assert_eq!(self.messages.len() + fresh.len(), list.len());
            self.messages = list
                .iter()
                .map(|m| self.get(m.id).cloned().unwrap_or_else(|| m.clone()))
                .collect();
            let mut parent = None;
            for m in &mut self.messages {
                m.parent = parent;
                parent = Some(m.id);
            }
        } else {
            self.messages.extend(fresh);
        }
        self.leaf = list.last().map(|m| m.id);
        dropped
    }
}

/// The reference: conversations (in creation order) and files, and the ids
/// of messages deleted before (to act on them again).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Model {
    pub conversations: Vec<MConversation>,
    pub files: Vec<(FileId, String)>,
    pub ghosts: Vec<MessageId>,
}

impl Model {
    /// Every message: (conversation index, message id), in order.
    pub fn all_messages(&self) -> Vec<(usize, MessageId)> {
        self.conversations
            .iter()
            .enumerate()
            .flat_map(|(i, c)| c.messages.iter().map(move |m| (i, m.id)))
            .collect()
    }

    /// The model's contents in the shape `observe` reads: by id.
    pub fn sorted(&self) -> Model {
        let mut m = self.clone();
        m.conversations.sort_by_key(|c| c.id);
        m.files.sort_by_key(|f| f.0);
        m.ghosts.clear();
        m
    }
}
