//! What the benches write: W2's 500 bytes of text and its attachment.

use silmari_store::{Attachment, FileId};

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
