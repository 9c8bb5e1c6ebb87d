//! `silmari`: the admin tool of a silmari-store database.
//!
//! ```text
//! cargo run --example silmari -- --help
//! cargo run --example silmari -- migrate status
//! cargo run --example silmari -- list --archived
//! cargo run --example silmari -- show 0190c5a4-…
//! cargo run --features postgres --example silmari -- \
//!     copy --from sqlite:///./dev.db --to postgresql://user:password@localhost/silmari_writer
//! ```
//!
//! `--url` defaults to `DATABASE_URL`, else `sqlite:///./dev.db`. Long work
//! shows a progress bar on a terminal and plain lines otherwise. On failure
//! it prints one line and exits with status 1.

mod browse;
#[cfg_attr(not(feature = "encryption"), path = "no_keys.rs")]
mod keys;
mod migrate;
mod progress;
mod search;

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use silmari_store::{Archived, ConversationId, DEFAULT_URL, Error, Role, TransferOptions};

use browse::{ListOptions, ShowOptions};
use migrate::{Migrate, migrate};
use progress::Reporter;
use search::SearchOptions;

#[derive(Parser)]
#[command(
    name = "silmari",
    about = "Admin tool of a silmari-store database",
    version
)]
struct Cli {
    /// Database URL (sqlite:///path.db, postgresql://…, memory://).
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_URL, global = true, hide_env_values = true)]
    url: String,
    #[command(flatten)]
    keys: keys::KeyArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Schema migrations.
    #[command(subcommand)]
    Migrate(Migrate),
    /// Conversations, most recently updated first, archived ones too (marked):
    /// messages on every branch, branches, status, title.
    List {
        /// Only archived conversations.
        #[arg(long, conflicts_with = "active")]
        archived: bool,
        /// Only conversations that are not archived.
        #[arg(long)]
        active: bool,
        /// Most conversations to list.
        #[arg(long, default_value_t = 50, conflicts_with = "all",
              value_parser = clap::value_parser!(u64).range(1..))]
        limit: u64,
        /// Every conversation.
        #[arg(long)]
        all: bool,
    },
    /// One conversation: its fields and every branch of its message tree
    /// (`*` the current branch, `[2/3]` the second of three alternatives).
    Show {
        id: ConversationId,
        /// Print each message's id.
        #[arg(long)]
        ids: bool,
        /// Whole texts and metadata, not one short line each.
        #[arg(long)]
        full: bool,
    },
    /// Copy every record from one store into another (any backends).
    Copy {
        /// Source URL.
        #[arg(long)]
        from: String,
        /// Target URL.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        options: Merge,
    },
    /// Write every record to a JSON Lines file (`-` for standard output).
    Export { file: PathBuf },
    /// Read a JSON Lines export into the store, all or nothing.
    Import {
        file: PathBuf,
        #[command(flatten)]
        options: Merge,
    },
    /// Copy the live SQLite database to a new file (online backup).
    Backup { path: PathBuf },
    /// Print every change other processes (or app instances) commit, one
    /// JSON object per line, until interrupted or `--count` events.
    Watch {
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Print the health report.
    Check {
        /// As JSON.
        #[arg(long)]
        json: bool,
        /// First rebuild the search index from every text (for an index
        /// the report finds out of step).
        #[arg(long)]
        repair: bool,
    },
    /// Encrypt the plain SQLite file in place (no store may have it open).
    #[cfg(feature = "encryption")]
    Encrypt {
        #[command(flatten)]
        new_key: keys::NewKeyArgs,
    },
    /// Change the key of the encrypted SQLite file, in place.
    #[cfg(feature = "encryption")]
    Rekey {
        #[command(flatten)]
        new_key: keys::NewKeyArgs,
    },
    /// Write a plain copy of the encrypted SQLite file to a new file.
    #[cfg(feature = "encryption")]
    Decrypt {
        /// The plain copy (must not exist).
        #[arg(long)]
        to: PathBuf,
    },
    /// Search message contents and titles: words (all must match),
    /// "quoted phrases", prefix*, -excluded. Newest first.
    Search {
        query: String,
        /// Only this conversation.
        #[arg(long)]
        conversation: Option<ConversationId>,
        /// Only messages of this role (system, user, assistant, tool).
        #[arg(long)]
        role: Option<Role>,
        /// Best matches first, not newest.
        #[arg(long)]
        best: bool,
        /// Every branch, not only the current ones.
        #[arg(long)]
        all_branches: bool,
        /// Archived conversations too.
        #[arg(long)]
        archived: bool,
        /// Most hits.
        #[arg(long, default_value_t = 20,
              value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// The page of hits as JSON (snippets with byte ranges).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct Merge {
    /// Write into a store that holds data, skipping records it has.
    #[arg(long)]
    merge: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return argument_error(e),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // Output piped into `head` or a pager that quit: not a failure.
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("silmari: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints clap's message for bad arguments (help and version as they are)
/// with every argument that may be a connection string hidden: clap quotes
/// an unexpected argument whole, and it may hold a password.
fn argument_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let mut text = e.render().to_string();
    let mut hidden: Vec<String> = Vec::new();
    for arg in std::env::args().skip(1) {
        if let Some((_, value)) = arg.split_once('=').filter(|_| arg.starts_with('-')) {
            hidden.push(value.to_owned());
        }
        hidden.push(arg);
    }
    hidden.retain(|a| a.contains("://") || a.contains('@') || a.contains('='));
    hidden.sort_by_key(|a| std::cmp::Reverse(a.len()));
    for arg in &hidden {
        text = text.replace(arg.as_str(), "<hidden>");
    }
    eprint!("{text}");
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

fn run(cli: Cli) -> silmari_store::Result<()> {
    match cli.command {
        // Opened as it is: `up` migrates, showing the search index build.
        Command::Migrate(command) => migrate(
            &cli.keys.builder(&cli.url)?.migrate_on_open(false).open()?,
            command,
        ),
        #[cfg(feature = "encryption")]
        Command::Encrypt { new_key } => {
            let path = keys::file_of(&cli.url)?;
            silmari_store::Store::encrypt(&path, &new_key.key()?)?;
            println!("encrypted {}", path.display());
            Ok(())
        }
        #[cfg(feature = "encryption")]
        Command::Rekey { new_key } => {
            let path = keys::file_of(&cli.url)?;
            let old = cli.keys.required()?;
            silmari_store::Store::rekey(&path, &old, &new_key.key()?)?;
            println!("re-keyed {}", path.display());
            Ok(())
        }
        #[cfg(feature = "encryption")]
        Command::Decrypt { to } => {
            let path = keys::file_of(&cli.url)?;
            let key = cli.keys.required()?;
            silmari_store::Store::decrypt(&path, &key, &to)?;
            println!("decrypted {} to {}", path.display(), to.display());
            Ok(())
        }
        Command::Search {
            query,
            conversation,
            role,
            best,
            all_branches,
            archived,
            limit,
            json,
        } => {
            let options = SearchOptions {
                conversation,
                role,
                best_first: best,
                all_branches,
                include_archived: archived,
                limit,
                json,
            };
            let mut out = BufWriter::new(std::io::stdout().lock());
            search::search(&cli.keys.open(&cli.url)?, &query, &options, &mut out)?;
            out.flush().map_err(browse::stdout)
        }
        Command::List {
            archived,
            active,
            limit,
            all,
        } => {
            let options = ListOptions {
                archived: match (archived, active) {
                    (true, _) => Archived::Only,
                    (_, true) => Archived::Hide,
                    _ => Archived::Include,
                },
                limit: (!all).then_some(limit),
            };
            let mut out = BufWriter::new(std::io::stdout().lock());
            browse::list(&cli.keys.open(&cli.url)?, &options, &mut out)?;
            out.flush().map_err(browse::stdout)
        }
        Command::Show { id, ids, full } => {
            let mut out = BufWriter::new(std::io::stdout().lock());
            browse::show(
                &cli.keys.open(&cli.url)?,
                id,
                &ShowOptions { ids, full },
                &mut out,
            )?;
            out.flush().map_err(browse::stdout)
        }
        Command::Copy { from, to, options } => {
            let (from, to) = (cli.keys.open(&from)?, cli.keys.open(&to)?);
            let progress = Reporter::new("copy");
            let report = from.copy_to(&to, transfer(options), |p| progress.update(p))?;
            progress.done(&report);
            Ok(())
        }
        Command::Export { file } => {
            let store = cli.keys.open(&cli.url)?;
            let progress = Reporter::new("export");
            let report = if file.as_os_str() == "-" {
                store.export_jsonl(BufWriter::new(std::io::stdout().lock()), |p| {
                    progress.update(p)
                })?
            } else {
                let out = File::create(&file).map_err(|source| silmari_store::Error::Io {
                    path: file.clone(),
                    source,
                })?;
                store.export_jsonl(BufWriter::new(out), |p| progress.update(p))?
            };
            progress.done(&report);
            Ok(())
        }
        Command::Import { file, options } => {
            let store = cli.keys.open(&cli.url)?;
            let input = File::open(&file).map_err(|source| silmari_store::Error::Io {
                path: file.clone(),
                source,
            })?;
            let progress = Reporter::new("import");
            let report = store.import_jsonl(BufReader::new(input), transfer(options), |p| {
                progress.update(p)
            })?;
            progress.done(&report);
            Ok(())
        }
        Command::Watch { count } => {
            let store = cli.keys.open(&cli.url)?;
            let feed = store.subscribe()?;
            eprintln!("watching {} (interrupt to stop)", store.location());
            let mut out = std::io::stdout().lock();
            for _ in 0..count.unwrap_or(u64::MAX) {
                let Some(event) = feed.recv() else { break };
                let line = serde_json::to_string(&event).map_err(std::io::Error::other);
                line.and_then(|line| writeln!(out, "{line}"))
                    .and_then(|()| out.flush())
                    .map_err(browse::stdout)?;
            }
            Ok(())
        }
        Command::Backup { path } => {
            cli.keys.open(&cli.url)?.backup_to(&path)?;
            println!("backed up to {}", path.display());
            Ok(())
        }
        Command::Check { json, repair } => {
            let store = cli.keys.open(&cli.url)?;
            if repair {
                let progress = Reporter::new("search index");
                let done = store
                    .migrations()
                    .rebuild_search_index(|p| progress.count(p.indexed, Some(p.total)))?;
                progress.finish(&format!("search index: {} texts indexed", done.indexed));
            }
            let report = store.check()?;
            if json {
                let text = serde_json::to_string_pretty(&report)
                    .map_err(|e| silmari_store::Error::Backend(Box::new(e)))?;
                println!("{text}");
            } else {
                println!("backend            {}", report.backend);
                println!("schema version     {}", report.schema_version);
                println!("pending migrations {:?}", report.pending_migrations);
                if let Some(lines) = &report.integrity_check {
                    println!("integrity_check    {}", lines.join("; "));
                }
                if let Some(n) = report.foreign_key_violations {
                    println!("foreign key errors {n}");
                }
                if let Some(p) = &report.pragmas {
                    println!(
                        "pragmas            journal_mode={} synchronous={} foreign_keys={} busy_timeout={}ms",
                        p.journal_mode, p.synchronous, p.foreign_keys, p.busy_timeout_ms
                    );
                }
                let c = report.counts;
                println!(
                    "rows               {} files, {} conversations, {} messages",
                    c.files, c.conversations, c.messages
                );
                if let Some(size) = report.size_bytes {
                    println!("size               {size} bytes");
                }
                println!(
                    "search index       {} texts out of step",
                    report.search_index_mismatches
                );
                println!("healthy            {}", report.is_healthy());
            }
            Ok(())
        }
    }
}

fn transfer(options: Merge) -> TransferOptions {
    TransferOptions {
        merge: options.merge,
        ..TransferOptions::default()
    }
}
