use silmari_store::prelude::*;
use silmari_store::{Entity, Page};
use time::macros::datetime;

use crate::support::{contents, new_file};

pub fn file_create_get_delete(store: &Store) {
    let file = store.files().create(new_file("a.txt")).unwrap();
    assert_eq!(
        file.id.as_uuid().get_version_num(),
        7,
        "store-made ids are v7"
    );
    assert_eq!((file.filename.as_str(), file.size), ("a.txt", 42));
    assert_eq!(store.files().get(file.id).unwrap(), Some(file.clone()));
    assert_eq!(store.files().get(FileId::new()).unwrap(), None);
    assert!(store.files().delete(file.id).unwrap());
    assert!(
        !store.files().delete(file.id).unwrap(),
        "second delete finds nothing"
    );
    assert_eq!(store.files().get(file.id).unwrap(), None);
}

pub fn file_caller_id_and_conflict(store: &Store) {
    let id = FileId::new();
    let first = store
        .files()
        .create(NewFile {
            id: Some(id),
            ..new_file("first.txt")
        })
        .unwrap();
    assert_eq!(first.id, id);
    let again = store.files().create(NewFile {
        id: Some(id),
        ..new_file("second.txt")
    });
    match again {
        Err(Error::Conflict { entity, id: got }) => {
            assert_eq!(entity, Entity::File);
            assert_eq!(got, id.to_string());
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        store.files().get(id).unwrap(),
        Some(first),
        "the first record is intact"
    );
}

pub fn file_list_pages_newest_first(store: &Store) {
    assert_eq!(
        store.files().list(PageRequest::first(10)).unwrap(),
        Page {
            items: vec![],
            next: None
        }
    );
    // Three share one timestamp: the id breaks the tie.
    let times = [
        datetime!(2024-01-01 00:00 UTC),
        datetime!(2024-01-02 00:00 UTC),
        datetime!(2024-01-02 00:00 UTC),
        datetime!(2024-01-02 00:00 UTC),
        datetime!(2024-01-03 00:00 UTC),
        datetime!(2023-12-31 23:59:59.999999 UTC),
        datetime!(2024-01-05 00:00 UTC),
    ];
    let mut made: Vec<FileMetadata> = times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            store
                .files()
                .create(NewFile {
                    created_at: Some(*t),
                    ..new_file(&format!("f{i}"))
                })
                .unwrap()
        })
        .collect();
    made.sort_by_key(|f| std::cmp::Reverse((f.created_at, f.id)));

    let mut seen = Vec::new();
    let mut request = PageRequest::first(3);
    let mut sizes = Vec::new();
    loop {
        let page = store.files().list(request.clone()).unwrap();
        sizes.push(page.items.len());
        seen.extend(page.items);
        match page.next {
            Some(cursor) => request = request.after(cursor),
            None => break,
        }
    }
    assert_eq!(
        sizes,
        vec![3, 3, 1],
        "the last page is short and ends the list"
    );
    assert_eq!(seen, made);

    // An exact multiple of the page size ends without an empty page.
    let first = store.files().list(PageRequest::first(7)).unwrap();
    assert_eq!((first.items.len(), first.next), (7, None));
    // A cursor survives a round trip through its string form.
    let page = store.files().list(PageRequest::first(2)).unwrap();
    let cursor = page.next.unwrap().to_string().parse().unwrap();
    let rest = store
        .files()
        .list(PageRequest::first(10).after(cursor))
        .unwrap();
    assert_eq!(rest.items, made[2..]);
    assert_eq!(contents(store).0, made);
}
