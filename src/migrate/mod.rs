//! Schema migrations: refinery for the way up, down scripts for the way back.
//!
//! Each SQL dialect has its folder under `migrations/`. refinery embeds the
//! up scripts (`V{n}__{name}.sql`) and records applied versions in
//! `refinery_schema_history`; `build.rs` embeds the down scripts
//! (`V{n}__{name}.down.sql`, a name refinery skips). Both dialects hold the
//! same versions with the same names. A down step runs in one transaction
//! with the removal of its history row, so a failing down script leaves the
//! database at the version it was at; the up scripts of a migration run
//! with their history rows in one transaction (refinery's grouped mode), so
//! a failure or a crash anywhere in them leaves the version it found.
//!
//! Layer 1: the planner knows the scripts and the rules of a history, not a
//! store or a connection pool; the SQL backends run what it plans.

mod history;
mod plan;

#[cfg(feature = "sqlite")]
pub(crate) use history::{VERSIONS_ADDED, restart_version};
pub(crate) use history::{history_entry, revert_failed, run_plan};

#[cfg(feature = "sqlite")]
pub(crate) mod sqlite {
    refinery::embed_migrations!("migrations/sqlite");
}

#[cfg(feature = "postgres")]
pub(crate) mod postgres {
    refinery::embed_migrations!("migrations/postgres");
}

/// A down script embedded by `build.rs`.
#[derive(Clone, Copy)]
pub(crate) struct DownScript {
    pub(crate) version: i32,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

#[allow(dead_code)] // one table per dialect, whichever features are on
mod down {
    use super::DownScript;
    include!(concat!(env!("OUT_DIR"), "/down_migrations.rs"));
}

/// One SQL dialect's embedded migrations.
#[derive(Clone, Copy)]
pub(crate) struct Dialect {
    runner: fn() -> refinery::Runner,
    pub(super) down: &'static [DownScript],
    /// Tests of failing migrations: one more up script (name, SQL).
    #[cfg(test)]
    extra_up: Option<(&'static str, &'static str)>,
}

/// SQLite's migrations.
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: Dialect = Dialect {
    runner: sqlite::migrations::runner,
    down: down::SQLITE,
    #[cfg(test)]
    extra_up: None,
};

/// PostgreSQL's migrations.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: Dialect = Dialect {
    runner: postgres::migrations::runner,
    down: down::POSTGRES,
    #[cfg(test)]
    extra_up: None,
};

impl Dialect {
    /// This dialect plus one more version that fails halfway through (after
    /// creating a table), for tests of failing migrations.
    #[cfg(test)]
    pub(crate) fn with_failing_next_version(&self) -> Dialect {
        let name = format!("V{}__broken", self.latest() + 1);
        Dialect {
            extra_up: Some((
                Box::leak(name.into_boxed_str()),
                "CREATE TABLE half_done (x integer); INSERT INTO no_such_table VALUES (1);",
            )),
            ..*self
        }
    }

    /// This dialect with a V2 down script that fails after its first statement.
    #[cfg(test)]
    pub(crate) fn with_failing_v2_down(&self) -> Dialect {
        let down: Vec<DownScript> = self
            .down
            .iter()
            .map(|d| DownScript {
                sql: if d.version == 2 {
                    "ALTER TABLE conversations DROP COLUMN message_count; SELECT * FROM no_such_table;"
                } else {
                    d.sql
                },
                ..*d
            })
            .collect();
        Dialect {
            down: Box::leak(down.into_boxed_slice()),
            ..*self
        }
    }

    /// refinery's runner over this dialect's embedded up scripts.
    pub(crate) fn runner(&self) -> refinery::Runner {
        #[cfg(test)]
        if let Some((name, sql)) = self.extra_up {
            let mut list = (self.runner)().get_migrations().clone();
            list.extend(refinery::Migration::unapplied(name, sql).ok());
            return refinery::Runner::new(&list);
        }
        (self.runner)()
    }

    pub(super) fn known(&self) -> Vec<refinery::Migration> {
        let mut known = self.runner().get_migrations().clone();
        known.sort_by_key(|m| m.version());
        known
    }

    /// The newest version this build knows.
    pub(crate) fn latest(&self) -> i64 {
        self.known()
            .iter()
            .map(|m| i64::from(m.version()))
            .max()
            .unwrap_or(0)
    }
}
