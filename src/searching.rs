//! Full-text search: [`Store::search`].
//!
//! The query is parsed here, once. The backend's index hands over the texts
//! worth checking, newest first; each is then checked and scored in Rust
//! ([`matching`](crate::search::matching)), so a hit is a hit on every
//! backend alike.

use uuid::Uuid;

use crate::backend::search::{AdmittedCount, Candidate, SearchFilter, TextKind};
use crate::backend::{Branches, Session, TimeKey};
use crate::error::{Error, Result};
use crate::limits::{RELEVANCE_WINDOW, SEARCH_EXAMINED};
use crate::model::{
    CursorKey, HitConversation, HitMessage, MessageId, Page, SearchBranches, SearchHit,
    SearchOrder, SearchQuery, Snippet, bound_micros, from_micros,
};
use crate::search::matching::{Matched, TITLE_WEIGHT, matches, snippet};
use crate::search::query::{ParsedQuery, parse};
use crate::store::Store;
use crate::validate::page_limit;

/// A hit's place in the newest-first order: (created_at, id, kind), descending.
type Key = (i64, Uuid, TextKind);

/// Candidates fetched per backend call, first and at most.
const FIRST_BATCH: usize = 32;
const MAX_BATCH: usize = 1_000;

impl Store {
    /// Searches message contents and conversation titles.
    ///
    /// The query language (see the README): words, all of which must be in
    /// a text; `"quoted phrases"`; `prefix*` (at least 2 characters);
    /// `-excluded` terms. Matching ignores case, diacritics and punctuation;
    /// CJK text is matched by substring. A query with nothing to search for
    /// is [`Error::InvalidInput`] naming `query`; no query string ever
    /// reaches a database's own query syntax.
    ///
    /// Hits come newest first, or by relevance (the best among the
    /// [`RELEVANCE_WINDOW`] newest hits), keyset-paged: pass the page's
    /// `next` cursor back with the same query for the next page. A page
    /// checks at most [`SEARCH_EXAMINED`] of the texts the index proposes
    /// (a phrase of common words, say): newest first, a page that stops
    /// there holds fewer hits and its `next` goes on from where it stopped;
    /// by relevance, the window is the hits among those texts.
    ///
    /// ```
    /// use silmari_store::prelude::*;
    /// use silmari_store::SearchQuery;
    ///
    /// # fn main() -> silmari_store::Result<()> {
    /// let store = Store::open("memory://")?;
    /// let c = store.conversations().create(NewConversation::titled("Trip"))?;
    /// store.conversations().append_message(c.id, NewMessage::new(Role::User, "Un café à Tōkyō?"))?;
    ///
    /// let page = store.search(&SearchQuery::new("cafe tokyo").newest_first())?;
    /// let hit = &page.items[0];
    /// let snippet = &hit.snippet;
    /// assert_eq!(&snippet.text[snippet.highlights[0].clone()], "café");
    /// assert_eq!(&snippet.text[snippet.highlights[1].clone()], "Tōkyō");
    /// # Ok(()) }
    /// ```
    pub fn search(&self, query: &SearchQuery) -> Result<Page<SearchHit>> {
        let limit = page_limit(query.page.limit)?;
        let parsed = parse(&query.text)?;
        let cursor = query.page.after.as_ref().map(|c| c.0);
        match (query.order, cursor) {
            (_, None)
            | (SearchOrder::NewestFirst, Some(CursorKey::SearchNewest(..)))
            | (SearchOrder::Relevance, Some(CursorKey::SearchRelevance(..))) => {}
            _ => {
                return Err(Error::invalid(
                    "cursor",
                    "it belongs to a different list (not a search in this order)",
                ));
            }
        }
        let mut index = parsed.index_query();
        if !self.indexes_word_pairs() {
            index.pairs.clear();
        }
        let admitted = AdmittedCount::default();
        let filter = SearchFilter {
            index: &index,
            conversation: query.conversation,
            role: query.role,
            since: query.since.map(bound_micros),
            until: query.until.map(bound_micros),
            archived: query.archived,
            branches: match query.branches {
                SearchBranches::Current => Branches::Current,
                SearchBranches::All => Branches::All,
            },
            admitted: &admitted,
        };
        self.run_read(|session| {
            admitted.forget();
            // One snapshot for every call of the search.
            let mut out = None;
            session.in_snapshot(&mut || {
                out = Some(run(session, &filter, &parsed, limit, cursor, query.order)?);
                Ok(())
            })?;
            out.ok_or_else(|| Error::Backend("internal error: a search read nothing".into()))
        })
    }
}

fn run(
    session: &dyn Session,
    filter: &SearchFilter<'_>,
    parsed: &ParsedQuery,
    limit: usize,
    cursor: Option<CursorKey>,
    order: SearchOrder,
) -> Result<Page<SearchHit>> {
    match cursor {
        Some(CursorKey::SearchRelevance(score, t, id, kind)) => relevance(
            session,
            filter,
            parsed,
            limit,
            Some((score, (t, id, kind_of(kind)))),
        ),
        None if order == SearchOrder::Relevance => relevance(session, filter, parsed, limit, None),
        Some(CursorKey::SearchNewest(t, id, kind)) => {
            newest(session, filter, parsed, limit, Some((t, id, kind_of(kind))))
        }
        _ => newest(session, filter, parsed, limit, None),
    }
}

fn kind_of(kind: u8) -> TextKind {
    if kind == TextKind::Title as u8 {
        TextKind::Title
    } else {
        TextKind::Message
    }
}

/// A checked hit with its score in millionths (the cursor's unit).
struct Found {
    candidate: Candidate,
    matched: Matched,
    score: i64,
}

/// The hits found among the candidates examined, and where the examining
/// stopped when it reached [`SEARCH_EXAMINED`] before the hits wanted.
struct Collected {
    found: Vec<Found>,
    stopped_at: Option<Key>,
}

/// The first `want` hits, newest first, after `after`, among at most
/// [`SEARCH_EXAMINED`] candidates (the same ones on every backend: the
/// texts the index admits, newest first).
fn collect_newest(
    session: &dyn Session,
    filter: &SearchFilter<'_>,
    parsed: &ParsedQuery,
    want: usize,
    after: Option<Key>,
) -> Result<Collected> {
    let titles = filter.role.is_none();
    // A title sorts before a message with the same (created_at, id): after a
    // title, that message is still to come; after a message, that title is not.
    let mut before_message: Option<TimeKey> = after.map(|(t, id, kind)| match kind {
        TextKind::Title => (t, Uuid::from_u128(id.as_u128().saturating_add(1))),
        TextKind::Message => (t, id),
    });
    let mut before_title: Option<TimeKey> = after.map(|(t, id, _)| (t, id));
    let mut found = Vec::new();
    let mut examined = 0;
    let mut batch = FIRST_BATCH.max(want.min(MAX_BATCH));
    loop {
        let messages =
            session.search_candidates(TextKind::Message, filter, before_message, batch)?;
        let title_list = if titles {
            session.search_candidates(TextKind::Title, filter, before_title, batch)?
        } else {
            Vec::new()
        };
        let exhausted = messages.len() < batch && title_list.len() < batch;
        let mut merged: Vec<Candidate> = messages.into_iter().chain(title_list).collect();
        merged.sort_unstable_by_key(|c| std::cmp::Reverse(c.key()));
        // The first `batch` of both lists are the next `batch` of the whole.
        let complete = exhausted && merged.len() <= batch;
        merged.truncate(batch);
        for candidate in merged {
            let bound = Some((candidate.created_at, candidate.id));
            match candidate.kind {
                TextKind::Message => before_message = bound,
                TextKind::Title => before_title = bound,
            }
            examined += 1;
            let key = candidate.key();
            let Some(mut matched) = matches(parsed, &candidate.text) else {
                if examined == SEARCH_EXAMINED {
                    return Ok(Collected {
                        found,
                        stopped_at: Some(key),
                    });
                }
                continue;
            };
            if candidate.kind == TextKind::Title {
                matched.score *= TITLE_WEIGHT;
            }
            let score = (matched.score * 1e6).round() as i64;
            found.push(Found {
                candidate,
                matched,
                score,
            });
            if found.len() == want {
                return Ok(Collected {
                    found,
                    stopped_at: None,
                });
            }
            if examined == SEARCH_EXAMINED {
                return Ok(Collected {
                    found,
                    stopped_at: Some(key),
                });
            }
        }
        if complete {
            return Ok(Collected {
                found,
                stopped_at: None,
            });
        }
        batch = next_batch(want - found.len(), found.len(), examined, batch);
    }
}

/// How many candidates to ask for after a batch of `last`: enough, at the
/// rate of hits among the candidates examined so far, for the hits still
/// wanted and a quarter more, and never less than four times `last` (a
/// search whose hits came early and whose tail holds none would otherwise
/// ask a few at a time, a call each), at most [`MAX_BATCH`]. A backend
/// walks about as many texts as the batch asks of it, so asking for more
/// than needed (a phrase of common words: ten candidates for each hit)
/// reads texts for nothing, and asking for fewer costs another call.
fn next_batch(wanted: usize, found: usize, examined: usize, last: usize) -> usize {
    // One more of each: a batch without a hit yet grows (to MAX_BATCH).
    let per_hit = (examined + 1) as f64 / (found + 1) as f64;
    let next = (wanted as f64 * per_hit * 1.25).ceil();
    let by_rate = if next >= MAX_BATCH as f64 {
        MAX_BATCH
    } else {
        next as usize
    };
    by_rate.max(last.saturating_mul(4)).min(MAX_BATCH)
}

fn newest(
    session: &dyn Session,
    filter: &SearchFilter<'_>,
    parsed: &ParsedQuery,
    limit: usize,
    after: Option<Key>,
) -> Result<Page<SearchHit>> {
    let Collected { found, stopped_at } =
        collect_newest(session, filter, parsed, limit + 1, after)?;
    let mut page = page(found, limit, |f| {
        let (t, id, kind) = f.candidate.key();
        CursorKey::SearchNewest(t, id, kind as u8)
    })?;
    // Stopped early: the next page goes on from the last text examined.
    if let (None, Some((t, id, kind))) = (&page.next, stopped_at) {
        page.next = Some(crate::model::Cursor(CursorKey::SearchNewest(
            t, id, kind as u8,
        )));
    }
    Ok(page)
}

fn relevance(
    session: &dyn Session,
    filter: &SearchFilter<'_>,
    parsed: &ParsedQuery,
    limit: usize,
    after: Option<(i64, Key)>,
) -> Result<Page<SearchHit>> {
    let mut found = collect_newest(session, filter, parsed, RELEVANCE_WINDOW, None)?.found;
    found.sort_unstable_by_key(|f| std::cmp::Reverse((f.score, f.candidate.key())));
    if let Some(after) = after {
        found.retain(|f| (f.score, f.candidate.key()) < after);
    }
    found.truncate(limit + 1);
    page(found, limit, |f| {
        let (t, id, kind) = f.candidate.key();
        CursorKey::SearchRelevance(f.score, t, id, kind as u8)
    })
}

/// The page of the first `limit` of `found` (fetched with one more).
fn page(
    mut found: Vec<Found>,
    limit: usize,
    key: impl Fn(&Found) -> CursorKey,
) -> Result<Page<SearchHit>> {
    let next = if found.len() > limit {
        found.truncate(limit);
        found.last().map(|f| crate::model::Cursor(key(f)))
    } else {
        None
    };
    let items = found.into_iter().map(hit).collect::<Result<_>>()?;
    Ok(Page { items, next })
}

fn hit(found: Found) -> Result<SearchHit> {
    let Found {
        candidate: c,
        matched,
        score,
    } = found;
    let message = match (c.kind, c.role) {
        (TextKind::Message, Some(role)) => Some(HitMessage {
            id: MessageId::from(c.id),
            role,
            created_at: from_micros(c.created_at)
                .ok_or_else(|| Error::corrupt("messages", "created_at", "out of range"))?,
        }),
        _ => None,
    };
    let (offset, text, highlights) = snippet(&c.text, &matched.ranges);
    Ok(SearchHit {
        conversation: HitConversation {
            id: c.conversation_id,
            title: c.conversation_title,
        },
        message,
        snippet: Snippet {
            truncated: offset + text.len() < c.text.len(),
            text,
            offset,
            highlights,
        },
        score: score as f64 / 1e6,
    })
}

#[cfg(test)]
mod tests {
    use super::{FIRST_BATCH, MAX_BATCH, next_batch};

    #[test]
    fn a_batch_asks_for_what_the_hit_rate_says_is_needed() {
        // One hit in ten candidates, 18 hits wanted: 18 × 10 × 1.25.
        assert_eq!(next_batch(18, 3, 39, FIRST_BATCH), 225);
        // Every candidate a hit: four times the last batch.
        assert_eq!(next_batch(5, 30, 30, FIRST_BATCH), 4 * FIRST_BATCH);
        // No hit yet, or few: as many as a call may ask.
        assert_eq!(next_batch(21, 0, 32, FIRST_BATCH), 867);
        assert_eq!(next_batch(21, 0, 1_000, 1_000), MAX_BATCH);
        assert_eq!(next_batch(usize::MAX, 0, usize::MAX - 1, 1), MAX_BATCH);
        assert_eq!(next_batch(1_000, 1, 20_000, MAX_BATCH), MAX_BATCH);
        // Hits early, a tail without: the batch still grows four times.
        assert_eq!(next_batch(1, 999, 1_000, 32), 128);
        assert_eq!(next_batch(1, 999, 1_128, 128), 512);
        assert_eq!(next_batch(1, 999, 1_640, 512), MAX_BATCH);
    }
}
