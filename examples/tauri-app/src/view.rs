//! What the conversation screen shows, built from one read of the tree.

use serde::Serialize;
use silmari_store::{ConversationSummary, ConversationTree, Message, MessageId};

/// One conversation as the screen shows it: its row and its current branch,
/// each message with its place among its alternatives ("2 / 3").
#[derive(Debug, Clone, Serialize)]
pub struct ConversationView {
    /// The conversation's row (`message_count` counts every branch).
    pub conversation: ConversationSummary,
    /// The current branch, first message first.
    pub messages: Vec<MessageView>,
}

/// A message of the current branch.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    /// The message itself.
    #[serde(flatten)]
    pub message: Message,
    /// Its place among the messages with the same parent, from 1.
    pub alternative: usize,
    /// How many messages have that parent (1: no switcher to show).
    pub alternatives: usize,
    /// Whether its reply is still being streamed (its metadata says so).
    pub streaming: bool,
}

/// Metadata key set on a reply while its tokens arrive.
pub const STREAMING: &str = "streaming";

impl ConversationView {
    /// The view of `tree`.
    pub fn of(tree: &ConversationTree) -> ConversationView {
        let messages = tree
            .current_path()
            .into_iter()
            .map(|message| {
                let siblings: Vec<MessageId> =
                    tree.children(message.parent_id).map(|m| m.id).collect();
                MessageView {
                    alternative: siblings
                        .iter()
                        .position(|id| *id == message.id)
                        .map_or(1, |i| i + 1),
                    alternatives: siblings.len().max(1),
                    streaming: message.metadata.get(STREAMING).and_then(|v| v.as_bool())
                        == Some(true),
                    message: message.clone(),
                }
            })
            .collect();
        ConversationView {
            conversation: tree.conversation.clone(),
            messages,
        }
    }
}
