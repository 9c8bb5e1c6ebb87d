//! `silmari search`: hits newest first (or best first), one line each:
//! time, role (or `title`), conversation, and the snippet with the matched
//! words between `**`; or the page as JSON.

use std::io::Write;

use silmari_store::{ConversationId, Role, SearchQuery, Store};
use time::format_description::well_known::Rfc3339;

use crate::browse::{escaped as escape, stdout};

/// What `silmari search` was asked.
pub struct SearchOptions {
    pub conversation: Option<ConversationId>,
    pub role: Option<Role>,
    pub best_first: bool,
    pub all_branches: bool,
    pub include_archived: bool,
    pub limit: u32,
    pub json: bool,
}

pub fn search(
    store: &Store,
    text: &str,
    options: &SearchOptions,
    out: &mut impl Write,
) -> silmari_store::Result<()> {
    let mut query = SearchQuery::new(text).limit(options.limit);
    if !options.best_first {
        query = query.newest_first();
    }
    if let Some(id) = options.conversation {
        query = query.in_conversation(id);
    }
    if let Some(role) = options.role {
        query = query.role(role);
    }
    if options.all_branches {
        query = query.all_branches();
    }
    if options.include_archived {
        query = query.archived(silmari_store::Archived::Include);
    }
    let page = store.search(&query)?;
    if options.json {
        let text = serde_json::to_string_pretty(&page)
            .map_err(|e| silmari_store::Error::Backend(Box::new(e)))?;
        return writeln!(out, "{text}").map_err(stdout);
    }
    for hit in &page.items {
        let (when, who) = match &hit.message {
            Some(m) => (
                m.created_at.format(&Rfc3339).unwrap_or_default(),
                m.role.as_str(),
            ),
            None => (String::new(), "title"),
        };
        let s = &hit.snippet;
        let mut marked = String::new();
        let mut at = 0;
        for range in &s.highlights {
            marked.push_str(&escape(&s.text[at..range.start]));
            marked.push_str("**");
            marked.push_str(&escape(&s.text[range.clone()]));
            marked.push_str("**");
            at = range.end;
        }
        marked.push_str(&escape(&s.text[at..]));
        let (lead, tail) = (
            if s.offset > 0 { "…" } else { "" },
            if s.truncated { "…" } else { "" },
        );
        writeln!(
            out,
            "{when:<27} {who:<9} {} {:?}  {lead}{marked}{tail}",
            hit.conversation.id,
            escape(&hit.conversation.title)
        )
        .map_err(stdout)?;
    }
    if page.items.is_empty() {
        writeln!(out, "no hits").map_err(stdout)?;
    } else if page.next.is_some() {
        writeln!(out, "(more: raise --limit)").map_err(stdout)?;
    }
    Ok(())
}
