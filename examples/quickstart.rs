//! The main job: open the default store (or `DATABASE_URL`), start a
//! conversation, append messages with an attachment, list what is there.
//!
//! ```text
//! cargo run --example quickstart
//! DATABASE_URL=sqlite:////tmp/writer.db cargo run --example quickstart
//! ```
//!
//! Run it twice: the second run lists the first run's conversation too.

use std::process::ExitCode;

use silmari_store::prelude::*;
use silmari_store::{ConversationSummary, Location};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> silmari_store::Result<()> {
    let store = Store::from_env()?;
    match store.location() {
        Location::SqliteFile(path) => {
            let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            println!("database: SQLite file {}", shown.display());
        }
        other => println!("database: {other}"),
    }

    let notes = store.files().create(NewFile {
        filename: "chapter-1-notes.md".into(),
        content_type: "text/markdown".into(),
        size: 2_048,
        ..Default::default()
    })?;

    let conversation = store
        .conversations()
        .create(NewConversation::titled("Outline for chapter one"))?;
    let conversations = store.conversations();
    conversations.append_message(
        conversation.id,
        NewMessage::new(Role::System, "You help a novelist plan chapters."),
    )?;
    conversations.append_message(
        conversation.id,
        NewMessage::new(Role::User, "Here are my notes; propose an outline.")
            .with_attachments(vec![Attachment::from_file(&notes)]),
    )?;
    conversations.append_message(
        conversation.id,
        NewMessage::new(
            Role::Assistant,
            "1. The storm arrives. 2. The letter. 3. Leaving the harbour.",
        ),
    )?;

    println!("\nrecent conversations:");
    let recent = conversations.list(ConversationQuery::recent(10))?;
    for summary in &recent.items {
        print_summary(summary);
    }
    if recent.next.is_some() {
        println!("  …and more");
    }

    let stored =
        conversations
            .get(conversation.id)?
            .ok_or_else(|| silmari_store::Error::NotFound {
                entity: silmari_store::Entity::Conversation,
                id: conversation.id.to_string(),
            })?;
    println!("\n\"{}\" just now:", stored.title);
    for message in &stored.messages {
        println!("  {:>9}: {}", message.role, message.content);
        for attachment in &message.attachments {
            println!(
                "             📎 {} ({}, {} bytes)",
                attachment.filename, attachment.content_type, attachment.size
            );
        }
    }
    Ok(())
}

fn print_summary(summary: &ConversationSummary) {
    let when = summary
        .updated_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| summary.updated_at.to_string());
    println!(
        "  {when}  {:<28} {} message{}",
        summary.title,
        summary.message_count,
        if summary.message_count == 1 { "" } else { "s" }
    );
}
