//! How many round trips each call makes to PostgreSQL, counted by a proxy
//! between the store and the server that reads the protocol: a round trip
//! is a message after which the client waits for the server: `Sync` ends
//! an extended-protocol exchange (also a copy's start, and its end after
//! `CopyDone`), `Query` is a simple one. The counts are asserted, so a
//! call that gains one fails here; `--nocapture` prints the table
//! BENCHMARKS.md shows.
//! Needs SILMARI_TEST_POSTGRES_URL (see `scripts/with-postgres`); without it
//! the test says so and returns, and in CI it fails.
#![cfg(feature = "postgres")]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use common::pg::Database;
use silmari_store::prelude::*;
use silmari_store::{MessageEdit, PoolConfig, StoreConfig};

/// Forwards connections to `server`, counting the client's round trips.
struct Proxy {
    address: String,
    round_trips: Arc<AtomicU64>,
}

impl Proxy {
    fn start(server: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let address = listener.local_addr().expect("proxy address").to_string();
        let round_trips = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&round_trips);
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let server = TcpStream::connect(&server).expect("reach the server");
                let (client_in, server_in) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let counter = Arc::clone(&counter);
                thread::spawn(move || count_and_forward(client_in, server, &counter));
                thread::spawn(move || forward(server_in, client));
            }
        });
        Proxy {
            address,
            round_trips,
        }
    }

    fn count(&self) -> u64 {
        self.round_trips.load(Ordering::SeqCst)
    }
}

fn read_exact(from: &mut TcpStream, buf: &mut [u8]) -> bool {
    from.read_exact(buf).is_ok()
}

/// Copies the client's messages to the server, counting those that end an
/// exchange before forwarding them (so the count is in when the reply is).
fn count_and_forward(mut from: TcpStream, mut to: TcpStream, round_trips: &AtomicU64) {
    // Untyped messages first: SSL/GSS requests (8 bytes), then the startup.
    loop {
        let mut len = [0u8; 4];
        if !read_exact(&mut from, &mut len) {
            return;
        }
        let n = u32::from_be_bytes(len) as usize;
        let mut body = vec![0u8; n.saturating_sub(4)];
        if !read_exact(&mut from, &mut body) || to.write_all(&len).is_err() {
            return;
        }
        if to.write_all(&body).is_err() {
            return;
        }
        if n != 8 {
            break;
        }
    }
    loop {
        let mut head = [0u8; 5];
        if !read_exact(&mut from, &mut head) {
            break;
        }
        let n = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; n.saturating_sub(4)];
        if !read_exact(&mut from, &mut body) {
            break;
        }
        if matches!(head[0], b'S' | b'Q') {
            round_trips.fetch_add(1, Ordering::SeqCst);
        }
        if to.write_all(&head).is_err() || to.write_all(&body).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}

fn forward(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Both);
}

/// The `host:port` of a PostgreSQL URL, and the URL with `address` in its
/// place and TLS off (the proxy reads the protocol).
fn via(url: &str, address: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let (user, host) = match authority.rsplit_once('@') {
        Some((user, host)) => (format!("{user}@"), host),
        None => (String::new(), authority),
    };
    let separator = if path.contains('?') { '&' } else { '?' };
    let proxied = format!("{scheme}://{user}{address}/{path}{separator}sslmode=disable");
    (host.to_owned(), proxied)
}

/// A store on `database` through a counting proxy, with one connection,
/// opened up front: no pool refills in the counts.
fn through_a_proxy(database: &Database) -> (Proxy, Store) {
    let (server, _) = via(&database.url, "");
    let proxy = Proxy::start(server);
    let (_, url) = via(&database.url, &proxy.address);
    let mut config: StoreConfig = url.parse().unwrap();
    config.pool = PoolConfig {
        pool_size: 1,
        max_overflow: 0,
        ..PoolConfig::default()
    };
    (proxy, Store::open_with(config).unwrap())
}

#[test]
fn each_call_makes_the_round_trips_it_needs() {
    let Some(database) = Database::create() else {
        return;
    };
    let (proxy, store) = through_a_proxy(&database);
    let conversations = store.conversations();
    let c = conversations
        .create(NewConversation::titled("round trips"))
        .unwrap();
    conversations
        .append_message(c.id, NewMessage::new(Role::User, "warm up"))
        .unwrap();

    let mut rows: Vec<(&str, u64)> = Vec::new();
    let mut measure = |name: &'static str, call: &mut dyn FnMut()| {
        call(); // prepares its statements
        let before = proxy.count();
        call();
        rows.push((name, proxy.count() - before));
    };
    measure("W1 create a conversation", &mut || {
        conversations.create(NewConversation::titled("t")).unwrap();
    });
    measure("W2 append a message", &mut || {
        conversations
            .append_message(c.id, NewMessage::new(Role::User, "hello"))
            .unwrap();
    });
    measure("W3 get a conversation", &mut || {
        conversations.get(c.id).unwrap().unwrap();
    });
    measure("W4 list 50", &mut || {
        conversations.list(ConversationQuery::recent(50)).unwrap();
    });
    measure("append 10 messages at once", &mut || {
        let batch = vec![NewMessage::new(Role::User, "x"); 10];
        conversations.append_messages(c.id, batch).unwrap();
    });
    measure("append 1,000 messages at once (COPY)", &mut || {
        let batch = vec![NewMessage::new(Role::User, "x"); 1_000];
        conversations.append_messages(c.id, batch).unwrap();
    });
    let last = conversations
        .append_message(c.id, NewMessage::new(Role::Assistant, "a"))
        .unwrap();
    measure("W8 edit a message", &mut || {
        conversations
            .edit_message(last.id, MessageEdit::new().content("b"))
            .unwrap();
    });
    measure("W9 grow a streamed message", &mut || {
        conversations.append_to_message(last.id, " more").unwrap();
    });
    measure("a page of 50 messages", &mut || {
        conversations
            .messages(c.id, PageRequest::first(50))
            .unwrap();
    });
    let mut file = None;
    measure("W6 record a file", &mut || {
        let made = store.files().create(NewFile {
            filename: "a.txt".into(),
            content_type: "text/plain".into(),
            size: 3,
            ..NewFile::default()
        });
        file = Some(made.unwrap().id);
    });
    let file = file.unwrap();
    measure("W6 read it back", &mut || {
        store.files().get(file).unwrap().unwrap();
    });

    println!("| call | round trips |\n|---|---|");
    for (name, n) in &rows {
        println!("| {name} | {n} |");
    }
    // What each call makes today. A read or a single statement is one
    // exchange; a write is BEGIN, its statements (the first locks the
    // conversation's row), COMMIT. A batch looks up the current leaf in a
    // statement of its own (a single append finds it inside its INSERT),
    // with the last position when it is copied, then starts and ends the
    // copy.
    // A grown message's text is tokenized for search in Rust, so its
    // search tokens are written in a statement after the one that grows it
    // (and touches its conversation: one statement, a CTE).
    let expected = [
        ("W1 create a conversation", 1),
        ("W2 append a message", 4),
        ("W3 get a conversation", 1),
        ("W4 list 50", 1),
        ("append 10 messages at once", 5),
        ("append 1,000 messages at once (COPY)", 6),
        ("W8 edit a message", 4),
        ("W9 grow a streamed message", 4),
        ("a page of 50 messages", 1),
        ("W6 record a file", 1),
        ("W6 read it back", 1),
    ];
    assert_eq!(rows, expected);
}

/// A search that asks for several batches of candidates (a phrase whose
/// word pairs 2,100 messages hold apart, and only older ones in order)
/// counts what the index admits once, not once a batch: each batch is one
/// walk of messages and one read of titles, in one snapshot.
#[test]
fn a_search_counts_its_matches_once() {
    let Some(database) = Database::create() else {
        return;
    };
    let (proxy, store) = through_a_proxy(&database);
    let c = store
        .conversations()
        .create(NewConversation::titled("phrases"))
        .unwrap();
    let together = vec![NewMessage::new(Role::User, "once upon a time: the story teller"); 3];
    store
        .conversations()
        .append_messages(c.id, together)
        .unwrap();
    let apart = vec![NewMessage::new(Role::User, "the story, story teller"); 2_100];
    store.conversations().append_messages(c.id, apart).unwrap();
    let query = silmari_store::SearchQuery::new("\"the story teller\"").newest_first();
    let search = || store.search(&query).unwrap();
    assert_eq!(search().items.len(), 3);
    let before = proxy.count();
    assert_eq!(search().items.len(), 3);
    let made = proxy.count() - before;
    // BEGIN, the count, 4 batches (32 candidates, then as many as the hit
    // rate asks: 867, 1,000 and 1,000) of a walk and a read of titles
    // each, COMMIT.
    assert_eq!(made, 1 + 1 + 4 * 2 + 1, "round trips of one search");
}

/// A word the planner's statistics list as common (here every one of
/// 5,000 messages holds it: more than twice the 2,000 read through the
/// index whatever the table) is walked for at once, without counting its matches (a count
/// reads a heap row for each): BEGIN, one walk of messages and one read of
/// titles, COMMIT. The statistics are read once per connection a minute,
/// so the second search reads none.
#[test]
fn a_common_word_is_not_counted() {
    let Some(database) = Database::create() else {
        return;
    };
    let (proxy, store) = through_a_proxy(&database);
    let c = store
        .conversations()
        .create(NewConversation::titled("common"))
        .unwrap();
    let messages = vec![NewMessage::new(Role::User, "a common word"); 5_000];
    store
        .conversations()
        .append_messages(c.id, messages)
        .unwrap();
    database.client().batch_execute("ANALYZE").unwrap();
    let query = silmari_store::SearchQuery::new("common").newest_first();
    let search = || store.search(&query).unwrap();
    assert_eq!(search().items.len(), 20);
    let before = proxy.count();
    assert_eq!(search().items.len(), 20);
    assert_eq!(
        proxy.count() - before,
        1 + 2 + 1,
        "round trips of one search"
    );
    // A query the statistics cannot answer (a word and an excluded one)
    // is counted: 1 more (its second run: the count prepared).
    let rare = silmari_store::SearchQuery::new("word -absent").newest_first();
    assert_eq!(store.search(&rare).unwrap().items.len(), 20);
    let before = proxy.count();
    assert_eq!(store.search(&rare).unwrap().items.len(), 20);
    assert_eq!(
        proxy.count() - before,
        1 + 1 + 2 + 1,
        "round trips of one search"
    );
}
