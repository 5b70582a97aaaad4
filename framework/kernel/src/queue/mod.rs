//! The lease queue: a database table worked through by any number of workers and
//! instances, without locks held while a row's job runs.
//!
//! A worker *claims* a batch of due rows: it stamps them with a lease
//! (`locked_until`) and a random `claim_token`, and reads back the rows carrying its
//! token — the ones it won against other workers. It then does each row's job and
//! *settles* the row: [`LeaseQueue::complete`] when it succeeded,
//! [`LeaseQueue::fail`] when it did not, which schedules another attempt after an
//! exponential backoff or, after the last attempt (or a final error), *parks* the row
//! in its failed state. Finished rows are deleted by [`LeaseQueue::purge`] once they
//! are old enough.
//!
//! What happens when a worker stops mid-job is the one real choice, made per table
//! with [`Delivery`]:
//! - [`Delivery::AtLeastOnce`] (the order outbox): the lease runs out and the row is
//!   claimed again. Each claim counts an attempt. The job must be idempotent.
//! - [`Delivery::AtMostOnce`] (subscribe messages): a claim moves the row to a
//!   *claimed* state, [`LeaseQueue::start`] moves it to an *in flight* state (and
//!   counts the attempt) in a committed update before the job runs, and
//!   [`LeaseQueue::recover`] parks rows whose lease ran out in flight, because the job
//!   may or may not have happened. It is never done twice.
//!
//! The table needs these columns besides its own: `id` (auto-increment primary
//! key), `state` (text), `attempts` (int), `next_attempt_at`, `locked_until` and
//! `claim_token` (big ints, the last two nullable), a nullable finish time and a
//! nullable error text (their names are the table's, see [`QueueTable`]). Rows are
//! inserted by their owner, in the `pending` state with `next_attempt_at` = now.
//!
//! ```
//! use weapp::queue::{Delivery, QueueTable};
//!
//! /// The order plugin's outbox.
//! const OUTBOX: QueueTable = QueueTable {
//!     name: "order_outbox",
//!     finished_at: "done_at",
//!     error: "last_error",
//!     done: "done",
//!     parked: "failed",
//!     delivery: Delivery::AtLeastOnce,
//! };
//! # let _ = OUTBOX;
//! ```

mod settle;
mod statements;

use diesel::QueryableByName;
use diesel::mysql::Mysql;
use diesel::pg::Pg;
use diesel::result::QueryResult;
use diesel::sqlite::Sqlite;

use crate::db::DbConn;
use statements::{Value, execute, load};

/// The state every queued row starts in.
pub const PENDING: &str = "pending";

/// A table used as a lease queue; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueTable {
    /// The table.
    pub name: &'static str,
    /// The column set when a row finishes (done or parked).
    pub finished_at: &'static str,
    /// The column holding the last failure, cleared on success.
    pub error: &'static str,
    /// The state of a row whose job succeeded.
    pub done: &'static str,
    /// The state of a row parked after its last attempt or a final error.
    pub parked: &'static str,
    /// What a worker that stops mid-job leaves behind.
    pub delivery: Delivery,
}

/// What becomes of a row whose worker stopped while doing its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// It is claimed again once its lease runs out: jobs must be idempotent.
    AtLeastOnce,
    /// It is parked by [`LeaseQueue::recover`]: the job is never done twice.
    AtMostOnce {
        /// The state of a claimed row not started yet.
        claimed: &'static str,
        /// The state of a row whose job is running.
        in_flight: &'static str,
    },
}

/// How a queue claims and retries; each plugin fills it from its config section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// Rows claimed at most per claim.
    pub batch_size: i64,
    /// How long a claim (and a started job) holds its rows, in milliseconds.
    pub lease_ms: i64,
    /// Attempts before a row is parked.
    pub max_attempts: i32,
    /// Wait before the second attempt, doubled for each further one (ms).
    pub base_backoff_ms: i64,
    /// The longest wait between attempts (ms).
    pub max_backoff_ms: i64,
    /// How long finished rows are kept before [`LeaseQueue::purge`] deletes them (s).
    pub keep_finished_s: i64,
}

/// Columns a claim reads back; derive `QueryableByName` and name them in `COLUMNS`.
pub trait QueueRow:
    QueryableByName<Pg> + QueryableByName<Mysql> + QueryableByName<Sqlite> + Send + 'static
{
    /// The columns, as in a `SELECT` list: `"id, attempts"`.
    const COLUMNS: &'static str;
    /// The row's id.
    fn id(&self) -> i64;
}

/// A claimed row as the queue knows it: its id and the attempts made so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct Claim {
    /// The row's id.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
    /// Attempts so far (this one included under [`Delivery::AtLeastOnce`]).
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub attempts: i32,
}

impl QueueRow for Claim {
    const COLUMNS: &'static str = "id, attempts";
    fn id(&self) -> i64 {
        self.id
    }
}

/// The rows one claim won, and the token that marks them.
#[derive(Debug)]
pub struct Claimed<R> {
    /// The rows, by id.
    pub rows: Vec<R>,
    /// The claim's token: [`LeaseQueue::start`] checks it.
    pub token: i64,
}

/// What [`LeaseQueue::fail`] did with a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// Pending again, due at this time (Unix ms).
    RetryAt(i64),
    /// Parked for good.
    Parked,
}

/// Claims, settles, recovers and purges the rows of one [`QueueTable`].
#[derive(Debug, Clone, Copy)]
pub struct LeaseQueue {
    table: QueueTable,
    settings: QueueSettings,
}

/// A random positive 63-bit token naming one claim, so a worker can tell the rows
/// it won from those another worker (or instance) took.
pub fn claim_token() -> i64 {
    (uuid::Uuid::new_v4().as_u64_pair().0 >> 1) as i64
}

/// The wait after `attempts` attempts (1-based): `base_ms`, doubled per further
/// attempt, at most `max_ms`.
fn backoff_ms(base_ms: i64, max_ms: i64, attempts: i32) -> i64 {
    let exponent = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0);
    let base = u64::try_from(base_ms).unwrap_or(0);
    let max = u64::try_from(max_ms).unwrap_or(0);
    i64::try_from(crate::backoff::exponential_ms(base, max, exponent.min(20))).unwrap_or(i64::MAX)
}

/// `?, ?, …`: one placeholder per id, for `IN (…)` on MySQL and SQLite.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

impl LeaseQueue {
    /// A queue over `table`.
    pub const fn new(table: QueueTable, settings: QueueSettings) -> LeaseQueue {
        LeaseQueue { table, settings }
    }

    /// Its settings.
    pub fn settings(&self) -> &QueueSettings {
        &self.settings
    }

    /// `SET` of a claim; binds the lease's end and its token.
    fn claim_set(&self) -> String {
        match self.table.delivery {
            Delivery::AtLeastOnce => {
                "locked_until = ?, claim_token = ?, attempts = attempts + 1".to_owned()
            }
            Delivery::AtMostOnce { claimed, .. } => {
                format!("state = '{claimed}', locked_until = ?, claim_token = ?")
            }
        }
    }

    /// Which rows a claim may take; binds now, twice.
    fn claimable(&self) -> String {
        match self.table.delivery {
            Delivery::AtLeastOnce => format!(
                "state = '{PENDING}' AND next_attempt_at <= ? \
                 AND (locked_until IS NULL OR locked_until < ?)"
            ),
            Delivery::AtMostOnce { claimed, .. } => format!(
                "((state = '{PENDING}' AND next_attempt_at <= ?) \
                 OR (state = '{claimed}' AND locked_until < ?))"
            ),
        }
    }

    /// Claims up to a batch of due rows, oldest due first, and returns them by id.
    ///
    /// PostgreSQL claims in one statement: the due rows in the pending index's
    /// order, skipping rows another worker is claiming right now (`SKIP LOCKED`);
    /// their ids are collected into an array so the update finds them by primary
    /// key whatever the planner believes about the table's size (a queue table's
    /// statistics lag far behind it). MySQL and SQLite read the due ids, then claim
    /// them as [`LeaseQueue::claim_ids`] does.
    pub async fn claim_due<R: QueueRow>(
        &self,
        conn: &mut DbConn,
        now: i64,
    ) -> QueryResult<Claimed<R>> {
        let token = claim_token();
        let until = now + self.settings.lease_ms;
        let (table, columns) = (self.table.name, R::COLUMNS);
        let (set, claimable) = (self.claim_set(), self.claimable());
        if matches!(conn, DbConn::Postgres(_)) {
            let sql = format!(
                "UPDATE {table} SET {set} WHERE id = ANY(ARRAY(SELECT id FROM {table} \
                 WHERE {claimable} ORDER BY next_attempt_at, id LIMIT ? \
                 FOR UPDATE SKIP LOCKED)) RETURNING {columns}"
            );
            let values = [
                Value::Int(until),
                Value::Int(token),
                Value::Int(now),
                Value::Int(now),
                Value::Int(self.settings.batch_size),
            ];
            let mut rows: Vec<R> = load(conn, &sql, &values).await?;
            // RETURNING gives no order; callers get rows by id on every backend.
            rows.sort_by_key(R::id);
            return Ok(Claimed { rows, token });
        }
        let sql = format!(
            "SELECT id FROM {table} WHERE {claimable} ORDER BY next_attempt_at, id LIMIT ?"
        );
        let values = [
            Value::Int(now),
            Value::Int(now),
            Value::Int(self.settings.batch_size),
        ];
        let due: Vec<statements::Id> = load(conn, &sql, &values).await?;
        let ids: Vec<i64> = due.into_iter().map(|row| row.id).collect();
        self.claim_listed(conn, &ids, now, until, token).await
    }

    /// Claims the rows among `ids` that are still claimable (some other worker may
    /// have taken or finished them), by primary key, and returns them by id.
    pub async fn claim_ids<R: QueueRow>(
        &self,
        conn: &mut DbConn,
        ids: &[i64],
        now: i64,
    ) -> QueryResult<Claimed<R>> {
        let token = claim_token();
        let until = now + self.settings.lease_ms;
        if matches!(conn, DbConn::Postgres(_)) {
            let (table, columns, set) = (self.table.name, R::COLUMNS, self.claim_set());
            // "Not finished" rather than the state: it holds exactly while a row is
            // pending here, but does not match the pending index's predicate, which the
            // planner (with a queue table's stale statistics) would otherwise walk,
            // dead entries and all, instead of looking up a batch of primary keys.
            let claimable = match self.table.delivery {
                Delivery::AtLeastOnce => format!(
                    "{} IS NULL AND next_attempt_at <= ? \
                     AND (locked_until IS NULL OR locked_until < ?)",
                    self.table.finished_at
                ),
                Delivery::AtMostOnce { .. } => self.claimable(),
            };
            let sql = format!(
                "UPDATE {table} SET {set} WHERE id = ANY(?) AND {claimable} RETURNING {columns}"
            );
            let values = [
                Value::Int(until),
                Value::Int(token),
                Value::Ids(ids),
                Value::Int(now),
                Value::Int(now),
            ];
            let mut rows: Vec<R> = load(conn, &sql, &values).await?;
            rows.sort_by_key(R::id);
            return Ok(Claimed { rows, token });
        }
        self.claim_listed(conn, ids, now, until, token).await
    }

    /// MySQL and SQLite: leases the claimable rows among `ids` with one conditional
    /// update, then reads back the rows carrying this claim's token.
    async fn claim_listed<R: QueueRow>(
        &self,
        conn: &mut DbConn,
        ids: &[i64],
        now: i64,
        until: i64,
        token: i64,
    ) -> QueryResult<Claimed<R>> {
        if ids.is_empty() {
            return Ok(Claimed {
                rows: Vec::new(),
                token,
            });
        }
        let (table, columns) = (self.table.name, R::COLUMNS);
        let (set, claimable, listed) =
            (self.claim_set(), self.claimable(), placeholders(ids.len()));
        let mut values = vec![Value::Int(until), Value::Int(token)];
        values.extend(ids.iter().map(|id| Value::Int(*id)));
        values.extend([Value::Int(now), Value::Int(now)]);
        let sql = format!("UPDATE {table} SET {set} WHERE id IN ({listed}) AND {claimable}");
        execute(conn, &sql, &values).await?;
        let mut values: Vec<Value> = ids.iter().map(|id| Value::Int(*id)).collect();
        values.push(Value::Int(token));
        let sql = format!(
            "SELECT {columns} FROM {table} WHERE id IN ({listed}) AND claim_token = ? ORDER BY id"
        );
        let rows = load(conn, &sql, &values).await?;
        Ok(Claimed { rows, token })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff_ms(500, 10_000, 1), 500);
        assert_eq!(backoff_ms(500, 10_000, 3), 2_000);
        assert_eq!(backoff_ms(500, 10_000, 30), 10_000);
        assert_eq!(backoff_ms(500, 10_000, 0), 500);
    }

    #[test]
    fn claim_tokens_are_positive_and_differ() {
        let (a, b) = (claim_token(), claim_token());
        assert!(a >= 0 && b >= 0);
        assert_ne!(a, b);
    }
}
