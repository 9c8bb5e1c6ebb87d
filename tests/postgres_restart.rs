//! A real server restart under an open Store. In a test binary of its own,
//! because restarting the shared server would break other tests running
//! beside it (cargo runs test binaries one after another).
#![cfg(feature = "postgres")]

mod common;

use std::time::{Duration, Instant};

use common::pg::{Database, append, open};
use silmari_store::prelude::*;

#[test]
fn a_restarted_server_is_recovered_without_reopening() {
    let Some(database) = Database::create() else {
        return;
    };
    let Ok(restart) = std::env::var(common::POSTGRES_RESTART_VAR) else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI must set {} to restart its server",
            common::POSTGRES_RESTART_VAR
        );
        println!(
            "{} not set: restart not tested",
            common::POSTGRES_RESTART_VAR
        );
        return;
    };
    let store = open(&database, Duration::from_secs(10));
    let c = store
        .conversations()
        .create(NewConversation::titled("restart"))
        .unwrap();
    append(&store, c.id, "before").unwrap();
    let status = std::process::Command::new("sh")
        .args(["-c", &restart])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "restart command failed");
    let started = Instant::now();
    // The server is back: calls succeed on the same Store.
    for i in 0..10 {
        append(&store, c.id, &format!("after {i}")).unwrap();
    }
    assert_eq!(
        store
            .conversations()
            .get(c.id)
            .unwrap()
            .unwrap()
            .messages
            .len(),
        11
    );
    println!(
        "recovered after a server restart in {:?}",
        started.elapsed()
    );
}
