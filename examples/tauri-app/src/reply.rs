//! The canned assistant: a reply written through the streaming API, one
//! token at a time, on a thread of its own.

use std::time::Duration;

use silmari_store::prelude::*;
use silmari_store::{MessageEdit, Metadata};

use crate::view::STREAMING;

/// The replies, in the order "regenerate" goes through them; `{prompt}` is
/// the user's message (shortened).
const REPLIES: [&str; 3] = [
    "Rain hammered the harbour while you wrote “{prompt}”. The lighthouse keeper lit the lamp and waited for the storm to pass.",
    "A second take on “{prompt}”: the storm came at dawn, and the letter never arrived.",
    "Once more, on “{prompt}”: the gulls went quiet before the thunder rolled in.",
];

/// The text of the `attempt`-th reply (from 1) to `prompt`.
pub fn canned(prompt: &str, attempt: usize) -> String {
    let mut short: String = prompt.split_whitespace().collect::<Vec<_>>().join(" ");
    if short.chars().count() > 60 {
        short = short.chars().take(59).collect::<String>() + "…";
    }
    REPLIES[(attempt.max(1) - 1) % REPLIES.len()].replace("{prompt}", &short)
}

/// Metadata of a reply: which model wrote it and, while it is streamed,
/// `"streaming": true`.
pub fn metadata(streaming: bool) -> Metadata {
    let mut metadata = Metadata::new();
    metadata.insert("model".into(), "canned".into());
    if streaming {
        metadata.insert(STREAMING.into(), true.into());
    }
    metadata
}

/// Streams `text` into message `reply` (appended empty before): a pause,
/// then `append_to_message` with the next word, until the text is written;
/// then the `streaming` mark is taken off. Every write is an event on the
/// change feed, which is how the windows see the reply grow.
pub fn stream(store: Store, reply: MessageId, text: String, delay: Duration) {
    let spawned = std::thread::Builder::new()
        .name("reply-stream".into())
        .spawn(move || {
            let chats = store.conversations();
            for token in text.split_inclusive(' ') {
                std::thread::sleep(delay);
                if let Err(e) = chats.append_to_message(reply, token) {
                    // Deleted meanwhile (its branch, its conversation): stop.
                    eprintln!("silmari-tauri-app: reply {reply} stopped: {e}");
                    return;
                }
            }
            if let Err(e) = chats.edit_message(reply, MessageEdit::new().metadata(metadata(false)))
            {
                eprintln!("silmari-tauri-app: reply {reply} not marked done: {e}");
            }
        });
    if let Err(e) = spawned {
        eprintln!("silmari-tauri-app: cannot start streaming reply {reply}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_go_round_and_quote_a_short_prompt() {
        assert!(canned("Tell  me\nabout it", 1).contains("“Tell me about it”"));
        assert_ne!(canned("x", 1), canned("x", 2));
        assert_eq!(canned("x", 1), canned("x", 4));
        let long = "word ".repeat(40);
        assert!(canned(&long, 2).contains("…”"));
    }

    #[test]
    fn a_streamed_reply_ends_whole_and_unmarked() {
        let store = Store::open("memory://").unwrap();
        let chat = store
            .conversations()
            .create(NewConversation::titled("t"))
            .unwrap();
        let reply = store
            .conversations()
            .append_message(
                chat.id,
                NewMessage::new(Role::Assistant, "").with_metadata(metadata(true)),
            )
            .unwrap();
        let text = canned("hello", 1);
        stream(
            store.clone(),
            reply.id,
            text.clone(),
            Duration::from_millis(1),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let got = store.conversations().get(chat.id).unwrap().unwrap();
            let message = &got.messages[0];
            if message.metadata.get(STREAMING).is_none() {
                assert_eq!(message.content, text);
                break;
            }
            assert!(std::time::Instant::now() < deadline, "still streaming");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
