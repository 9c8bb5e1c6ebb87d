use silmari_store::prelude::*;
use time::OffsetDateTime;
use time::macros::{datetime, offset};

/// What every backend keeps of `t`: UTC, whole microseconds.
fn expected(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(offset!(UTC));
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000).unwrap()
}

pub fn timestamp_round_trips_exactly(store: &Store) {
    let inputs = [
        datetime!(2024-06-01 12:34:56.123456789 +02:00),
        datetime!(1969-12-31 23:59:59.999999999 UTC),
        datetime!(0001-01-01 00:00:00 UTC),
        datetime!(9998-12-31 23:59:59.999999 UTC),
        datetime!(2038-01-19 03:14:08.000001 -05:30),
    ];
    for t in inputs {
        let want = expected(t);
        let file = store
            .files()
            .create(NewFile {
                created_at: Some(t),
                ..crate::support::new_file("t.txt")
            })
            .unwrap();
        assert_eq!(file.created_at, want);
        assert_eq!(file.created_at.offset(), offset!(UTC));
        assert_eq!(
            store.files().get(file.id).unwrap().unwrap().created_at,
            want
        );

        let c = store
            .conversations()
            .create(NewConversation {
                created_at: Some(t),
                ..NewConversation::titled("t")
            })
            .unwrap();
        assert_eq!((c.created_at, c.updated_at), (want, want));
        let m = store
            .conversations()
            .append_message(
                c.id,
                NewMessage {
                    created_at: Some(t),
                    ..NewMessage::new(Role::User, "t")
                },
            )
            .unwrap();
        assert_eq!(m.created_at, want);
        let stored = store.conversations().get(c.id).unwrap().unwrap();
        assert_eq!(stored.created_at, want);
        assert_eq!(stored.messages[0], m);
    }
    // Store-made timestamps are already exact.
    let now = store
        .conversations()
        .create(NewConversation::titled("now"))
        .unwrap();
    assert_eq!(now.created_at.nanosecond() % 1000, 0);
    assert_eq!(store.conversations().get(now.id).unwrap().unwrap(), now);
}
