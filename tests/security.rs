//! Secrets stay secret: a password in a database URL never shows in Debug,
//! Display, errors or log output, whatever happens to the connection.

mod common;

use silmari_store::StoreConfig;
use silmari_store::prelude::*;

use common::{capture_logs, logged, shown};

fn assert_hidden(secret: &str, text: &str) {
    assert!(!text.contains(secret), "the secret shows in: {text}");
}

#[test]
fn passwords_never_show_in_debug_display_errors_or_logs() {
    capture_logs();
    let secret = "hunter2-do-not-print";

    // Parsing, Debug and Display of the configuration.
    let url =
        format!("postgresql+asyncpg://writer:{secret}@127.0.0.1:1/silmari_writer?pool_timeout=1");
    let config: StoreConfig = url.parse().unwrap();
    assert_hidden(secret, &format!("{config:?} {}", config.location));
    // A server that is not there, and a malformed URL with the password in it.
    let err = Store::open(&url).unwrap_err();
    assert_hidden(secret, &shown(&err));
    let err = Store::open(&format!(
        "postgresql://writer:{secret}@host/db?pool_size=%zz"
    ))
    .unwrap_err();
    assert_hidden(secret, &shown(&err));

    #[cfg(feature = "postgres")]
    if let Some(database) = common::pg::Database::create() {
        // The real password of the test server, through a working store,
        // a wrong password, and connections killed under the store.
        let real = database
            .url
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .and_then(|(userinfo, _)| userinfo.split_once(':'))
            .map(|(_, password)| password.to_owned())
            .expect("the test URL has a password");
        let store = Store::open(&database.url).unwrap();
        assert_hidden(&real, &format!("{store:?} {}", store.location()));
        let c = store
            .conversations()
            .create(NewConversation::titled("t"))
            .unwrap();
        database
            .client()
            .batch_execute(
                // Client connections only: an autovacuum worker there runs
                // as a superuser the test's role may not terminate.
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid() \
                 AND backend_type = 'client backend' AND usename = current_user",
            )
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        for _ in 0..3 {
            let _ = store
                .conversations()
                .append_message(c.id, NewMessage::new(Role::User, "after"));
        }
        let wrong = database.url.replacen(&real, secret, 1);
        let err = Store::open(&wrong).unwrap_err();
        assert_hidden(secret, &shown(&err));
        assert_hidden(&real, &shown(&err));
        let logged = logged();
        assert_hidden(&real, &logged);
    }
    // The capture works in every build: opening a store logs where it is
    // (above, only a PostgreSQL build opened one).
    drop(Store::open("memory://").unwrap());
    let logged = logged();
    assert!(
        logged.contains("opened memory store at memory://"),
        "the log is captured: {logged}"
    );
    assert_hidden(secret, &logged);
}
