//! Documented limits on inputs. Inputs beyond them are refused with
//! [`Error::InvalidInput`](crate::Error::InvalidInput) before anything is written.

/// Longest conversation title, in bytes of UTF-8.
pub const MAX_TITLE_BYTES: usize = 4 * 1024;
/// Longest message content, in bytes of UTF-8.
pub const MAX_CONTENT_BYTES: usize = 16 * 1024 * 1024;
/// Longest file name, in bytes of UTF-8.
pub const MAX_FILENAME_BYTES: usize = 1024;
/// Longest content type, in bytes.
pub const MAX_CONTENT_TYPE_BYTES: usize = 255;
/// Most attachments on one message.
pub const MAX_ATTACHMENTS: usize = 256;
/// Largest [`Metadata`](crate::Metadata) object, in bytes of compact JSON.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;
/// Deepest nesting of a [`Metadata`](crate::Metadata) object (the object
/// itself is level 1).
pub const MAX_METADATA_DEPTH: usize = 32;
/// Most items in one page.
pub const MAX_PAGE_SIZE: u32 = 1_000;
/// Largest file size: what a signed 64-bit integer column holds.
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;
/// Earliest year of a timestamp the store accepts.
pub const MIN_YEAR: i32 = 1;
/// Latest year of a timestamp the store accepts (one year short of 9999, so
/// `updated_at` can always move forward).
pub const MAX_YEAR: i32 = 9998;
/// Most messages in one [`append_messages`](crate::ConversationRepository::append_messages) call.
pub const MAX_BATCH: usize = 10_000;
/// Longest line of a JSON Lines import
/// ([`import_jsonl`](crate::Store::import_jsonl)), in bytes: room for any
/// record the store accepts with every byte of its content escaped
/// (`\u0000`, six bytes for one) and its attachments besides. A longer line
/// is refused with [`Error::Import`](crate::Error::Import) after reading
/// at most this much of it, so a line that never ends cannot exhaust memory.
pub const MAX_IMPORT_LINE_BYTES: usize = 6 * MAX_CONTENT_BYTES + 8 * 1024 * 1024;
/// Longest search query, in bytes.
pub const MAX_QUERY_BYTES: usize = 1024;
/// Most terms in one search query.
pub const MAX_QUERY_TERMS: usize = 16;
/// Longest word a search index holds, in bytes: a longer word is indexed by
/// its first bytes (cut on a character boundary) and still matched in full.
pub const MAX_TOKEN_BYTES: usize = 64;
/// Most bytes of distinct index tokens kept for one message or title (each
/// counted with 4 bytes of overhead): the first ones, words before the
/// pairs that answer phrases. Words past them, in a text longer than any
/// chat message, are not found; a phrase in a text whose pairs did not all
/// fit is still found (by its words, checking more candidates).
pub const MAX_INDEX_BYTES: usize = 512 * 1024;
/// Hits ranked by [`SearchOrder::Relevance`](crate::SearchOrder::Relevance):
/// the best of this many newest hits.
pub const RELEVANCE_WINDOW: usize = 1_000;
/// Most texts one page of [`Store::search`](crate::Store::search) checks
/// of those the index proposes, newest first (the same texts on every
/// backend); a page that stops there says where the next one goes on.
pub const SEARCH_EXAMINED: usize = 20_000;
/// Bytes of text in a search hit's [`Snippet`](crate::Snippet), around its
/// first match (which is always shown whole).
pub const SNIPPET_BYTES: usize = 200;

/// Change feed events a store keeps for
/// [`Store::changes_since`](crate::Store::changes_since).
pub const KEPT_EVENTS: usize = 8192;
/// The most events one feed subscriber may hold unread
/// ([`Store::subscribe_with_capacity`](crate::Store::subscribe_with_capacity)).
pub const MAX_FEED_CAPACITY: usize = 1 << 20;
/// Changes of one transaction reported one record at a time; a
/// transaction that changes more records is reported as one
/// [`FeedEvent::Resync`](crate::FeedEvent::Resync).
pub const MAX_CHANGES_PER_TRANSACTION: usize = 50_000;
