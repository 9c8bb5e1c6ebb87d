//! The in-memory backend: pure Rust, no SQL, for tests and throwaway stores.
//!
//! One mutex guards the whole state, so writers are serialized like SQLite's
//! `BEGIN IMMEDIATE`. A write session keeps an undo log and rolls back on
//! error or panic when it is dropped uncommitted.

mod access;
mod search;
mod session;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use time::OffsetDateTime;

use super::{Backend, Body, Finish};
use crate::error::Result;
use crate::model::{
    BackendKind, Conversation, ConversationId, ConversationSummary, Counts, FileId, FileMetadata,
    HealthReport, Message, MessageId, MigrationStatus, MigrationTarget, PlannedMigration,
    to_micros,
};
use access::MemorySession;

#[derive(Default)]
pub(crate) struct MemoryBackend {
    state: Mutex<State>,
}

/// A hash map keyed by id. foldhash (hashbrown's default hasher) instead of
/// SipHash: a tenth of the cost per lookup, which is most of a listing's
/// time here; seeded per process, so still no fixed collisions to aim at.
type IdMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct State {
    files: IdMap<FileId, FileMetadata>,
    files_by_created: BTreeSet<(i64, FileId)>,
    conversations: IdMap<ConversationId, Entry>,
    by_updated: BTreeSet<(i64, ConversationId)>,
    by_created: BTreeSet<(i64, ConversationId)>,
    /// Where each message is: its conversation and position.
    message_at: IdMap<MessageId, (ConversationId, i64)>,
}

/// A message's place in its conversation's map: its position, then its id
/// (while `update` renumbers, two messages may share a position).
type Key = (i64, MessageId);

#[derive(Clone)]
struct Entry {
    /// The conversation's row; its `messages` stay empty.
    header: Conversation,
    /// Every message by position, on the current branch or not.
    messages: BTreeMap<Key, Slot>,
}

/// A stored message and whether it is on the current branch.
#[derive(Clone)]
struct Slot {
    on_path: bool,
    message: Message,
}

impl Entry {
    /// The conversation with its current branch.
    fn to_conversation(&self) -> Conversation {
        // Counted first so the vector is sized once and each message is
        // written straight into it; a linear conversation (every message on
        // the branch) takes the exact-size iterator.
        let on_path = self.messages.values().filter(|slot| slot.on_path).count();
        let messages: Vec<Message> = if on_path == self.messages.len() {
            self.messages
                .values()
                .map(|slot| slot.message.clone())
                .collect()
        } else {
            let mut messages = Vec::with_capacity(on_path);
            for slot in self.messages.values().filter(|slot| slot.on_path) {
                messages.push(slot.message.clone());
            }
            messages
        };
        Conversation {
            messages,
            ..self.header.clone()
        }
    }

    /// The conversation's row.
    #[inline]
    fn summary(&self) -> ConversationSummary {
        self.header.summary_counting(self.messages.len() as u64)
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
    /// Put this conversation's previous row back (its messages untouched).
    Header(Box<Conversation>),
    /// Put this message slot back as it was.
    Message(ConversationId, Key, Option<Slot>),
}

impl State {
    /// Messages whose place in their tree is unsound (as the SQL backends
    /// count them for `check`).
    fn tree_mismatches(&self) -> u64 {
        let mut bad = 0;
        for entry in self.conversations.values() {
            let place: HashMap<MessageId, (i64, bool)> = entry
                .messages
                .iter()
                .map(|(key, slot)| (key.1, (key.0, slot.on_path)))
                .collect();
            let mut on_path_children: HashMap<Option<MessageId>, u32> = HashMap::new();
            for slot in entry.messages.values().filter(|s| s.on_path) {
                *on_path_children.entry(slot.message.parent_id).or_default() += 1;
            }
            for ((position, _), slot) in &entry.messages {
                let parent = slot.message.parent_id.map(|p| place.get(&p));
                let unsound = match parent {
                    Some(None) => true,
                    Some(Some(&(p, on_path))) => p >= *position || (slot.on_path && !on_path),
                    None => false,
                } || (slot.on_path
                    && on_path_children
                        .get(&slot.message.parent_id)
                        .is_some_and(|n| *n > 1));
                bad += u64::from(unsound);
            }
        }
        bad
    }

    fn counts(&self) -> Counts {
        Counts {
            files: self.files.len() as u64,
            conversations: self.conversations.len() as u64,
            messages: self.message_at.len() as u64,
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
            for slot in old.messages.values() {
                self.message_at.remove(&slot.message.id);
            }
        }
        if let Some(entry) = entry {
            self.by_updated
                .insert((to_micros(entry.header.updated_at), id));
            self.by_created
                .insert((to_micros(entry.header.created_at), id));
            for ((position, _), slot) in &entry.messages {
                self.message_at.insert(slot.message.id, (id, *position));
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

    /// Puts `slot` into (or, `None`, clears) a conversation's `key`;
    /// returns what was there.
    fn set_message(
        &mut self,
        conversation: ConversationId,
        key: Key,
        slot: Option<Slot>,
    ) -> Option<Slot> {
        let entry = self.conversations.get_mut(&conversation)?;
        let old = entry.messages.remove(&key);
        if old.is_some() {
            self.message_at.remove(&key.1);
        }
        if let Some(slot) = slot {
            self.message_at.insert(key.1, (conversation, key.0));
            entry.messages.insert(key, slot);
        }
        old
    }

    /// Replaces a conversation's row (keeping its messages); the old row.
    fn set_header(&mut self, header: Conversation) -> Option<Conversation> {
        let id = header.id;
        let old = self.conversations.get(&id)?.header.clone();
        self.set_updated_at(id, header.updated_at);
        let entry = self.conversations.get_mut(&id)?;
        entry.header = header;
        Some(old)
    }

    fn undo(&mut self, undo: Undo) {
        match undo {
            Undo::Message(conversation, key, slot) => {
                self.set_message(conversation, key, slot);
            }
            Undo::File(id, file) => {
                self.set_file(id, file);
            }
            Undo::Conversation(id, entry) => {
                self.set_conversation(id, entry.map(|e| *e));
            }
            Undo::Header(header) => {
                self.set_header(*header);
            }
            Undo::Touched(conversation, updated_at, version) => {
                self.set_updated_at(conversation, updated_at);
                if let Some(entry) = self.conversations.get_mut(&conversation) {
                    entry.header.version = version;
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
        let mut session = MemorySession::new(&mut guard);
        if body(&session)? == Finish::Commit {
            session.commit();
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
            tree_mismatches: self.lock().tree_mismatches(),
            search_index_mismatches: 0,
            size_bytes: None,
            schema: None,
            misplaced_tables: Vec::new(),
        })
    }
}
