//! What the change feed reports: which record changed, how, and in what
//! order.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ids::ConversationId;

/// The kind of record a [`Change`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeEntity {
    /// A conversation's own row: title, metadata, archive state, version.
    Conversation,
    /// One message.
    Message,
    /// Uploaded-file metadata.
    File,
}

/// What happened to the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// It was written for the first time.
    Created,
    /// It was written again. For a conversation this is any write to it or
    /// to its messages (its version moved): reload it to see what is new.
    Changed,
    /// It is gone. A deleted conversation's messages go with it and get no
    /// events of their own.
    Deleted,
    /// The conversation was archived.
    Archived,
    /// The conversation was taken out of the archive.
    Unarchived,
}

impl ChangeKind {
    /// Which of two kinds for one record in one transaction is reported:
    /// deleted over created over the archive state over changed (but see
    /// [`then`](Self::then)).
    fn rank(self) -> u8 {
        match self {
            ChangeKind::Changed => 0,
            ChangeKind::Archived | ChangeKind::Unarchived => 1,
            ChangeKind::Created => 2,
            ChangeKind::Deleted => 3,
        }
    }

    /// The kind reported for a record changed as `self`, then as `later`,
    /// in one transaction. Deleted, then created again (the same id): it is
    /// there before and after, so changed.
    pub(crate) fn then(self, later: ChangeKind) -> ChangeKind {
        if self == ChangeKind::Deleted && later == ChangeKind::Created {
            ChangeKind::Changed
        } else if later.rank() >= self.rank() {
            later
        } else {
            self
        }
    }
}

/// One committed change, as a subscriber receives it.
///
/// A transaction's changes arrive together, after it committed, one event
/// per record it wrote (a record written twice is reported once, with the
/// kind that says most: deleted, created, archived or unarchived, changed;
/// deleted and created again is changed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Position in this store's feed, in commit order: starts at 1 and goes
    /// up by one per change, by two where changes may have gone unreported
    /// (after a [`FeedEvent::Resync`], or a time with no subscriber).
    pub seq: u64,
    /// Which kind of record.
    pub entity: ChangeEntity,
    /// The record's id.
    pub id: Uuid,
    /// The conversation of a message (and a conversation's own id for a
    /// conversation); `None` for a file.
    pub conversation_id: Option<ConversationId>,
    /// What happened.
    pub kind: ChangeKind,
}

/// What a [`Subscription`](crate::Subscription) receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FeedEvent {
    /// A committed change.
    Change(Change),
    /// This subscriber fell behind and events from `missed_from` on were
    /// dropped for it; the ones after this event arrive again. Catch up with
    /// [`Store::changes_since`](crate::Store::changes_since) from the last
    /// `seq` handled (its answer includes changes that also arrive after
    /// this event: skip a `seq` already handled), or reload.
    Lagged {
        /// The first `seq` this subscriber did not receive.
        missed_from: u64,
    },
    /// Changes may have been missed without a sequence number to catch up
    /// from (the PostgreSQL listener reconnected, another process's log was
    /// trimmed before this one read it, a transaction too large to report
    /// one record at a time): reload what is shown.
    Resync,
}

/// A change recorded in a transaction, before it has a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingChange {
    pub(crate) entity: ChangeEntity,
    pub(crate) id: Uuid,
    pub(crate) conversation_id: Option<ConversationId>,
    pub(crate) kind: ChangeKind,
}

impl PendingChange {
    /// The change numbered `seq`.
    pub(crate) fn numbered(self, seq: u64) -> Change {
        Change {
            seq,
            entity: self.entity,
            id: self.id,
            conversation_id: self.conversation_id,
            kind: self.kind,
        }
    }
}

/// A committed transaction's changes, as it travels between processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChangeBatch {
    /// One event per record.
    Changes(Vec<PendingChange>),
    /// Too many to list: subscribers reload.
    Resync,
}

/// Characters of the text form: one change is `<kind><entity><id>[<conversation>]`,
/// ids as 32 lowercase hex digits, changes separated by `,`; `R` alone is
/// [`ChangeBatch::Resync`]. Nothing else, so the text can sit in a
/// PostgreSQL string literal.
const KINDS: [(ChangeKind, u8); 5] = [
    (ChangeKind::Created, b'c'),
    (ChangeKind::Changed, b'u'),
    (ChangeKind::Deleted, b'd'),
    (ChangeKind::Archived, b'a'),
    (ChangeKind::Unarchived, b'r'),
];
const ENTITIES: [(ChangeEntity, u8); 3] = [
    (ChangeEntity::Conversation, b'C'),
    (ChangeEntity::Message, b'M'),
    (ChangeEntity::File, b'F'),
];

/// The longest text of one change.
pub(crate) const ENCODED_CHANGE_MAX: usize = 2 + 32 + 32;

impl PendingChange {
    /// Appends the text form of this change to `out`.
    pub(crate) fn encode_into(&self, out: &mut String) {
        fn code<K: PartialEq>(pairs: &[(K, u8)], key: K) -> char {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map_or('?', |(_, c)| char::from(*c))
        }
        out.push(code(&KINDS, self.kind));
        out.push(code(&ENTITIES, self.entity));
        out.push_str(self.id.simple().encode_lower(&mut Uuid::encode_buffer()));
        if self.entity == ChangeEntity::Message
            && let Some(conversation) = self.conversation_id
        {
            let uuid = conversation.as_uuid();
            out.push_str(uuid.simple().encode_lower(&mut Uuid::encode_buffer()));
        }
    }

    fn decode(text: &str) -> Option<PendingChange> {
        let bytes = text.as_bytes();
        let kind = KINDS.iter().find(|(_, c)| Some(c) == bytes.first())?.0;
        let entity = ENTITIES.iter().find(|(_, c)| Some(c) == bytes.get(1))?.0;
        let id = Uuid::try_parse(text.get(2..34)?).ok()?;
        let conversation_id = match (entity, text.get(34..)) {
            (ChangeEntity::File, Some("")) => None,
            (ChangeEntity::Conversation, Some("")) => Some(ConversationId::from(id)),
            (ChangeEntity::Message, Some(rest)) if rest.len() == 32 => {
                Some(ConversationId::from(Uuid::try_parse(rest).ok()?))
            }
            _ => return None,
        };
        Some(PendingChange {
            entity,
            id,
            conversation_id,
            kind,
        })
    }
}

impl ChangeBatch {
    /// The text form of `changes`, in pieces of at most `max_len` bytes
    /// (at least one change each).
    pub(crate) fn encode(changes: &[PendingChange], max_len: usize) -> Vec<String> {
        let mut pieces = Vec::new();
        let mut piece = String::new();
        for change in changes {
            if !piece.is_empty() && piece.len() + 1 + ENCODED_CHANGE_MAX > max_len {
                pieces.push(std::mem::take(&mut piece));
            }
            if !piece.is_empty() {
                piece.push(',');
            }
            change.encode_into(&mut piece);
        }
        if !piece.is_empty() {
            pieces.push(piece);
        }
        pieces
    }

    /// The text form of a batch to report as [`ChangeBatch::Resync`].
    pub(crate) const RESYNC: &'static str = "R";

    /// Reads the text form back; `None` for text this build did not write
    /// (a newer build's, or damage), which a reader treats as a resync.
    pub(crate) fn decode(text: &str) -> Option<ChangeBatch> {
        if text == Self::RESYNC {
            return Some(ChangeBatch::Resync);
        }
        text.split(',')
            .map(PendingChange::decode)
            .collect::<Option<Vec<_>>>()
            .map(ChangeBatch::Changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(entity: ChangeEntity, kind: ChangeKind) -> PendingChange {
        PendingChange {
            entity,
            id: Uuid::now_v7(),
            conversation_id: match entity {
                ChangeEntity::File => None,
                _ => Some(ConversationId::from(Uuid::now_v7())),
            },
            kind,
        }
    }

    #[test]
    fn text_form_round_trips_and_splits_at_the_limit() {
        let mut changes = Vec::new();
        for (entity, _) in ENTITIES {
            for (kind, _) in KINDS {
                let mut c = change(entity, kind);
                if entity == ChangeEntity::Conversation {
                    c.conversation_id = Some(ConversationId::from(c.id));
                }
                changes.push(c);
            }
        }
        let pieces = ChangeBatch::encode(&changes, 200);
        assert!(pieces.len() > 1);
        assert!(pieces.iter().all(|p| p.len() <= 200));
        assert!(
            pieces
                .iter()
                .all(|p| p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b','))
        );
        let back: Vec<PendingChange> = pieces
            .iter()
            .flat_map(|p| match ChangeBatch::decode(p) {
                Some(ChangeBatch::Changes(c)) => c,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(back, changes);
    }

    #[test]
    fn unknown_text_is_not_read_as_changes() {
        for text in [
            "",
            "x",
            "cC123",
            "cQ0123456789abcdef0123456789abcdef",
            "R,R",
        ] {
            assert_eq!(ChangeBatch::decode(text), None, "{text}");
        }
        assert_eq!(ChangeBatch::decode("R"), Some(ChangeBatch::Resync));
    }

    #[test]
    fn the_kind_that_says_most_wins() {
        use ChangeKind::*;
        assert_eq!(Created.then(Changed), Created);
        assert_eq!(Changed.then(Archived), Archived);
        assert_eq!(Archived.then(Unarchived), Unarchived);
        assert_eq!(Created.then(Deleted), Deleted);
        assert_eq!(Deleted.then(Created), Changed, "there before and after");
        assert_eq!(Deleted.then(Changed), Deleted);
    }
}
