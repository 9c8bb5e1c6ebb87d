//! The in-memory backend: pure Rust, no SQL, for tests and throwaway stores.
//!
//! One mutex guards the whole state, so writers are serialized like SQLite's
//! `BEGIN IMMEDIATE`. A write session keeps an undo log and rolls back on
//! error or panic when it is dropped uncommitted.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use time::OffsetDateTime;

use super::message_list::plan;
use super::{Backend, Body, Finish, Session, TimeKey};
use crate::error::{Entity, Error, Result};
use crate::model::{
    BackendKind, Conversation, ConversationId, ConversationOrder, ConversationSummary, Counts,
    FileId, FileMetadata, HealthReport, Message, MessageId, MigrationStatus, MigrationTarget,
    PlannedMigration, bump, to_micros,
};

#[derive(Default)]
pub(crate) struct MemoryBackend {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    files: HashMap<FileId, FileMetadata>,
    files_by_created: BTreeSet<(i64, FileId)>,
    conversations: HashMap<ConversationId, Entry>,
    by_updated: BTreeSet<(i64, ConversationId)>,
    by_created: BTreeSet<(i64, ConversationId)>,
    message_owner: HashMap<MessageId, ConversationId>,
}

#[derive(Clone)]
struct Entry {
    /// The conversation's row; its `messages` stay empty.
    header: Conversation,
    messages: BTreeMap<i64, Message>,
}

impl Entry {
    fn to_conversation(&self) -> Conversation {
        Conversation {
            messages: self.messages.values().cloned().collect(),
            ..self.header.clone()
        }
    }
}

/// How to undo one write.
enum Undo {
    /// Put this file slot back as it was.
    File(FileId, Option<FileMetadata>),
    /// Put this conversation slot back as it was.
    Conversation(ConversationId, Option<Box<Entry>>),
    /// Put this conversation's previous `updated_at` and version back.
    Touched(ConversationId, OffsetDateTime, u64),
    /// Remove the messages appended at these positions.
    Appended(ConversationId, std::ops::Range<i64>),
}

impl State {
    fn counts(&self) -> Counts {
        Counts {
            files: self.files.len() as u64,
            conversations: self.conversations.len() as u64,
            messages: self.message_owner.len() as u64,
        }
    }

    fn set_file(&mut self, id: FileId, file: Option<FileMetadata>) -> Option<FileMetadata> {
        let old = self.files.remove(&id);
        if let Some(old) = &old {
            self.files_by_created
                .remove(&(to_micros(old.created_at), id));
        }
        if let Some(file) = file {
            self.files_by_created
                .insert((to_micros(file.created_at), id));
            self.files.insert(id, file);
        }
        old
    }

    fn set_conversation(&mut self, id: ConversationId, entry: Option<Entry>) -> Option<Entry> {
        let old = self.conversations.remove(&id);
        if let Some(old) = &old {
            self.by_updated
                .remove(&(to_micros(old.header.updated_at), id));
            self.by_created
                .remove(&(to_micros(old.header.created_at), id));
            for m in old.messages.values() {
                self.message_owner.remove(&m.id);
            }
        }
        if let Some(entry) = entry {
            self.by_updated
                .insert((to_micros(entry.header.updated_at), id));
            self.by_created
                .insert((to_micros(entry.header.created_at), id));
            for m in entry.messages.values() {
                self.message_owner.insert(m.id, id);
            }
            self.conversations.insert(id, entry);
        }
        old
    }

    fn set_updated_at(&mut self, id: ConversationId, updated_at: OffsetDateTime) {
        if let Some(entry) = self.conversations.get_mut(&id) {
            self.by_updated
                .remove(&(to_micros(entry.header.updated_at), id));
            entry.header.updated_at = updated_at;
            self.by_updated.insert((to_micros(updated_at), id));
        }
    }

    fn undo(&mut self, undo: Undo) {
        match undo {
            Undo::File(id, file) => {
                self.set_file(id, file);
            }
            Undo::Conversation(id, entry) => {
                self.set_conversation(id, entry.map(|e| *e));
            }
            Undo::Touched(conversation, updated_at, version) => {
                self.set_updated_at(conversation, updated_at);
                if let Some(entry) = self.conversations.get_mut(&conversation) {
                    entry.header.version = version;
                }
            }
            Undo::Appended(conversation, positions) => {
                if let Some(entry) = self.conversations.get_mut(&conversation) {
                    for position in positions {
                        if let Some(message) = entry.messages.remove(&position) {
                            self.message_owner.remove(&message.id);
                        }
                    }
                }
            }
        }
    }
}

impl MemoryBackend {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic inside a session rolls its writes back before the guard is
        // released, so a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self, body: &mut Body<'_>) -> Result<()> {
        let mut guard = self.lock();
        let mut session = MemorySession {
            state: RefCell::new(&mut guard),
            undo: RefCell::new(Vec::new()),
        };
        if body(&session)? == Finish::Commit {
            session.undo.get_mut().clear();
        }
        Ok(())
    }
}

impl Backend for MemoryBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Memory
    }

    fn read(&self, body: &mut Body<'_>) -> Result<()> {
        self.run(body)
    }

    fn write(&self, body: &mut Body<'_>) -> Result<()> {
        self.run(body)
    }

    fn migration_status(&self) -> Result<Vec<MigrationStatus>> {
        Ok(Vec::new())
    }

    fn migration_plan(&self, target: MigrationTarget) -> Result<Vec<PlannedMigration>> {
        match target {
            MigrationTarget::Latest => Ok(Vec::new()),
            MigrationTarget::Version(_) => Err(self.unsupported("migrating to a version")),
        }
    }

    fn migrate(&self, target: MigrationTarget) -> Result<Vec<PlannedMigration>> {
        self.migration_plan(target)
    }

    fn check(&self) -> Result<HealthReport> {
        let counts = self.lock().counts();
        Ok(HealthReport {
            backend: BackendKind::Memory,
            schema_version: 0,
            pending_migrations: Vec::new(),
            integrity_check: None,
            foreign_key_violations: None,
            pragmas: None,
            counts,
            message_count_mismatches: 0,
            size_bytes: None,
            schema: None,
            misplaced_tables: Vec::new(),
        })
    }
}

struct MemorySession<'a> {
    state: RefCell<&'a mut State>,
    undo: RefCell<Vec<Undo>>,
}

impl Drop for MemorySession<'_> {
    /// Rolls back whatever was not committed, also while unwinding a panic.
    fn drop(&mut self) {
        let state = self.state.get_mut();
        while let Some(undo) = self.undo.get_mut().pop() {
            state.undo(undo);
        }
    }
}

impl MemorySession<'_> {
    fn log(&self, undo: Undo) {
        self.undo.borrow_mut().push(undo);
    }
}

/// Items of a newest-first index strictly after `after`.
fn newest_first<Id: Copy + Ord + From<uuid::Uuid>>(
    index: &BTreeSet<(i64, Id)>,
    after: Option<TimeKey>,
    limit: usize,
) -> Vec<Id> {
    let upper = match after {
        Some((t, id)) => Bound::Excluded((t, Id::from(id))),
        None => Bound::Unbounded,
    };
    index
        .range((Bound::Unbounded, upper))
        .rev()
        .take(limit)
        .map(|(_, id)| *id)
        .collect()
}

impl Session for MemorySession<'_> {
    fn insert_file(&self, file: &FileMetadata) -> Result<()> {
        let mut state = self.state.borrow_mut();
        if state.files.contains_key(&file.id) {
            return Err(Error::conflict(Entity::File, file.id));
        }
        state.set_file(file.id, Some(file.clone()));
        self.log(Undo::File(file.id, None));
        Ok(())
    }

    fn file(&self, id: FileId) -> Result<Option<FileMetadata>> {
        Ok(self.state.borrow().files.get(&id).cloned())
    }

    fn files(&self, after: Option<TimeKey>, limit: usize) -> Result<Vec<FileMetadata>> {
        let state = self.state.borrow();
        Ok(newest_first(&state.files_by_created, after, limit)
            .into_iter()
            .filter_map(|id| state.files.get(&id).cloned())
            .collect())
    }

    fn delete_file(&self, id: FileId) -> Result<bool> {
        let old = self.state.borrow_mut().set_file(id, None);
        let existed = old.is_some();
        if existed {
            self.log(Undo::File(id, old));
        }
        Ok(existed)
    }

    fn insert_conversation(&self, conversation: &Conversation) -> Result<()> {
        let mut state = self.state.borrow_mut();
        if state.conversations.contains_key(&conversation.id) {
            return Err(Error::conflict(Entity::Conversation, conversation.id));
        }
        let entry = Entry {
            header: conversation.clone(),
            messages: BTreeMap::new(),
        };
        state.set_conversation(conversation.id, Some(entry));
        self.log(Undo::Conversation(conversation.id, None));
        Ok(())
    }

    fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        Ok(self
            .state
            .borrow()
            .conversations
            .get(&id)
            .map(Entry::to_conversation))
    }

    fn conversation_exists(&self, id: ConversationId) -> Result<bool> {
        Ok(self.state.borrow().conversations.contains_key(&id))
    }

    fn touch_conversation(
        &self,
        id: ConversationId,
        bump_to: Option<OffsetDateTime>,
        _added: usize,
    ) -> Result<bool> {
        // Message counts are derived from the messages themselves here.
        let mut state = self.state.borrow_mut();
        let Some(entry) = state.conversations.get(&id) else {
            return Ok(false);
        };
        let (updated_at, version) = (entry.header.updated_at, entry.header.version);
        if let Some(now) = bump_to {
            state.set_updated_at(id, bump(updated_at, now));
        }
        if let Some(entry) = state.conversations.get_mut(&id) {
            entry.header.version = version + 1;
        }
        self.log(Undo::Touched(id, updated_at, version));
        Ok(true)
    }

    fn insert_messages(&self, id: ConversationId, messages: &[Message]) -> Result<()> {
        let mut state = self.state.borrow_mut();
        let state = &mut **state;
        let entry = state
            .conversations
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(Entity::Conversation, id))?;
        if let Some(taken) = messages
            .iter()
            .find(|m| state.message_owner.contains_key(&m.id))
        {
            return Err(Error::conflict(Entity::Message, taken.id));
        }
        let first = entry.messages.keys().next_back().map_or(1, |p| p + 1);
        for (position, message) in (first..).zip(messages) {
            entry.messages.insert(position, message.clone());
            state.message_owner.insert(message.id, id);
        }
        self.log(Undo::Appended(id, first..first + messages.len() as i64));
        Ok(())
    }

    fn message_page(
        &self,
        conversation: ConversationId,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, Message)>> {
        let state = self.state.borrow();
        let Some(entry) = state.conversations.get(&conversation) else {
            return Ok(Vec::new());
        };
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(entry
            .messages
            .range((lower, Bound::Unbounded))
            .take(limit)
            .map(|(p, m)| (*p, m.clone()))
            .collect())
    }

    fn conversations(
        &self,
        order: ConversationOrder,
        after: Option<TimeKey>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>> {
        let state = self.state.borrow();
        let index = match order {
            ConversationOrder::UpdatedAt => &state.by_updated,
            ConversationOrder::CreatedAt => &state.by_created,
        };
        Ok(newest_first(index, after, limit)
            .into_iter()
            .filter_map(|id| state.conversations.get(&id))
            .map(|entry| ConversationSummary {
                message_count: entry.messages.len() as u64,
                ..entry.header.summary()
            })
            .collect())
    }

    fn all_conversations(&self) -> Result<Vec<Conversation>> {
        let state = self.state.borrow();
        Ok(state
            .by_updated
            .iter()
            .rev()
            .filter_map(|(_, id)| state.conversations.get(id))
            .map(Entry::to_conversation)
            .collect())
    }

    fn update_conversation(
        &self,
        conversation: &Conversation,
        now: OffsetDateTime,
    ) -> Result<Conversation> {
        let mut state = self.state.borrow_mut();
        let old = state
            .conversations
            .get(&conversation.id)
            .ok_or_else(|| Error::not_found(Entity::Conversation, conversation.id))?;
        if old.header.version != conversation.version {
            return Err(Error::stale(Entity::Conversation, conversation.id));
        }
        let stored: Vec<(i64, Message)> =
            old.messages.iter().map(|(p, m)| (*p, m.clone())).collect();
        let plan = plan(&stored, &conversation.messages);
        if let Some((_, taken)) = plan.insert.iter().find(|(_, m)| {
            state
                .message_owner
                .get(&m.id)
                .is_some_and(|owner| *owner != conversation.id)
        }) {
            return Err(Error::conflict(Entity::Message, taken.id));
        }
        let mut entry = old.clone();
        entry.header.title = conversation.title.clone();
        entry.header.updated_at = bump(old.header.updated_at, now);
        entry.header.version = old.header.version + 1;
        for id in &plan.delete {
            entry.messages.retain(|_, m| m.id != *id);
        }
        let mut messages: BTreeMap<i64, Message> = BTreeMap::new();
        let changed: HashMap<MessageId, i64> = plan
            .insert
            .iter()
            .chain(&plan.update)
            .map(|(p, m)| (m.id, *p))
            .collect();
        for (position, message) in std::mem::take(&mut entry.messages) {
            if !changed.contains_key(&message.id) {
                messages.insert(position, message);
            }
        }
        for (position, message) in plan.insert.iter().chain(&plan.update) {
            messages.insert(*position, (*message).clone());
        }
        entry.messages = messages;
        let stored = entry.to_conversation();
        let old = state.set_conversation(conversation.id, Some(entry));
        self.log(Undo::Conversation(conversation.id, old.map(Box::new)));
        Ok(stored)
    }

    fn delete_conversation(&self, id: ConversationId) -> Result<bool> {
        let old = self.state.borrow_mut().set_conversation(id, None);
        let existed = old.is_some();
        if existed {
            self.log(Undo::Conversation(id, old.map(Box::new)));
        }
        Ok(existed)
    }

    fn counts(&self) -> Result<Counts> {
        Ok(self.state.borrow().counts())
    }
}
