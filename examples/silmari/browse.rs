//! `list` and `show`: conversations as a table, one conversation as its
//! message tree.
//!
//! Stored text is printed with its control characters escaped (`\n`,
//! `\u{1b}`), so a message can neither break a line of the output nor send
//! escape sequences to the terminal.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use silmari_store::limits::MAX_PAGE_SIZE;
use silmari_store::{
    Archived, ConversationId, ConversationQuery, ConversationRepository, ConversationTree, Entity,
    Error, Message, MessageId, Metadata, Result, Store,
};
use time::OffsetDateTime;
use time::macros::format_description;

/// How `list` reads: which conversations, how many.
pub struct ListOptions {
    /// Archived, not archived, or both.
    pub archived: Archived,
    /// Most rows to print; `None` for all.
    pub limit: Option<u64>,
}

/// How `show` prints messages.
pub struct ShowOptions {
    /// Each message's id before it.
    pub ids: bool,
    /// Whole texts and metadata instead of one short line each.
    pub full: bool,
}

/// Most characters of a message's text (and of its metadata) on its line,
/// unless `--full`.
const SHORT: usize = 72;

/// Conversations, most recently updated first, one row each: id, last update,
/// messages on every branch, branches (leaves of the tree), `active` or
/// `archived`, title. Counting branches reads each listed conversation's
/// tree (one query per row).
pub fn list(store: &Store, options: &ListOptions, out: &mut impl Write) -> Result<()> {
    let conversations = store.conversations();
    let mut left = options.limit.unwrap_or(u64::MAX);
    let page_size = |left: u64| u32::try_from(left.min(u64::from(MAX_PAGE_SIZE))).unwrap_or(1);
    let mut query = ConversationQuery {
        archived: options.archived,
        ..ConversationQuery::recent(page_size(left).max(1))
    };
    let (mut listed, mut archived) = (0u64, 0u64);
    let mut more = false;
    writeln!(
        out,
        "{:<36}  {:<19}  {:>8}  {:>8}  {:<8}  TITLE",
        "ID", "UPDATED (UTC)", "MESSAGES", "BRANCHES", "STATUS"
    )
    .map_err(stdout)?;
    while left > 0 {
        query.page.limit = page_size(left);
        let page = conversations.list(query.clone())?;
        for summary in &page.items {
            let branches = match conversations.tree(summary.id)? {
                Some(tree) => leaves(&tree).to_string(),
                None => "-".to_owned(), // deleted since the page was read
            };
            let status = if summary.archived_at.is_some() {
                archived += 1;
                "archived"
            } else {
                "active"
            };
            writeln!(
                out,
                "{:<36}  {:<19}  {:>8}  {:>8}  {status:<8}  {}",
                summary.id,
                when(summary.updated_at),
                summary.message_count,
                branches,
                title(&summary.title),
            )
            .map_err(stdout)?;
        }
        listed += page.items.len() as u64;
        left -= page.items.len() as u64;
        match page.next {
            Some(cursor) if left > 0 => query = query.after(cursor),
            Some(_) => more = true,
            None => break,
        }
    }
    let of_them = match options.archived {
        Archived::Include => format!(", {archived} of them archived"),
        _ => String::new(),
    };
    let more = if more {
        "; more not listed (--limit N, --all)"
    } else {
        ""
    };
    let listed = counted(listed, "conversation", "conversations");
    writeln!(out, "{listed}{of_them}{more}").map_err(stdout)
}

/// One conversation: its fields, then every message of every branch as a
/// tree. A message's alternatives (siblings) are numbered `[i/n]`, oldest
/// first, and indented below their parent; a message without alternatives
/// lines up with its parent, so a conversation that never branched prints
/// flat, and a long one does not drift to the right. `*` marks the current
/// branch.
pub fn show(
    store: &Store,
    id: ConversationId,
    options: &ShowOptions,
    out: &mut impl Write,
) -> Result<()> {
    let tree = store
        .conversations()
        .tree(id)?
        .ok_or_else(|| Error::NotFound {
            entity: Entity::Conversation,
            id: id.to_string(),
        })?;
    let c = &tree.conversation;
    let current: HashSet<MessageId> = tree.current_path().iter().map(|m| m.id).collect();
    let archived = c
        .archived_at
        .map_or_else(|| "no".to_owned(), |at| format!("{} UTC", when(at)));
    let mut lines = vec![
        format!("conversation {}", c.id),
        format!("title        {}", title(&c.title)),
        format!("created      {} UTC", when(c.created_at)),
        format!("updated      {} UTC", when(c.updated_at)),
        format!("archived     {archived}"),
        format!("metadata     {}", metadata(&c.metadata, true)),
        format!(
            "messages     {} on {}, {} on the current one",
            c.message_count,
            counted(leaves(&tree) as u64, "branch", "branches"),
            current.len()
        ),
    ];
    if !tree.messages.is_empty() {
        lines.push(String::new());
    }
    let children = children(&tree);
    let mut shown = 0;
    // Depth first, oldest child first; a stack, as a tree may be deep. Each
    // entry holds the message and its indentation in characters.
    let mut stack: Vec<(&Message, usize)> = Vec::new();
    let push = |stack: &mut Vec<_>, parent: Option<MessageId>, column: usize| {
        let kids = children.get(&parent).map_or(&[][..], Vec::as_slice);
        let indent = if kids.len() > 1 { column + 2 } else { column };
        stack.extend(kids.iter().rev().map(|m| (*m, indent)));
    };
    push(&mut stack, None, 0);
    while let Some((m, indent)) = stack.pop() {
        shown += 1;
        let siblings = &children[&m.parent_id];
        let alternative = match siblings.iter().position(|s| s.id == m.id) {
            Some(i) if siblings.len() > 1 => format!("[{}/{}] ", i + 1, siblings.len()),
            _ => String::new(),
        };
        let mark = if current.contains(&m.id) { '*' } else { ' ' };
        let id = if options.ids {
            format!("{} ", m.id)
        } else {
            String::new()
        };
        lines.push(format!(
            "{mark} {id}{:indent$}{alternative}{}",
            "",
            message(m, options.full),
        ));
        // What follows this message lines up with its role, after the label.
        push(&mut stack, Some(m.id), indent + alternative.chars().count());
    }
    if shown < tree.messages.len() {
        lines.push(format!(
            "({} messages not below any first message: the tree is damaged; \
             run `silmari check`)",
            tree.messages.len() - shown
        ));
    }
    for line in lines {
        writeln!(out, "{line}").map_err(stdout)?;
    }
    Ok(())
}

/// Each message's children, oldest first, by parent (`None`: the first
/// messages).
fn children(tree: &ConversationTree) -> HashMap<Option<MessageId>, Vec<&Message>> {
    let mut children: HashMap<Option<MessageId>, Vec<&Message>> = HashMap::new();
    for m in &tree.messages {
        children.entry(m.parent_id).or_default().push(m);
    }
    children
}

/// How many branches the tree holds: its messages without children.
fn leaves(tree: &ConversationTree) -> usize {
    let parents: HashSet<MessageId> = tree.messages.iter().filter_map(|m| m.parent_id).collect();
    tree.messages
        .iter()
        .filter(|m| !parents.contains(&m.id))
        .count()
}

/// One message's line after its marks: role, text, attachments, metadata.
fn message(m: &Message, full: bool) -> String {
    let mut line = format!("{:<9}  {}", m.role, shorten(&escaped(&m.content), full));
    match m.attachments.len() {
        0 => {}
        1 => line.push_str("  (1 attachment)"),
        n => line.push_str(&format!("  ({n} attachments)")),
    }
    if !m.metadata.is_empty() {
        line.push_str("  ");
        line.push_str(&metadata(&m.metadata, full));
    }
    line
}

/// Metadata as one line of JSON, shortened unless `full`.
fn metadata(metadata: &Metadata, full: bool) -> String {
    let json = serde_json::to_string(metadata).unwrap_or_else(|e| format!("({e})"));
    shorten(&escaped(&json), full)
}

/// `n` and the noun for it.
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn title(title: &str) -> String {
    if title.is_empty() {
        "(untitled)".to_owned()
    } else {
        escaped(title)
    }
}

/// `text` with every control character escaped.
pub fn escaped(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// At most [`SHORT`] characters of `text`, unless `full`.
fn shorten(text: &str, full: bool) -> String {
    match text.char_indices().nth(SHORT) {
        Some((end, _)) if !full => format!("{}…", &text[..end]),
        _ => text.to_owned(),
    }
}

/// A timestamp to the second, in UTC.
fn when(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap_or_default()
}

/// An error writing to standard output.
pub fn stdout(source: io::Error) -> Error {
    Error::Io {
        path: "(standard output)".into(),
        source,
    }
}
