//! Silmari Writer's chat screen as a Tauri 2 app over `silmari-store`.
//!
//! One `Store` for the whole process, in Tauri's managed state; every
//! command runs off the UI thread (`#[tauri::command(async)]`) and returns
//! `Result<T, silmari_store::Error>`, which reaches the front end as
//! `{kind, message, field?}`. The store's change feed is forwarded to every
//! window as the `store-change` event, so windows of this process, and
//! other processes writing the same SQLite file (`silmari import`), stay in
//! step.
//!
//! Environment:
//! - `SILMARI_APP_DB`, else `DATABASE_URL`: the store's URL; default
//!   `sqlite:///<app data dir>/silmari-writer.db`.
//! - `SILMARI_APP_WINDOWS=2`: open the second window ("second") at start.
//! - `SILMARI_APP_TOKEN_DELAY_MS`: the pause before each token of a canned
//!   reply (default 60).

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod feed;
mod reply;
mod view;

use std::time::Duration;

use silmari_store::Store;
use tauri::{Manager, WebviewUrl, WebviewWindowBuilder};

/// What the commands need besides the store.
pub struct Settings {
    /// The pause before each token of a streamed reply.
    pub token_delay: Duration,
}

/// Where the store lives: the environment's URL, else a file in the app's
/// data directory.
fn database_url(app: &tauri::App) -> Result<String, Box<dyn std::error::Error>> {
    for var in ["SILMARI_APP_DB", "DATABASE_URL"] {
        if let Ok(url) = std::env::var(var)
            && !url.trim().is_empty()
        {
            return Ok(url);
        }
    }
    let dir = app.path().app_data_dir()?;
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("silmari-writer.db");
    // `sqlite:///` + an absolute path (`/home/…`) is `sqlite:////home/…`.
    Ok(format!("sqlite:///{}", file.display()))
}

/// Opens window `label` (same page, its own state) beside the main one.
pub fn open_window<R: tauri::Runtime, M: Manager<R>>(
    manager: &M,
    label: &str,
) -> tauri::Result<tauri::WebviewWindow<R>> {
    // Beside the main window (x 0, 940 wide), each later one a little further.
    let others = manager.webview_windows().len().max(1) as f64;
    WebviewWindowBuilder::new(manager, label, WebviewUrl::App("index.html".into()))
        .title(format!("Silmari Writer — {label}"))
        .inner_size(940.0, 740.0)
        .position(950.0 + 30.0 * (others - 1.0), 0.0)
        .build()
}

fn main() {
    let token_delay = std::env::var("SILMARI_APP_TOKEN_DELAY_MS")
        .ok()
        .and_then(|ms| ms.trim().parse::<u64>().ok())
        .map_or(Duration::from_millis(60), Duration::from_millis);

    tauri::Builder::default()
        .setup(move |app| {
            let url = database_url(app)?;
            let store = Store::open(&url).map_err(|e| {
                eprintln!("silmari-tauri-app: cannot open the store: {e}");
                e
            })?;
            eprintln!("silmari-tauri-app: store {}", store.location());
            feed::forward(app.handle().clone(), &store)?;
            app.manage(store);
            app.manage(Settings { token_delay });
            if std::env::var("SILMARI_APP_WINDOWS").as_deref() == Ok("2") {
                open_window(app, "second")?;
            }
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::list_conversations,
            commands::create_conversation,
            commands::conversation_view,
            commands::send_message,
            commands::regenerate,
            commands::switch_alternative,
            commands::set_archived,
            commands::search,
            commands::new_window,
        ])
        .run(tauri::generate_context!())
        .expect("error while running the Tauri application");
}
