//! What the benches write: W2's 500 bytes of text and its attachment, W6's
//! file record.

use silmari_store::prelude::*;
use silmari_store::{Attachment, FileId, FileMetadata};

/// 500 bytes of text, as W2 asks.
pub fn content() -> String {
    "The storm came in over the harbour at dusk; the letter lay unopened. ".repeat(8)[..500]
        .to_owned()
}

/// One attachment, as an app sends with a message.
pub fn attachment() -> Attachment {
    Attachment {
        file_id: FileId::new(),
        filename: "chapter-1-notes.md".into(),
        content_type: "text/markdown".into(),
        size: 2048,
    }
}

/// W6 on `store`: a file record created, then read back.
pub fn file_create_get(store: &Store) -> FileMetadata {
    let file = store
        .files()
        .create(NewFile {
            filename: "chapter-1.pdf".into(),
            content_type: "application/pdf".into(),
            size: 4096,
            ..Default::default()
        })
        .expect("create");
    store.files().get(file.id).expect("get").expect("exists")
}
