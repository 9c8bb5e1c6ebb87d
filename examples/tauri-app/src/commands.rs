//! The commands the front end invokes. Each runs on Tauri's async runtime,
//! never on the UI thread (`#[tauri::command(async)]`), and returns the
//! store's `Result` as it is: an `Err` reaches JavaScript as
//! `{kind, message, field?}`. Arguments keep their snake_case names.

use serde::Serialize;
use silmari_store::prelude::*;
use silmari_store::{
    Archived, ConversationQuery, ConversationSummary, Entity, SearchHit, SearchQuery,
};
use tauri::{AppHandle, Manager, State, WebviewWindow};

use crate::view::ConversationView;
use crate::{Settings, reply};

/// What the status line shows.
#[derive(Debug, Serialize)]
pub struct AppInfo {
    /// This window's label ("main", "second", …).
    pub window: String,
    /// Where the store is (a PostgreSQL password is masked).
    pub database: String,
}

/// The ids `send_message` wrote.
#[derive(Debug, Serialize)]
pub struct Sent {
    /// The user's message.
    pub message: MessageId,
    /// The reply being streamed into.
    pub reply: MessageId,
}

fn invalid(field: &str, reason: &str) -> Error {
    Error::InvalidInput {
        field: field.into(),
        reason: reason.into(),
    }
}

#[tauri::command(async, rename_all = "snake_case")]
pub fn app_info(window: WebviewWindow, store: State<'_, Store>) -> Result<AppInfo, Error> {
    Ok(AppInfo {
        window: window.label().to_owned(),
        database: store.location().to_string(),
    })
}

/// The sidebar: the 200 most recently updated conversations, archived ones
/// or the others.
#[tauri::command(async, rename_all = "snake_case")]
pub fn list_conversations(
    store: State<'_, Store>,
    archived: bool,
) -> Result<Vec<ConversationSummary>, Error> {
    let query = ConversationQuery::recent(200);
    let query = if archived {
        query.only_archived()
    } else {
        query
    };
    Ok(store.conversations().list(query)?.items)
}

#[tauri::command(async, rename_all = "snake_case")]
pub fn create_conversation(
    store: State<'_, Store>,
    title: String,
) -> Result<ConversationSummary, Error> {
    let title = title.trim();
    let title = if title.is_empty() {
        "New conversation"
    } else {
        title
    };
    Ok(store
        .conversations()
        .create(NewConversation::titled(title))?
        .summary())
}

/// One conversation's current branch with its "2 / 3" switchers; `None`
/// when it is gone.
#[tauri::command(async, rename_all = "snake_case")]
pub fn conversation_view(
    store: State<'_, Store>,
    id: ConversationId,
) -> Result<Option<ConversationView>, Error> {
    Ok(store
        .conversations()
        .tree(id)?
        .as_ref()
        .map(ConversationView::of))
}

/// Appends the user's message and an empty reply, and starts streaming the
/// reply's text into it; returns at once.
#[tauri::command(async, rename_all = "snake_case")]
pub fn send_message(
    store: State<'_, Store>,
    settings: State<'_, Settings>,
    conversation_id: ConversationId,
    text: String,
) -> Result<Sent, Error> {
    if text.trim().is_empty() {
        return Err(invalid("text", "is empty"));
    }
    let chats = store.conversations();
    let message =
        chats.append_message(conversation_id, NewMessage::new(Role::User, text.clone()))?;
    let reply = chats.append_message(
        conversation_id,
        NewMessage::new(Role::Assistant, "").with_metadata(reply::metadata(true)),
    )?;
    reply::stream(
        store.inner().clone(),
        reply.id,
        reply::canned(&text, 1),
        settings.token_delay,
    );
    Ok(Sent {
        message: message.id,
        reply: reply.id,
    })
}

/// A new reply beside `message_id` (a reply): a new branch from its
/// parent, streamed like the first; it becomes the current branch.
#[tauri::command(async, rename_all = "snake_case")]
pub fn regenerate(
    store: State<'_, Store>,
    settings: State<'_, Settings>,
    message_id: MessageId,
) -> Result<MessageId, Error> {
    let chats = store.conversations();
    let siblings = chats.alternatives(message_id)?;
    let message = siblings
        .iter()
        .find(|m| m.id == message_id)
        .ok_or_else(|| Error::NotFound {
            entity: Entity::Message,
            id: message_id.to_string(),
        })?;
    if message.role != Role::Assistant {
        return Err(invalid("message_id", "is not a reply"));
    }
    let prompt = match message.parent_id {
        Some(parent) => chats
            .tree(message.conversation_id)?
            .and_then(|tree| tree.messages.into_iter().find(|m| m.id == parent))
            .map(|m| m.content)
            .unwrap_or_default(),
        None => String::new(),
    };
    let reply = chats.branch_from(
        message.conversation_id,
        message.parent_id,
        NewMessage::new(Role::Assistant, "").with_metadata(reply::metadata(true)),
    )?;
    let text = reply::canned(&prompt, siblings.len() + 1);
    reply::stream(store.inner().clone(), reply.id, text, settings.token_delay);
    Ok(reply.id)
}

/// The "‹ 2 / 3 ›" switcher: makes the alternative `step` places from
/// `message_id` (-1 the one before, 1 the one after) the current branch.
#[tauri::command(async, rename_all = "snake_case")]
pub fn switch_alternative(
    store: State<'_, Store>,
    message_id: MessageId,
    step: i64,
) -> Result<ConversationView, Error> {
    let chats = store.conversations();
    let alternatives = chats.alternatives(message_id)?;
    let here = alternatives
        .iter()
        .position(|m| m.id == message_id)
        .unwrap_or(0) as i64;
    let target = usize::try_from(here + step)
        .ok()
        .and_then(|i| alternatives.get(i))
        .ok_or_else(|| invalid("step", "goes past the first or the last alternative"))?;
    let conversation = chats.switch_branch(target.id)?;
    let tree = chats
        .tree(conversation.id)?
        .ok_or_else(|| Error::NotFound {
            entity: Entity::Conversation,
            id: conversation.id.to_string(),
        })?;
    Ok(ConversationView::of(&tree))
}

#[tauri::command(async, rename_all = "snake_case")]
pub fn set_archived(
    store: State<'_, Store>,
    id: ConversationId,
    archived: bool,
) -> Result<ConversationSummary, Error> {
    let chats = store.conversations();
    if archived {
        chats.archive(id)
    } else {
        chats.unarchive(id)
    }
}

/// The search box: the 30 best hits, archived conversations included.
#[tauri::command(async, rename_all = "snake_case")]
pub fn search(store: State<'_, Store>, text: String) -> Result<Vec<SearchHit>, Error> {
    let query = SearchQuery::new(text).archived(Archived::Include).limit(30);
    Ok(store.search(&query)?.items)
}

/// A window that could not be opened, in the shape of the store's errors.
#[derive(Debug, Serialize)]
pub struct WindowError {
    /// Always `"window"`.
    pub kind: &'static str,
    /// What went wrong.
    pub message: String,
}

/// "New window": another window of this process, on the same store.
/// The first is labelled "second".
#[tauri::command(async, rename_all = "snake_case")]
pub fn new_window(app: AppHandle) -> Result<String, WindowError> {
    let windows = app.webview_windows();
    let label = if windows.contains_key("second") {
        (3..)
            .map(|n| format!("window-{n}"))
            .find(|l| !windows.contains_key(l))
            .unwrap_or_default()
    } else {
        "second".to_owned()
    };
    crate::open_window(&app, &label).map_err(|e| WindowError {
        kind: "window",
        message: format!("cannot open a window: {e}"),
    })?;
    Ok(label)
}
