//! The JSON Lines export format ([`Store::export_jsonl`] and
//! [`Store::import_jsonl`]): one record per line, a versioned header first.
//! Import checks every
//! record with the same rules as the API and writes the whole file in one
//! transaction: a file with a bad record writes nothing, and the error names
//! its line.

mod import;
mod lines;

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::model::{ConversationId, Counts, FileMetadata, Message, Metadata};
use crate::repo::{ConversationRepository, FileRepository};
use crate::store::Store;
use crate::transfer::{
    Progress, TransferOptions, TransferReport, by_creation, each_page, each_tree_page,
};

/// The `format` of the header line.
pub(crate) const FORMAT: &str = "silmari-store";
/// The newest format version this build writes and reads. Version 2 added
/// branches (`parent_id` and `on_current_branch` of messages), archive and
/// metadata; a version 1 file still imports, each conversation's messages
/// as one branch.
pub(crate) const VERSION: u32 = 2;

/// One line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Record {
    Header { format: String, version: u32 },
    File(FileMetadata),
    Conversation(ConversationRecord),
    Message(MessageRecord),
}

/// A message, and whether it is on its conversation's current branch.
#[derive(Debug, Serialize, Deserialize)]
struct MessageRecord {
    #[serde(flatten)]
    message: Message,
    /// Required from version 2 on: the current branch runs from a first
    /// message down, each on it the child of the one on it before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    on_current_branch: Option<bool>,
}

/// A conversation without its messages (they follow as their own records).
#[derive(Debug, Serialize, Deserialize)]
struct ConversationRecord {
    id: ConversationId,
    title: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    archived_at: Option<OffsetDateTime>,
    #[serde(default)]
    metadata: Metadata,
}

/// What a failing export writer is called in [`Error::Io`] (a writer has no path).
const OUTPUT: &str = "(export output)";

fn output_error(source: std::io::Error) -> Error {
    Error::Io {
        path: OUTPUT.into(),
        source,
    }
}

fn write_record(out: &mut impl Write, record: &Record) -> Result<()> {
    serde_json::to_writer(&mut *out, record).map_err(|e| output_error(e.into()))?;
    out.write_all(b"\n").map_err(output_error)
}

/// Writes every record of `store` to `out`, a page at a time.
pub(crate) fn export(
    store: &Store,
    out: &mut impl Write,
    mut progress: impl FnMut(Progress),
) -> Result<TransferReport> {
    const PAGE: u32 = 500;
    let total = store.counts()?;
    let mut done = Counts::default();
    write_record(
        out,
        &Record::Header {
            format: FORMAT.to_owned(),
            version: VERSION,
        },
    )?;
    let progress_now = |done: Counts| Progress {
        done,
        total: Some(total),
    };
    each_page(
        PAGE,
        |page| store.files().list(page),
        |files| {
            for file in files {
                write_record(out, &Record::File(file))?;
                done.files += 1;
            }
            progress(progress_now(done));
            Ok(())
        },
    )?;
    each_page(
        PAGE,
        |page| store.conversations().list(by_creation(page)),
        |summaries| {
            for c in summaries {
                let id = c.id;
                write_record(
                    out,
                    &Record::Conversation(ConversationRecord {
                        id,
                        title: c.title,
                        created_at: c.created_at,
                        updated_at: c.updated_at,
                        archived_at: c.archived_at,
                        metadata: c.metadata,
                    }),
                )?;
                done.conversations += 1;
                each_tree_page(store, id, PAGE, |page| {
                    for stored in page {
                        let record = MessageRecord {
                            message: stored.message,
                            on_current_branch: Some(stored.on_path),
                        };
                        write_record(out, &Record::Message(record))?;
                        done.messages += 1;
                    }
                    Ok(())
                })?;
                progress(progress_now(done));
            }
            Ok(())
        },
    )?;
    out.flush().map_err(output_error)?;
    Ok(TransferReport {
        written: done,
        skipped: Counts::default(),
    })
}

impl Store {
    /// Writes every record to `out` as JSON Lines, a page at a time: one
    /// record per line, a versioned header first. It round-trips a whole
    /// store exactly.
    ///
    /// ```text
    /// {"kind":"header","format":"silmari-store","version":2}
    /// {"kind":"file","id":"…","filename":"notes.md","content_type":"text/markdown","size":42,"created_at":"…"}
    /// {"kind":"conversation","id":"…","title":"Plot","created_at":"…","updated_at":"…","archived_at":null,"metadata":{}}
    /// {"kind":"message","id":"…","conversation_id":"…","role":"user","content":"…","created_at":"…","attachments":[],"parent_id":null,"metadata":{},"on_current_branch":true}
    /// ```
    ///
    /// A conversation's messages follow it, every branch, in the order they
    /// were written (a parent before its children). Files of version 1
    /// (before branches) still import: each conversation's messages become
    /// one branch. When `out` fails,
    /// the export stops with [`Error::Io`] (its path reads `(export output)`).
    pub fn export_jsonl(
        &self,
        mut out: impl Write,
        progress: impl FnMut(Progress),
    ) -> Result<TransferReport> {
        export(self, &mut out, progress)
    }

    /// Reads a JSON Lines export ([`export_jsonl`](Store::export_jsonl)) into this store in one
    /// transaction, checking every record with the API's rules. A file with
    /// a bad record writes nothing and fails with [`Error::Import`] naming
    /// the line. A store that holds data is refused unless `options.merge`.
    /// A line longer than
    /// [`MAX_IMPORT_LINE_BYTES`](crate::limits::MAX_IMPORT_LINE_BYTES) is
    /// refused the same way, having read no more of it than that.
    pub fn import_jsonl(
        &self,
        input: impl BufRead,
        options: TransferOptions,
        progress: impl FnMut(Progress),
    ) -> Result<TransferReport> {
        import::import(self, input, options, progress)
    }
}
