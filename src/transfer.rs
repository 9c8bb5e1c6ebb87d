//! Moving data between stores: [`copy`] from any backend to any other, and
//! the JSON Lines export and import.
//!
//! Both work in batches, so memory stays bounded however large the store:
//! files and conversations are read a page at a time, and a conversation's
//! messages a page at a time. Ids, timestamps, order and attachments are
//! preserved. Copy from a store nobody writes to meanwhile: a copy is not one
//! snapshot of the source.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::backend::{Branches, Chat, PositionRange, Session, Stored, Touch};
use crate::error::{Error, Result};

use crate::model::{
    Archived, Conversation, ConversationId, ConversationOrder, ConversationQuery, Counts,
    FileMetadata, Message, MessageId, Page, PageRequest,
};
use crate::repo::{ConversationRepository, FileRepository};
use crate::store::Store;

/// How [`copy`] and [`Store::import_jsonl`] treat a target that already holds data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferOptions {
    /// Write into a target that already holds records: files and
    /// conversations whose ids it has are skipped, and every message of the
    /// source it lacks is added to its conversation, in the source's order,
    /// with its parent; such a conversation then takes the source's current
    /// branch (its version moves forward when that changes it). So a copy
    /// or import interrupted anywhere (a crash, a kill, a lost connection)
    /// is completed by running it again with `merge`. Messages of a
    /// version-1 JSON Lines file, which has no branches, are appended below
    /// the current leaf. Without `merge`, a non-empty target is refused.
    pub merge: bool,
    /// Records read and written per batch (at most
    /// [`MAX_PAGE_SIZE`](crate::limits::MAX_PAGE_SIZE)). Default 500.
    pub batch_size: u32,
}

impl Default for TransferOptions {
    fn default() -> Self {
        TransferOptions {
            merge: false,
            batch_size: 500,
        }
    }
}

/// How far a copy, export or import has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Records done so far.
    pub done: Counts,
    /// Records in all, when known in advance.
    pub total: Option<Counts>,
}

/// What a copy, export or import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferReport {
    /// Records written.
    pub written: Counts,
    /// Records skipped because the target had them (merge): files,
    /// conversations (whose missing messages are still added), messages.
    pub skipped: Counts,
}

/// Copies every file record, conversation and message of `from` into `to`,
/// any backends, preserving ids, timestamps, order and attachments; calls
/// `progress` after every batch and returns the counts.
///
/// ```
/// use silmari_store::prelude::*;
/// use silmari_store::{TransferOptions, copy};
///
/// # #[cfg(feature = "sqlite")]
/// # fn main() -> silmari_store::Result<()> {
/// let dev = Store::open("memory://")?;
/// dev.conversations().create(NewConversation::titled("draft"))?;
/// let production = Store::open("sqlite://")?;
/// let report = copy(&dev, &production, TransferOptions::default(), |p| {
///     eprintln!("{} conversations", p.done.conversations)
/// })?;
/// assert_eq!(report.written.conversations, 1);
/// # Ok(()) }
/// # #[cfg(not(feature = "sqlite"))]
/// # fn main() {}
/// ```
pub fn copy(
    from: &Store,
    to: &Store,
    options: TransferOptions,
    mut progress: impl FnMut(Progress),
) -> Result<TransferReport> {
    crate::validate::page_limit(options.batch_size)?;
    let total = from.counts()?;
    let mut writer = Writer::new(to, options)?;
    let size = options.batch_size;
    each_page(
        size,
        |page| from.files().list(page),
        |files| {
            writer.files(&files)?;
            progress(writer.progress(total));
            Ok(())
        },
    )?;
    each_page(
        size,
        |page| from.conversations().list(by_creation(page)),
        |summaries| {
            for summary in summaries {
                let header = summary.into_conversation(Vec::new());
                if writer.conversation(&header)? {
                    each_tree_page(from, header.id, size, |page| {
                        writer.messages(&header, &page)
                    })?;
                } else {
                    // The target has it, maybe from a copy that was interrupted
                    // between two batches: add the messages it lacks, and
                    // take the source's current branch.
                    writer.missing_messages(from, &header, size)?;
                    writer.current_leaf(&header, current_leaf(from, header.id)?)?;
                }
                progress(writer.progress(total));
            }
            Ok(())
        },
    )?;
    Ok(writer.report)
}

/// Conversations newest-created first, archived or not, by pages: the
/// order copies and exports walk them in (it does not move while they run).
pub(crate) fn by_creation(page: PageRequest) -> ConversationQuery {
    ConversationQuery {
        order: ConversationOrder::CreatedAt,
        page,
        archived: Archived::Include,
    }
}

/// Hands every message of conversation `id`, on every branch, to `visit`,
/// `size` at a time, in position order (a parent before its children).
pub(crate) fn each_tree_page(
    store: &Store,
    id: ConversationId,
    size: u32,
    mut visit: impl FnMut(Vec<Stored>) -> Result<()>,
) -> Result<()> {
    let mut after = None;
    loop {
        let range = PositionRange {
            after,
            limit: size as usize,
        };
        let page = store.run_read(|s| s.message_page(id, Branches::All, range))?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = Some(last.position);
        let full = page.len() >= size as usize;
        visit(page)?;
        if !full {
            return Ok(());
        }
    }
}

/// The current leaf of conversation `id` in `store`.
pub(crate) fn current_leaf(store: &Store, id: ConversationId) -> Result<Option<MessageId>> {
    store.run_read(|s| s.current_leaf(id))
}

/// Fetches page after page of `limit` items until the last, handing each
/// page's items to `visit`.
pub(crate) fn each_page<T>(
    limit: u32,
    mut fetch: impl FnMut(PageRequest) -> Result<Page<T>>,
    mut visit: impl FnMut(Vec<T>) -> Result<()>,
) -> Result<()> {
    let mut request = PageRequest::first(limit);
    loop {
        let page = fetch(request.clone())?;
        visit(page.items)?;
        match page.next {
            Some(cursor) => request = request.after(cursor),
            None => return Ok(()),
        }
    }
}

/// Writes validated records into a target store, a batch per transaction,
/// keeping count.
pub(crate) struct Writer<'a> {
    to: &'a Store,
    merge: bool,
    pub(crate) report: TransferReport,
}

impl<'a> Writer<'a> {
    /// A writer into `to`, refusing a non-empty target unless merging.
    pub(crate) fn new(to: &'a Store, options: TransferOptions) -> Result<Self> {
        if !options.merge {
            ensure_empty(to)?;
        }
        Ok(Writer {
            to,
            merge: options.merge,
            report: TransferReport::default(),
        })
    }

    pub(crate) fn progress(&self, total: Counts) -> Progress {
        Progress {
            done: self.report.written,
            total: Some(total),
        }
    }

    /// Writes file records (skipping those the target has, when merging).
    pub(crate) fn files(&mut self, files: &[FileMetadata]) -> Result<()> {
        let merge = self.merge;
        let (written, skipped) = self.to.run_write(|s| {
            let mut counts = (0, 0);
            for file in files {
                if merge && s.file(file.id)?.is_some() {
                    counts.1 += 1;
                } else {
                    s.insert_file(file)?;
                    counts.0 += 1;
                }
            }
            Ok(counts)
        })?;
        self.report.written.files += written;
        self.report.skipped.files += skipped;
        Ok(())
    }

    /// Writes a conversation's row with its timestamps as they are; `false`
    /// when merging and the target has it already (then skip its messages).
    pub(crate) fn conversation(&mut self, header: &Conversation) -> Result<bool> {
        let merge = self.merge;
        let written = self
            .to
            .run_write(|s| insert_conversation(s, header, merge))?;
        if written {
            self.report.written.conversations += 1;
        } else {
            self.report.skipped.conversations += 1;
        }
        Ok(written)
    }

    /// Appends the messages of `header` in `from` that the target's
    /// conversation lacks, page by page, in the source's order. Holds the
    /// ids the target has for this one conversation, not its messages.
    pub(crate) fn missing_messages(
        &mut self,
        from: &Store,
        header: &Conversation,
        size: u32,
    ) -> Result<()> {
        let mut held: HashSet<MessageId> = HashSet::new();
        each_tree_page(self.to, header.id, size, |page| {
            held.extend(page.iter().map(|s| s.message.id));
            Ok(())
        })?;
        each_tree_page(from, header.id, size, |page| {
            let total = page.len();
            // Off the current branch until `current_leaf` sets it: the
            // target's branch may differ from the source's meanwhile.
            let missing: Vec<Stored> = page
                .into_iter()
                .filter(|s| !held.contains(&s.message.id))
                .map(|s| Stored {
                    on_path: false,
                    ..s
                })
                .collect();
            self.report.skipped.messages += (total - missing.len()) as u64;
            self.messages(header, &missing)
        })
    }

    /// Adds messages to a conversation written before, with the parents
    /// they name, on the current branch or off it as they were; leaves its
    /// `updated_at`.
    pub(crate) fn messages(&mut self, header: &Conversation, page: &[Stored]) -> Result<()> {
        if page.is_empty() {
            return Ok(());
        }
        let messages: Vec<Message> = page.iter().map(|s| s.message.clone()).collect();
        let on_path: Vec<bool> = page.iter().map(|s| s.on_path).collect();
        self.to
            .run_write(|s| add_messages(s, header.id, &messages, &on_path))?;
        self.report.written.messages += messages.len() as u64;
        Ok(())
    }

    /// Makes `leaf` the current leaf of a conversation the target held,
    /// whatever its current branch was. Moving it is a write, as
    /// `switch_branch` is: the version moves forward (not `updated_at`), so
    /// that a copy read before a merge moved the current branch is stale.
    pub(crate) fn current_leaf(
        &mut self,
        header: &Conversation,
        leaf: Option<MessageId>,
    ) -> Result<()> {
        self.to.run_write(|s| {
            if s.current_leaf(header.id)? == leaf {
                return Ok(());
            }
            s.touch(header.id, Touch::write(None, 0))?;
            s.set_path(header.id, None, &[])?;
            s.select_leaf(header.id, leaf)
        })
    }
}

/// Adds `messages` to conversation `id` with the parents they name, each on
/// the current branch or off it as `on_path` says, counting them and
/// leaving `updated_at`.
pub(crate) fn add_messages(
    s: &dyn Session,
    id: ConversationId,
    messages: &[Message],
    on_path: &[bool],
) -> Result<()> {
    let added = i64::try_from(messages.len()).unwrap_or(i64::MAX);
    s.touch(id, Touch::write(None, added))?;
    s.insert_messages(id, messages, on_path)
}

/// Refuses a target that holds any record.
pub(crate) fn ensure_empty(to: &Store) -> Result<()> {
    let present = to.counts()?;
    if present.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(
        "target",
        format!(
            "already holds {} files, {} conversations and {} messages; \
             write into an empty store, or merge",
            present.files, present.conversations, present.messages
        ),
    ))
}

/// Inserts `header` as it is; `false` when merging and it exists.
pub(crate) fn insert_conversation(
    session: &dyn Session,
    header: &Conversation,
    merge: bool,
) -> Result<bool> {
    if merge && session.conversation_exists(header.id)? {
        return Ok(false);
    }
    session.insert_conversation(header)?;
    Ok(true)
}

impl Store {
    /// Copies everything of this store into `target` (any backend): see
    /// [`copy`](crate::copy).
    pub fn copy_to(
        &self,
        target: &Store,
        options: TransferOptions,
        progress: impl FnMut(Progress),
    ) -> Result<TransferReport> {
        copy(self, target, options, progress)
    }
}
