//! Search candidates in memory: every text is tokenized as the SQL backends'
//! indexes are, and kept when its tokens meet the index condition (a scan:
//! this backend is for tests and small stores).

use super::State;
use crate::backend::search::{Candidate, SearchFilter, TextKind};
use crate::backend::{Branches, TimeKey};
use crate::model::to_micros;

impl State {
    /// [`Session::search_candidates`](crate::backend::Session::search_candidates).
    pub(super) fn search_candidates(
        &self,
        kind: TextKind,
        filter: &SearchFilter<'_>,
        before: Option<TimeKey>,
        limit: usize,
    ) -> Vec<Candidate> {
        let admitted = |created_at: i64, id: uuid::Uuid, text: &str| {
            filter.admits_time(created_at)
                && before.is_none_or(|b| (created_at, id) < b)
                && filter.index.admits(text)
        };
        let mut found = Vec::new();
        for (id, entry) in &self.conversations {
            let header = &entry.header;
            if filter.conversation.is_some_and(|c| c != *id)
                || !filter.admits_archived(header.archived_at.is_some())
            {
                continue;
            }
            let candidate = |kind, created_at, id, role, text: &str| Candidate {
                kind,
                created_at,
                id,
                conversation_id: header.id,
                conversation_title: header.title.clone(),
                role,
                text: text.to_owned(),
            };
            if kind == TextKind::Title {
                let created_at = to_micros(header.created_at);
                if admitted(created_at, header.id.into(), &header.title) {
                    found.push(candidate(
                        kind,
                        created_at,
                        header.id.into(),
                        None,
                        &header.title,
                    ));
                }
                continue;
            }
            for slot in entry.messages.values() {
                let m = &slot.message;
                if (filter.branches == Branches::Current && !slot.on_path)
                    || filter.role.is_some_and(|r| r != m.role)
                {
                    continue;
                }
                let created_at = to_micros(m.created_at);
                if admitted(created_at, m.id.into(), &m.content) {
                    found.push(candidate(
                        kind,
                        created_at,
                        m.id.into(),
                        Some(m.role),
                        &m.content,
                    ));
                }
            }
        }
        found.sort_unstable_by_key(|c| std::cmp::Reverse(c.key()));
        found.truncate(limit);
        found
    }
}
