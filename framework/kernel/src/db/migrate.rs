//! Embedded, per-backend migrations for the framework and every plugin.
//!
//! Each owner (the framework, a plugin) ships an ordered list of [`Migration`]s, each
//! with SQL for the three backends, compiled into the binary with
//! [`migration!`](crate::migration). Owners run in plugin dependency order. The table
//! `weapp_schema_migrations` records `(owner, version, checksum)`, so versions only need
//! to be unique within one owner, and an edited migration that already ran is refused
//! instead of silently skipped. (diesel_migrations keys all migrations by version in
//! one namespace and runs on blocking connections, which is why we do not use it.)
//!
//! PostgreSQL and SQLite apply each migration and its record in one transaction.
//! MySQL commits DDL implicitly, so there a failed migration may be partly applied and
//! must be written to be re-runnable (`IF NOT EXISTS`). Concurrent instances serialise
//! on an advisory lock (`pg_advisory_lock`, `GET_LOCK`; SQLite locks the file).

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use sha2::{Digest, Sha256};

use super::{Backend, Db, DbError};
use crate::with_conn;

/// One schema change with its SQL for each backend.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Sortable, unique within its owner, e.g. `0001_create_products`.
    pub version: &'static str,
    /// SQL for PostgreSQL.
    pub postgres: &'static str,
    /// SQL for MySQL/MariaDB.
    pub mysql: &'static str,
    /// SQL for SQLite.
    pub sqlite: &'static str,
}

impl Migration {
    /// The SQL for one backend.
    pub fn sql(&self, backend: Backend) -> &'static str {
        match backend {
            Backend::Postgres => self.postgres,
            Backend::Mysql => self.mysql,
            Backend::Sqlite => self.sqlite,
        }
    }
}

/// Embeds `migrations/{postgres,mysql,sqlite}/<version>.sql` of the calling crate as a
/// [`Migration`]; a missing file is a compile error.
#[macro_export]
macro_rules! migration {
    ($version:literal) => {
        $crate::db::Migration {
            version: $version,
            postgres: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/migrations/postgres/",
                $version,
                ".sql"
            )),
            mysql: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/migrations/mysql/",
                $version,
                ".sql"
            )),
            sqlite: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/migrations/sqlite/",
                $version,
                ".sql"
            )),
        }
    };
}

/// The migrations of one owner, in the order they run.
#[derive(Debug, Clone, Copy)]
pub struct MigrationSet {
    /// `weapp` for the framework, else the plugin name.
    pub owner: &'static str,
    /// In order of application.
    pub migrations: &'static [Migration],
}

/// What one migration run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// `(owner, version)` of each migration applied by this run, in order.
    pub applied: Vec<(String, String)>,
    /// How many were already applied before.
    pub already_applied: usize,
}

diesel::table! {
    weapp_schema_migrations (owner, version) {
        owner -> Text,
        version -> Text,
        checksum -> Text,
        applied_at -> BigInt,
    }
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS weapp_schema_migrations (\
    owner VARCHAR(100) NOT NULL, version VARCHAR(190) NOT NULL, \
    checksum VARCHAR(64) NOT NULL, applied_at BIGINT NOT NULL, \
    PRIMARY KEY (owner, version))";

fn checksum(sql: &str) -> String {
    weapp_crypto::hex(&Sha256::digest(sql.as_bytes()))
}

/// Whether `sql` has anything but blank lines and `--` comments. A migration may
/// have nothing to do on one backend; MySQL refuses an empty query.
fn has_statements(sql: &str) -> bool {
    sql.lines().any(|line| {
        let line = line.trim();
        !line.is_empty() && !line.starts_with("--")
    })
}

fn lock_sql(backend: Backend) -> Option<(&'static str, &'static str)> {
    match backend {
        Backend::Postgres => Some((
            "SELECT pg_advisory_lock(7765617070)",
            "SELECT pg_advisory_unlock(7765617070)",
        )),
        Backend::Mysql => Some((
            "SELECT GET_LOCK('weapp_schema_migrations', 300)",
            "SELECT RELEASE_LOCK('weapp_schema_migrations')",
        )),
        Backend::Sqlite => None,
    }
}

impl Db {
    /// Applies every pending migration of `sets`, in order, and reports what ran.
    pub async fn migrate(&self, sets: &[MigrationSet]) -> Result<MigrationReport, DbError> {
        let mut conn = match self.conn().await {
            Ok(conn) => conn,
            // The pool says only that it timed out: say why.
            Err(DbError::Unavailable(timed_out)) => {
                return Err(DbError::Unavailable(
                    self.diagnose().await.unwrap_or(timed_out),
                ));
            }
            Err(e) => return Err(e),
        };
        with_conn!(conn, |c, backend| {
            c.batch_execute(CREATE_TABLE).await?;
            let lock = lock_sql(backend);
            if let Some((acquire, _)) = lock {
                diesel::sql_query(acquire).execute(c).await?;
            }
            let result = async {
                let applied: Vec<(String, String, String)> = weapp_schema_migrations::table
                    .select((
                        weapp_schema_migrations::owner,
                        weapp_schema_migrations::version,
                        weapp_schema_migrations::checksum,
                    ))
                    .load(c)
                    .await?;
                let mut report = MigrationReport::default();
                for set in sets {
                    for migration in set.migrations {
                        let sql = migration.sql(backend);
                        let sum = checksum(sql);
                        let previous = applied
                            .iter()
                            .find(|(o, v, _)| o == set.owner && v == migration.version);
                        if let Some((_, _, recorded)) = previous {
                            if *recorded != sum {
                                return Err(DbError::Migration(format!(
                                    "migration {}/{} was changed after it was applied; \
                                     add a new migration instead",
                                    set.owner, migration.version
                                )));
                            }
                            report.already_applied += 1;
                            continue;
                        }
                        let record = diesel::insert_into(weapp_schema_migrations::table).values((
                            weapp_schema_migrations::owner.eq(set.owner),
                            weapp_schema_migrations::version.eq(migration.version),
                            weapp_schema_migrations::checksum.eq(&sum),
                            weapp_schema_migrations::applied_at.eq(chrono::Utc::now().timestamp()),
                        ));
                        let run = if backend == Backend::Mysql {
                            let ddl = if !has_statements(sql) {
                                Ok(())
                            } else {
                                c.batch_execute(sql).await
                            };
                            match ddl {
                                Ok(()) => record.execute(c).await.map(drop),
                                Err(e) => Err(e),
                            }
                        } else {
                            c.transaction(async |c| {
                                if has_statements(sql) {
                                    c.batch_execute(sql).await?;
                                }
                                record.execute(c).await.map(drop)
                            })
                            .await
                        };
                        run.map_err(|e| {
                            DbError::Migration(format!("{}/{}: {e}", set.owner, migration.version))
                        })?;
                        tracing::info!(
                            owner = set.owner,
                            version = migration.version,
                            "applied migration"
                        );
                        report
                            .applied
                            .push((set.owner.to_owned(), migration.version.to_owned()));
                    }
                }
                Ok::<_, DbError>(report)
            }
            .await;
            if let Some((_, release)) = lock {
                diesel::sql_query(release).execute(c).await?;
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::has_statements;

    #[test]
    fn a_migration_of_only_comments_has_nothing_to_run() {
        assert!(!has_statements("-- nothing to do here\n\n   -- really\n"));
        assert!(!has_statements(""));
        assert!(has_statements("-- an index\nCREATE INDEX i ON t (c);"));
    }
}
