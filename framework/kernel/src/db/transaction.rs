//! Transactions that behave the same on every backend, and which failures to retry.
//!
//! [`transaction!`](crate::transaction) runs one body inside `BEGIN … COMMIT` (rolled
//! back on `Err`) on whichever backend the [`DbConn`](super::DbConn) holds. How each
//! backend begins differs, and that difference is kept here:
//! - PostgreSQL: `BEGIN TRANSACTION ISOLATION LEVEL …` in one statement.
//! - MySQL/MariaDB: `SET TRANSACTION ISOLATION LEVEL …; BEGIN` in one round trip.
//! - SQLite: `BEGIN IMMEDIATE`, so the transaction holds the write lock from its first
//!   statement. A deferred `BEGIN` that reads and then writes fails at once with
//!   `SQLITE_BUSY` when another writer committed in between (the busy timeout does not
//!   apply to that upgrade); SQLite is always serializable, so the isolation is ignored.
//!
//! Deadlocks, serialization failures and lock timeouts are part of normal life under
//! contention: [`is_transient`] tells them apart so callers retry the whole transaction
//! a bounded number of times ([`RetryPolicy`]).

use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as QueryError, QueryResult};
use diesel_async::{AnsiTransactionManager, AsyncConnection, TransactionManager};
use serde::Deserialize;

use super::{AsyncMysqlConnection, AsyncPgConnection, Backend, SqliteConn};
use crate::backoff::{RetrySchedule, Transient};

/// Transaction isolation level; `backend_default` sends nothing (PostgreSQL: read
/// committed, MySQL/MariaDB: repeatable read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Whatever the server is configured with.
    #[default]
    BackendDefault,
    /// `READ COMMITTED`.
    ReadCommitted,
    /// `REPEATABLE READ`.
    RepeatableRead,
    /// `SERIALIZABLE`.
    Serializable,
}

impl Isolation {
    /// The statement that begins a transaction at this level on `backend`, as
    /// [`transaction!`](crate::transaction) sends it; for code that drives a
    /// transaction itself (e.g. pipelining `BEGIN` with the first statement).
    pub fn begin_statement(self, backend: Backend) -> String {
        match (backend, self.sql()) {
            (Backend::Sqlite, _) => "BEGIN IMMEDIATE".to_owned(),
            (_, None) => "BEGIN".to_owned(),
            (Backend::Postgres, Some(level)) => {
                format!("BEGIN TRANSACTION ISOLATION LEVEL {level}")
            }
            (Backend::Mysql, Some(level)) => {
                format!("SET TRANSACTION ISOLATION LEVEL {level}; BEGIN")
            }
        }
    }

    fn sql(self) -> Option<&'static str> {
        match self {
            Isolation::BackendDefault => None,
            Isolation::ReadCommitted => Some("READ COMMITTED"),
            Isolation::RepeatableRead => Some("REPEATABLE READ"),
            Isolation::Serializable => Some("SERIALIZABLE"),
        }
    }
}

/// A connection that can begin a transaction the way its backend needs; used by
/// [`transaction!`](crate::transaction).
pub trait BeginTransaction: AsyncConnection {
    /// Begins a transaction at `isolation`.
    fn begin_with(
        &mut self,
        isolation: Isolation,
    ) -> impl std::future::Future<Output = QueryResult<()>> + Send;
}

impl BeginTransaction for AsyncPgConnection {
    async fn begin_with(&mut self, isolation: Isolation) -> QueryResult<()> {
        let sql = isolation.begin_statement(Backend::Postgres);
        AnsiTransactionManager::begin_transaction_sql(self, &sql).await
    }
}

impl BeginTransaction for AsyncMysqlConnection {
    async fn begin_with(&mut self, isolation: Isolation) -> QueryResult<()> {
        let sql = isolation.begin_statement(Backend::Mysql);
        AnsiTransactionManager::begin_transaction_sql(self, &sql).await
    }
}

impl BeginTransaction for SqliteConn {
    async fn begin_with(&mut self, _isolation: Isolation) -> QueryResult<()> {
        self.spawn_blocking(|c| {
            diesel::connection::AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
        })
        .await
    }
}

/// Commits after `Ok`, rolls back after `Err`; used by [`transaction!`](crate::transaction).
pub async fn finish<C, T, E>(conn: &mut C, result: Result<T, E>) -> Result<T, E>
where
    C: AsyncConnection,
    E: From<QueryError>,
{
    match result {
        Ok(value) => {
            C::TransactionManager::commit_transaction(conn).await?;
            Ok(value)
        }
        Err(e) => {
            // A failed rollback marks the connection broken; the pool then discards it.
            if let Err(rollback) = C::TransactionManager::rollback_transaction(conn).await {
                tracing::warn!(error = %rollback, "rollback failed");
            }
            Err(e)
        }
    }
}

/// Runs `body` in a transaction on a [`DbConn`](super::DbConn): committed when it
/// yields `Ok`, rolled back on `Err` (including an early `?`). The body's error type
/// must implement `From<diesel::result::Error>`; end the body with
/// `Ok::<_, YourError>(value)` so the compiler knows it.
///
/// ```no_run
/// # use diesel::prelude::*;
/// # use weapp::diesel_async::RunQueryDsl;
/// # diesel::table! { stock (product_id) { product_id -> BigInt, qty -> BigInt } }
/// # async fn take(ctx: &weapp::AppContext) -> Result<bool, weapp::db::DbError> {
/// use weapp::db::Isolation;
/// let mut conn = ctx.db().conn().await?;
/// let taken = weapp::transaction!(conn, Isolation::BackendDefault, |c| {
///     let rows = diesel::update(stock::table.filter(stock::product_id.eq(1)).filter(stock::qty.ge(2)))
///         .set(stock::qty.eq(stock::qty - 2))
///         .execute(c)
///         .await?;
///     Ok::<_, weapp::db::DbError>(rows == 1)
/// })?;
/// # Ok(taken) }
/// ```
#[macro_export]
macro_rules! transaction {
    ($conn:expr, $isolation:expr, |$c:ident| $body:expr) => {
        $crate::transaction!($conn, $isolation, |$c, _backend| $body)
    };
    ($conn:expr, $isolation:expr, |$c:ident, $backend:ident| $body:expr) => {
        $crate::with_conn!($conn, |$c, $backend| {
            match $crate::db::BeginTransaction::begin_with(&mut *$c, $isolation).await {
                Err(e) => Err(e.into()),
                Ok(()) => {
                    let result = async { $body }.await;
                    $crate::db::transaction::finish(&mut *$c, result).await
                }
            }
        })
    };
}

/// Whether a failed statement or commit is worth retrying as a whole transaction:
/// serialization failures (PostgreSQL 40001), deadlocks (PostgreSQL 40P01, MySQL 1213),
/// lock wait timeouts (MySQL 1205) and a busy SQLite database.
///
/// diesel reports only PostgreSQL's 40001 as its own kind; the others arrive as
/// `Unknown` with the server's (English) message, which is matched here.
pub fn is_transient(error: &QueryError) -> bool {
    match error {
        QueryError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        QueryError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message().to_ascii_lowercase();
            message.contains("deadlock")
                || message.contains("lock wait timeout exceeded")
                || message.contains("database is locked")
                || message.contains("could not serialize access")
        }
        _ => false,
    }
}

/// How often, and how patiently, to retry a transaction that failed transiently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Wait before the first retry, doubled each time, with jitter.
    pub base_delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay_ms: 2,
        }
    }
}

impl RetrySchedule for RetryPolicy {
    fn wait_after(&self, failed: u32) -> Option<Duration> {
        if failed >= self.max_attempts {
            return None;
        }
        let base = crate::backoff::exponential_ms(self.base_delay_ms, u64::MAX, failed.min(10));
        // Jitter spreads out transactions that collided, so they do not collide again.
        Some(crate::backoff::jittered(base))
    }
}

/// Deadlocks, serialization failures and a busy SQLite: see [`is_transient`].
impl Transient for QueryError {
    fn is_transient(&self) -> bool {
        is_transient(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_by_attempts() {
        let policy = RetryPolicy {
            max_attempts: 3,
            base_delay_ms: 10,
        };
        assert!(policy.wait_after(1).is_some());
        assert!(policy.wait_after(2).is_some());
        assert_eq!(policy.wait_after(3), None);
        let wait = policy.wait_after(2).expect("retry");
        assert!(wait <= Duration::from_millis(40), "{wait:?}");
    }

    #[test]
    fn deadlocks_and_busy_databases_are_transient() {
        let unknown =
            |m: &str| QueryError::DatabaseError(DatabaseErrorKind::Unknown, Box::new(m.to_owned()));
        assert!(is_transient(&unknown("deadlock detected")));
        assert!(is_transient(&unknown(
            "Deadlock found when trying to get lock; try restarting transaction"
        )));
        assert!(is_transient(&unknown(
            "Lock wait timeout exceeded; try restarting transaction"
        )));
        assert!(is_transient(&unknown("database is locked")));
        assert!(!is_transient(&unknown("syntax error")));
        assert!(!is_transient(&QueryError::NotFound));
    }
}
