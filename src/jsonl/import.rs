//! Reading an import into a store, in one transaction.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;

use super::lines::Lines;
use super::{ConversationRecord, FORMAT, MessageRecord, Record, VERSION};
use crate::backend::{Branches, Chat, PositionRange, Session, Touch};
use crate::error::{Entity, Error, Result};
use crate::model::{ConversationId, Message, MessageId, NewConversation, NewFile, NewMessage};
use crate::store::Store;
use crate::transfer::{
    Progress, TransferOptions, TransferReport, add_messages, ensure_empty, insert_conversation,
};
use crate::validate;

/// Reads an export into `store` in one transaction.
pub(crate) fn import(
    store: &Store,
    input: impl BufRead,
    options: TransferOptions,
    mut progress: impl FnMut(Progress),
) -> Result<TransferReport> {
    if !options.merge {
        ensure_empty(store)?;
    }
    let batch = crate::validate::page_limit(options.batch_size)?;
    store.run_write(|session| {
        let mut import = Import {
            session,
            merge: options.merge,
            version: 0,
            report: TransferReport::default(),
            seen: HashSet::new(),
            held: HashMap::new(),
            pending: Vec::new(),
            open: None,
        };
        let mut lines = Lines {
            input,
            number: 0,
            buffer: Vec::new(),
        };
        while let Some((number, line)) = lines.next_line() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let record: Record = serde_json::from_str(&line).map_err(|e| Error::Import {
                line: number,
                reason: e.to_string(),
            })?;
            import.record(number, record, batch)?;
            if number.is_multiple_of(1000) {
                progress(Progress {
                    done: import.report.written,
                    total: None,
                });
            }
        }
        if import.version == 0 {
            return Err(Error::Import {
                line: 1,
                reason: "the file is empty: no header".to_owned(),
            });
        }
        import.close_conversation()?;
        progress(Progress {
            done: import.report.written,
            total: None,
        });
        Ok(import.report)
    })
}

/// A conversation whose messages are being read (format version 2).
struct Open {
    id: ConversationId,
    /// Its messages so far: a message's parent must be one of them.
    messages: HashSet<MessageId>,
    /// The last of them on the current branch: the parent of the next one
    /// on it.
    branch_end: Option<MessageId>,
}

/// The state of an import, inside its transaction.
struct Import<'s> {
    session: &'s dyn Session,
    merge: bool,
    /// The header's format version (0: no header yet).
    version: u32,
    report: TransferReport,
    seen: HashSet<ConversationId>,
    /// Conversations the target had (when merging), with the ids of the
    /// messages it holds: the others are added.
    held: HashMap<ConversationId, HashSet<MessageId>>,
    /// Messages of one conversation waiting to be written, with their lines
    /// and whether they are on the current branch.
    pending: Vec<(u64, Message, bool)>,
    open: Option<Open>,
}

impl Import<'_> {
    fn record(&mut self, number: u64, record: Record, batch: usize) -> Result<()> {
        let at = |e: Error| match e {
            Error::Import { .. } => e,
            other => Error::Import {
                line: number,
                reason: other.to_string(),
            },
        };
        let record = match (self.version, record) {
            (0, Record::Header { format, version }) => {
                if format != FORMAT || version == 0 || version > VERSION {
                    return Err(Error::Import {
                        line: number,
                        reason: format!(
                            "a {format:?} file of version {version}; this build reads \
                             {FORMAT:?} up to version {VERSION}"
                        ),
                    });
                }
                self.version = version;
                return Ok(());
            }
            (0, _) => {
                return Err(Error::Import {
                    line: number,
                    reason: "the first line must be the header".to_owned(),
                });
            }
            (_, Record::Header { .. }) => {
                return Err(Error::Import {
                    line: number,
                    reason: "a second header".to_owned(),
                });
            }
            (_, record) => record,
        };
        match record {
            Record::Header { .. } => Ok(()),
            Record::File(file) => {
                self.close_conversation()?;
                let file = validate::new_file(
                    NewFile {
                        id: Some(file.id),
                        filename: file.filename,
                        content_type: file.content_type,
                        size: file.size,
                        created_at: Some(file.created_at),
                    },
                    file.created_at,
                )
                .map_err(at)?;
                if self.merge && self.session.file(file.id).map_err(at)?.is_some() {
                    self.report.skipped.files += 1;
                } else {
                    self.session.insert_file(&file).map_err(at)?;
                    self.report.written.files += 1;
                }
                Ok(())
            }
            Record::Conversation(c) => {
                self.close_conversation()?;
                self.conversation(c).map_err(at)
            }
            Record::Message(m) => self.message(number, m, batch).map_err(at),
        }
    }

    fn conversation(&mut self, c: ConversationRecord) -> Result<()> {
        let mut header = validate::new_conversation(
            NewConversation {
                id: Some(c.id),
                title: c.title,
                created_at: Some(c.created_at),
                metadata: c.metadata,
            },
            c.created_at,
        )?;
        header.updated_at = validate::timestamp("updated_at", c.updated_at)?;
        header.archived_at = c
            .archived_at
            .map(|t| validate::timestamp("archived_at", t))
            .transpose()?;
        if !self.seen.insert(header.id) {
            return Err(Error::invalid("id", "this conversation appeared before"));
        }
        if insert_conversation(self.session, &header, self.merge)? {
            self.report.written.conversations += 1;
        } else {
            let stored = self
                .session
                .message_page(header.id, Branches::All, PositionRange::ALL)?;
            let ids = stored.iter().map(|s| s.message.id).collect();
            self.held.insert(header.id, ids);
            self.report.skipped.conversations += 1;
        }
        if self.version >= 2 {
            self.open = Some(Open {
                id: header.id,
                messages: HashSet::new(),
                branch_end: None,
            });
        }
        Ok(())
    }

    fn message(&mut self, number: u64, record: MessageRecord, batch: usize) -> Result<()> {
        let m = record.message;
        if !self.seen.contains(&m.conversation_id) {
            return Err(Error::invalid(
                "conversation_id",
                format!(
                    "conversation {} has not appeared before it",
                    m.conversation_id
                ),
            ));
        }
        let parent_id = m.parent_id;
        let mut on_path = true;
        let mut message = validate::new_message(
            m.conversation_id,
            NewMessage {
                id: Some(m.id),
                role: m.role,
                content: m.content,
                attachments: m.attachments,
                created_at: Some(m.created_at),
                metadata: m.metadata,
            },
            m.created_at,
        )?;
        if let Some(open) = &mut self.open {
            // Version 2: the conversation's messages follow it, parents first.
            if open.id != message.conversation_id {
                return Err(Error::invalid(
                    "conversation_id",
                    format!("the messages of conversation {} follow it", open.id),
                ));
            }
            if let Some(parent) = parent_id.filter(|p| !open.messages.contains(p)) {
                // An earlier line may be the cause (its id taken, so it
                // cannot be a parent): writing what is pending names it.
                self.flush()?;
                return Err(Error::invalid(
                    "parent_id",
                    format!("message {parent} is not a message of this conversation above it"),
                ));
            }
            if !open.messages.insert(message.id) {
                return Err(Error::conflict(Entity::Message, message.id));
            }
            message.parent_id = parent_id;
            let on_branch = record.on_current_branch.ok_or_else(|| {
                Error::invalid("on_current_branch", "is missing (format version 2)")
            })?;
            if on_branch {
                if parent_id != open.branch_end {
                    return Err(Error::invalid(
                        "on_current_branch",
                        "the current branch must run from a first message down, \
                         each message on it the child of the one on it before",
                    ));
                }
                open.branch_end = Some(message.id);
            }
            on_path = on_branch;
        }
        if let Some(held) = self.held.get(&message.conversation_id) {
            if held.contains(&message.id) {
                self.report.skipped.messages += 1;
                return Ok(());
            }
            // Off the current branch until the conversation is read whole.
            on_path &= self.version < 2;
        }
        if self
            .pending
            .first()
            .is_some_and(|(_, p, _)| p.conversation_id != message.conversation_id)
            || self.pending.len() >= batch
        {
            self.flush()?;
        }
        self.pending.push((number, message, on_path));
        Ok(())
    }

    /// Writes the pending messages: with their parents (version 2), or
    /// as one branch below the current leaf (version 1).
    fn flush(&mut self) -> Result<()> {
        let Some((first_line, first, _)) = self.pending.first() else {
            return Ok(());
        };
        let (first_line, id) = (*first_line, first.conversation_id);
        let mut messages: Vec<Message> = self.pending.iter().map(|(_, m, _)| m.clone()).collect();
        let written = if self.version >= 2 {
            let on_path: Vec<bool> = self.pending.iter().map(|(_, _, p)| *p).collect();
            add_messages(self.session, id, &messages, &on_path)
        } else {
            self.session.append_chain(id, &mut messages, None)
        };
        if let Err(e) = written {
            // Name the line of the message the error is about.
            let line = match &e {
                Error::Conflict { id, .. } => self
                    .pending
                    .iter()
                    .find(|(_, m, _)| m.id.to_string() == *id)
                    .map_or(first_line, |(line, _, _)| *line),
                _ => first_line,
            };
            return Err(Error::Import {
                line,
                reason: e.to_string(),
            });
        }
        self.report.written.messages += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Writes what is pending of the conversation just read; when the
    /// target had it (merging, version 2), takes the file's current branch,
    /// moving the version as `switch_branch` does.
    fn close_conversation(&mut self) -> Result<()> {
        self.flush()?;
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        if !self.held.contains_key(&open.id)
            || self.session.current_leaf(open.id)? == open.branch_end
        {
            return Ok(());
        }
        self.session.touch(open.id, Touch::write(None, 0))?;
        self.session.set_path(open.id, None, &[])?;
        self.session.select_leaf(open.id, open.branch_end)
    }
}
