//! `silmari migrate`: status, plan, up and down, with the search index
//! build shown as a progress bar.

use clap::Subcommand;
use silmari_store::{Direction, MigrationTarget, PlannedMigration, Store};
use time::format_description::well_known::Rfc3339;

use crate::progress::Reporter;

/// What `silmari migrate` does.
#[derive(Subcommand)]
pub enum Migrate {
    /// Every known migration: applied or pending.
    Status,
    /// Apply pending migrations (all, or up to a version).
    Up {
        #[arg(long)]
        to: Option<i64>,
    },
    /// Revert migrations (the newest one by default).
    Down {
        /// How many to revert.
        #[arg(long, conflicts_with = "to")]
        steps: Option<usize>,
        /// Revert down to this version (0 removes the schema).
        #[arg(long)]
        to: Option<i64>,
    },
    /// Show what `up` (or a move to `--to`) would run, with its SQL, changing nothing.
    Plan {
        #[arg(long)]
        to: Option<i64>,
    },
}

/// Runs one `migrate` command on a store opened without migrating.
pub fn migrate(store: &Store, command: Migrate) -> silmari_store::Result<()> {
    let migrations = store.migrations();
    let ran = match command {
        Migrate::Status => {
            for m in migrations.status()? {
                let state = match m.applied_on {
                    Some(at) => format!("applied {}", at.format(&Rfc3339).unwrap_or_default()),
                    None => "pending".to_owned(),
                };
                println!(
                    "V{:<3} {:<32} {:<40} checksum {}",
                    m.version, m.name, state, m.checksum
                );
            }
            println!("version {}", migrations.current_version()?);
            return Ok(());
        }
        Migrate::Plan { to } => {
            let plan =
                migrations.plan(to.map_or(MigrationTarget::Latest, MigrationTarget::Version))?;
            if plan.is_empty() {
                println!("nothing to do");
            }
            for step in plan {
                println!("{}", describe(&step));
                for line in step.sql.lines() {
                    println!("    {line}");
                }
            }
            return Ok(());
        }
        Migrate::Up { to: None } => {
            let progress = Reporter::new("search index");
            let ran = migrations.up_with_progress(|p| progress.count(p.indexed, Some(p.total)))?;
            progress.finish("");
            ran
        }
        Migrate::Up { to: Some(v) } => migrations.up_to(v)?,
        Migrate::Down { to: Some(v), .. } => migrations.down_to(v)?,
        Migrate::Down { steps, to: None } => migrations.down(steps.unwrap_or(1))?,
    };
    if ran.is_empty() {
        println!("nothing to do");
    }
    for step in &ran {
        println!("{}", describe(step));
    }
    println!("version {}", migrations.current_version()?);
    Ok(())
}

fn describe(step: &PlannedMigration) -> String {
    let verb = match step.direction {
        Direction::Up => "apply ",
        Direction::Down => "revert",
    };
    format!("{verb} V{}__{}", step.version, step.name)
}
