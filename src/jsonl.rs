//! The JSON Lines export format ([`Store::export_jsonl`] and
//! [`Store::import_jsonl`]): one record per line, a versioned header first.
//! Import checks every
//! record with the same rules as the API and writes the whole file in one
//! transaction: a file with a bad record writes nothing, and the error names
//! its line.

use std::collections::HashSet;
use std::io::{BufRead, Read, Write};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::limits::MAX_IMPORT_LINE_BYTES;

use crate::model::{
    ConversationId, Counts, FileMetadata, Message, NewConversation, NewFile, NewMessage,
};
use crate::repo::{ConversationRepository, FileRepository};
use crate::store::Store;
use crate::transfer::{
    Progress, TransferOptions, TransferReport, by_creation, each_page, ensure_empty,
    insert_conversation,
};
use crate::validate;

/// The `format` of the header line.
pub(crate) const FORMAT: &str = "silmari-store";
/// The newest format version this build writes and reads.
pub(crate) const VERSION: u32 = 1;

/// One line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Record {
    Header { format: String, version: u32 },
    File(FileMetadata),
    Conversation(ConversationRecord),
    Message(Message),
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
                    }),
                )?;
                done.conversations += 1;
                each_page(
                    PAGE,
                    |page| store.conversations().messages(id, page),
                    |messages| {
                        for m in messages {
                            write_record(out, &Record::Message(m))?;
                            done.messages += 1;
                        }
                        Ok(())
                    },
                )?;
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
        let mut report = TransferReport::default();
        let mut seen: HashSet<ConversationId> = HashSet::new();
        let mut skipping: HashSet<ConversationId> = HashSet::new();
        // Messages of one conversation waiting to be written, with their lines.
        let mut pending: Vec<(u64, Message)> = Vec::new();
        let mut header_seen = false;
        let flush =
            |pending: &mut Vec<(u64, Message)>, report: &mut TransferReport| -> Result<()> {
                let Some((first_line, first)) = pending.first() else {
                    return Ok(());
                };
                let messages: Vec<Message> = pending.iter().map(|(_, m)| m.clone()).collect();
                if let Err(e) = session.append_messages(first.conversation_id, &messages, None) {
                    // Name the line of the message the error is about.
                    let line = match &e {
                        Error::Conflict { id, .. } => pending
                            .iter()
                            .find(|(_, m)| m.id.to_string() == *id)
                            .map_or(*first_line, |(line, _)| *line),
                        _ => *first_line,
                    };
                    return Err(Error::Import {
                        line,
                        reason: e.to_string(),
                    });
                }
                report.written.messages += pending.len() as u64;
                pending.clear();
                Ok(())
            };
        let mut lines = Lines {
            input,
            number: 0,
            buffer: Vec::new(),
        };
        while let Some((number, line)) = lines.next_line() {
            let at = |e: Error| match e {
                Error::Import { .. } => e,
                other => Error::Import {
                    line: number,
                    reason: other.to_string(),
                },
            };
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let record: Record = serde_json::from_str(&line).map_err(|e| Error::Import {
                line: number,
                reason: e.to_string(),
            })?;
            let record = match (header_seen, record) {
                (false, Record::Header { format, version }) => {
                    if format != FORMAT || version == 0 || version > VERSION {
                        return Err(Error::Import {
                            line: number,
                            reason: format!(
                                "a {format:?} file of version {version}; this build reads \
                                 {FORMAT:?} up to version {VERSION}"
                            ),
                        });
                    }
                    header_seen = true;
                    continue;
                }
                (false, _) => {
                    return Err(Error::Import {
                        line: number,
                        reason: "the first line must be the header".to_owned(),
                    });
                }
                (true, Record::Header { .. }) => {
                    return Err(Error::Import {
                        line: number,
                        reason: "a second header".to_owned(),
                    });
                }
                (true, record) => record,
            };
            match record {
                Record::Header { .. } => {}
                Record::File(file) => {
                    flush(&mut pending, &mut report)?;
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
                    if options.merge && session.file(file.id).map_err(at)?.is_some() {
                        report.skipped.files += 1;
                    } else {
                        session.insert_file(&file).map_err(at)?;
                        report.written.files += 1;
                    }
                }
                Record::Conversation(c) => {
                    flush(&mut pending, &mut report)?;
                    let mut header = validate::new_conversation(
                        NewConversation {
                            id: Some(c.id),
                            title: c.title,
                            created_at: Some(c.created_at),
                        },
                        c.created_at,
                    )
                    .map_err(at)?;
                    header.updated_at =
                        validate::timestamp("updated_at", c.updated_at).map_err(at)?;
                    if !seen.insert(header.id) {
                        return Err(at(Error::invalid(
                            "id",
                            "this conversation appeared before",
                        )));
                    }
                    if insert_conversation(session, &header, options.merge).map_err(at)? {
                        report.written.conversations += 1;
                    } else {
                        skipping.insert(header.id);
                        report.skipped.conversations += 1;
                    }
                }
                Record::Message(m) => {
                    if !seen.contains(&m.conversation_id) {
                        return Err(at(Error::invalid(
                            "conversation_id",
                            format!(
                                "conversation {} has not appeared before it",
                                m.conversation_id
                            ),
                        )));
                    }
                    let message = validate::new_message(
                        m.conversation_id,
                        NewMessage {
                            id: Some(m.id),
                            role: m.role,
                            content: m.content,
                            attachments: m.attachments,
                            created_at: Some(m.created_at),
                        },
                        m.created_at,
                    )
                    .map_err(at)?;
                    if skipping.contains(&message.conversation_id) {
                        report.skipped.messages += 1;
                        continue;
                    }
                    if pending
                        .first()
                        .is_some_and(|(_, p)| p.conversation_id != message.conversation_id)
                        || pending.len() >= batch
                    {
                        flush(&mut pending, &mut report)?;
                    }
                    pending.push((number, message));
                }
            }
            if number.is_multiple_of(1000) {
                progress(Progress {
                    done: report.written,
                    total: None,
                });
            }
        }
        if !header_seen {
            return Err(Error::Import {
                line: 1,
                reason: "the file is empty: no header".to_owned(),
            });
        }
        flush(&mut pending, &mut report)?;
        progress(Progress {
            done: report.written,
            total: None,
        });
        Ok(report)
    })
}

/// The lines of an import, each read to at most [`MAX_IMPORT_LINE_BYTES`]
/// (plus its newline): `BufRead::lines` would grow a line without end.
struct Lines<R> {
    input: R,
    /// The number of the last line read (1-based).
    number: u64,
    buffer: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    /// The next line's number and text (without its `\n` or `\r\n`);
    /// `None` at the end of the input.
    fn next_line(&mut self) -> Option<(u64, Result<String>)> {
        self.buffer.clear();
        let limit = MAX_IMPORT_LINE_BYTES as u64 + 2;
        let read = (&mut self.input)
            .take(limit)
            .read_until(b'\n', &mut self.buffer);
        let number = self.number + 1;
        let refuse = |reason: String| {
            Some((
                number,
                Err(Error::Import {
                    line: number,
                    reason,
                }),
            ))
        };
        match read {
            Ok(0) => return None,
            Ok(_) => self.number = number,
            Err(e) => return refuse(format!("cannot read the line: {e}")),
        }
        if self.buffer.last() == Some(&b'\n') {
            self.buffer.pop();
            if self.buffer.last() == Some(&b'\r') {
                self.buffer.pop();
            }
        }
        if self.buffer.len() > MAX_IMPORT_LINE_BYTES {
            return refuse(format!(
                "the line is longer than {MAX_IMPORT_LINE_BYTES} bytes (the longest a record \
                 can be); nothing was read past that"
            ));
        }
        match String::from_utf8(std::mem::take(&mut self.buffer)) {
            Ok(line) => Some((number, Ok(line))),
            Err(e) => refuse(format!("cannot read the line: it is not UTF-8 ({e})")),
        }
    }
}

impl Store {
    /// Writes every record to `out` as JSON Lines, a page at a time: one
    /// record per line, a versioned header first. It round-trips a whole
    /// store exactly.
    ///
    /// ```text
    /// {"kind":"header","format":"silmari-store","version":1}
    /// {"kind":"file","id":"…","filename":"notes.md","content_type":"text/markdown","size":42,"created_at":"…"}
    /// {"kind":"conversation","id":"…","title":"Plot","created_at":"…","updated_at":"…"}
    /// {"kind":"message","id":"…","conversation_id":"…","role":"user","content":"…","created_at":"…","attachments":[]}
    /// ```
    ///
    /// A conversation's messages follow it, in order. When `out` fails,
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
        import(self, input, options, progress)
    }
}
