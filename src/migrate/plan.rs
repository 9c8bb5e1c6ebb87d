//! Planning: checking a database's history against the embedded scripts,
//! and the steps from where it is to where it should be.

use super::Dialect;
use super::history::migration_message;
use crate::error::{Error, Result};
use crate::model::{Direction, MigrationStatus, MigrationTarget, PlannedMigration};

impl Dialect {
    /// Refuses a history this build cannot work with: a version newer than
    /// it knows ([`Error::SchemaTooNew`]), an unknown or skipped version, or
    /// a script edited after it was applied ([`Error::Migration`]).
    pub(crate) fn verify(&self, applied: &[refinery::Migration]) -> Result<()> {
        let known = self.known();
        let supported = self.latest();
        let database = applied
            .iter()
            .map(|m| i64::from(m.version()))
            .max()
            .unwrap_or(0);
        if database > supported {
            return Err(Error::SchemaTooNew {
                database,
                supported,
            });
        }
        for a in applied {
            let Some(k) = known.iter().find(|k| k.version() == a.version()) else {
                return Err(migration_message(format!(
                    "the database has version {} ({}), which this build does not know",
                    a.version(),
                    a.name()
                )));
            };
            if k.name() != a.name() || k.checksum() != a.checksum() {
                return Err(migration_message(format!(
                    "migration V{}__{} was changed after it was applied \
                     (checksum {} in the database, {} in this build)",
                    k.version(),
                    k.name(),
                    a.checksum(),
                    k.checksum()
                )));
            }
        }
        if let Some(skipped) = known.iter().find(|k| {
            i64::from(k.version()) < database && !applied.iter().any(|a| a.version() == k.version())
        }) {
            return Err(migration_message(format!(
                "migration V{}__{} was skipped: it is older than the database's version {database}",
                skipped.version(),
                skipped.name()
            )));
        }
        Ok(())
    }

    /// Every known migration with its state, after [`verify`](Self::verify).
    pub(crate) fn status(&self, applied: &[refinery::Migration]) -> Result<Vec<MigrationStatus>> {
        self.verify(applied)?;
        Ok(self
            .known()
            .iter()
            .map(|m| MigrationStatus {
                version: i64::from(m.version()),
                name: m.name().to_owned(),
                applied_on: applied
                    .iter()
                    .find(|a| a.version() == m.version())
                    .and_then(|a| a.applied_on().copied()),
                checksum: m.checksum(),
            })
            .collect())
    }

    /// The steps from the `applied` history to `target`, after [`verify`](Self::verify).
    pub(crate) fn plan(
        &self,
        applied: &[refinery::Migration],
        target: MigrationTarget,
    ) -> Result<Vec<PlannedMigration>> {
        self.verify(applied)?;
        let known = self.known();
        let current = applied
            .iter()
            .map(|m| i64::from(m.version()))
            .max()
            .unwrap_or(0);
        let target = match target {
            MigrationTarget::Latest => self.latest(),
            MigrationTarget::Version(0) => 0,
            MigrationTarget::Version(v) if known.iter().any(|k| i64::from(k.version()) == v) => v,
            MigrationTarget::Version(v) => {
                return Err(Error::invalid(
                    "version",
                    format!(
                        "{v} is not a version this build knows (0..={})",
                        self.latest()
                    ),
                ));
            }
        };
        let step = |m: &refinery::Migration, direction, sql: &str| PlannedMigration {
            version: i64::from(m.version()),
            name: m.name().to_owned(),
            direction,
            sql: sql.to_owned(),
        };
        if target >= current {
            return Ok(known
                .iter()
                .filter(|k| (current + 1..=target).contains(&i64::from(k.version())))
                .map(|k| step(k, Direction::Up, k.sql().unwrap_or_default()))
                .collect());
        }
        known
            .iter()
            .rev()
            .filter(|k| (target + 1..=current).contains(&i64::from(k.version())))
            .map(|k| {
                let down = self
                    .down
                    .iter()
                    .find(|d| d.version == k.version() && d.name == k.name())
                    .ok_or_else(|| {
                        migration_message(format!(
                            "migration V{}__{} has no down script",
                            k.version(),
                            k.name()
                        ))
                    })?;
                Ok(step(k, Direction::Down, down.sql))
            })
            .collect()
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    #[cfg(feature = "postgres")]
    use crate::migrate::POSTGRES;
    use crate::migrate::SQLITE;

    #[test]
    fn every_version_has_a_down_script_in_both_dialects() {
        #[allow(unused_mut)]
        let mut dialects = vec![("sqlite", &SQLITE)];
        #[cfg(feature = "postgres")]
        dialects.push(("postgres", &POSTGRES));
        for (name, dialect) in dialects {
            let known: Vec<(i32, String)> = dialect
                .known()
                .iter()
                .map(|m| (m.version(), m.name().to_owned()))
                .collect();
            let down: Vec<(i32, String)> = dialect
                .down
                .iter()
                .map(|d| (d.version, d.name.to_owned()))
                .collect();
            assert_eq!(known, down, "{name}: up and down scripts pair up");
            assert!(known.len() >= 2, "{name}: at least V1 and V2");
        }
        #[cfg(feature = "postgres")]
        {
            let names = |d: &Dialect| -> Vec<(i32, String)> {
                d.known()
                    .iter()
                    .map(|m| (m.version(), m.name().to_owned()))
                    .collect()
            };
            assert_eq!(
                names(&SQLITE),
                names(&POSTGRES),
                "the dialects hold the same versions"
            );
        }
    }

    #[test]
    fn plans_go_up_and_down_in_order() {
        let none = SQLITE.plan(&[], MigrationTarget::Latest).unwrap();
        let versions: Vec<(i64, Direction)> =
            none.iter().map(|s| (s.version, s.direction)).collect();
        let ups: Vec<(i64, Direction)> =
            (1..=SQLITE.latest()).map(|v| (v, Direction::Up)).collect();
        assert_eq!(versions, ups);
        assert!(none[0].sql.contains("CREATE TABLE"));
        let applied: Vec<refinery::Migration> = SQLITE
            .known()
            .into_iter()
            .map(|m| {
                refinery::Migration::applied(
                    m.version(),
                    m.name().to_owned(),
                    OffsetDateTime::UNIX_EPOCH,
                    m.checksum(),
                )
            })
            .collect();
        let down = SQLITE.plan(&applied, MigrationTarget::Version(0)).unwrap();
        let versions: Vec<(i64, Direction)> =
            down.iter().map(|s| (s.version, s.direction)).collect();
        let downs: Vec<(i64, Direction)> = (1..=SQLITE.latest())
            .rev()
            .map(|v| (v, Direction::Down))
            .collect();
        assert_eq!(versions, downs);
        assert!(down.last().expect("V1").sql.contains("DROP TABLE"));
        assert!(
            SQLITE
                .plan(&applied, MigrationTarget::Latest)
                .unwrap()
                .is_empty()
        );
        assert!(
            SQLITE
                .plan(&applied, MigrationTarget::Version(SQLITE.latest() + 1))
                .is_err()
        );
    }

    /// A shipped migration is never edited: its checksum is pinned here.
    #[test]
    fn shipped_migrations_keep_their_checksums() {
        type Pins = &'static [(i32, u64)];
        let pinned: &[(&str, &Dialect, Pins)] = &[
            ("sqlite", &SQLITE, SQLITE_CHECKSUMS),
            #[cfg(feature = "postgres")]
            ("postgres", &POSTGRES, POSTGRES_CHECKSUMS),
        ];
        for (name, dialect, checksums) in pinned {
            for (version, checksum) in *checksums {
                let m = dialect
                    .known()
                    .into_iter()
                    .find(|m| m.version() == *version)
                    .unwrap();
                assert_eq!(
                    m.checksum(),
                    *checksum,
                    "{name} V{version} was edited after it shipped: add a new version instead"
                );
            }
        }
    }

    const SQLITE_CHECKSUMS: &[(i32, u64)] = &[
        (1, 13_637_810_636_776_134_596),
        (2, 2_539_034_352_414_106_656),
        (3, 7_503_696_678_266_180_047),
        (4, 11_256_560_541_955_449_824),
        (5, 11_073_491_811_287_549_737),
        (6, 802_222_026_931_295_024),
        (7, 1_001_027_754_692_275_101),
        (8, 17_146_690_062_836_081_969),
        (9, 17_556_508_797_512_186_080),
        (10, 2_253_087_522_701_295_255),
        (11, 9_084_692_664_117_442_703),
    ];
    #[cfg(feature = "postgres")]
    const POSTGRES_CHECKSUMS: &[(i32, u64)] = &[
        (1, 7_564_644_575_195_131_879),
        (2, 159_051_661_184_464_278),
        (3, 17_752_081_730_667_504_522),
        (4, 1_742_462_363_685_212_156),
        (5, 11_699_153_112_665_450_149),
        (6, 16_449_966_844_640_470_258),
        (7, 5_944_645_022_755_994_308),
        (8, 5_731_596_462_189_771_597),
        (9, 3_313_990_245_604_425_039),
        (10, 4_184_828_717_988_682_568),
        (11, 6_601_078_016_920_824_678),
    ];
}
