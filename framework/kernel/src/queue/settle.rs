//! Settling claimed rows: started, done, failed (retried or parked), recovered
//! after a worker stopped, purged once old.

use diesel::result::QueryResult;

use super::statements::{Value, execute};
use super::{Delivery, Failed, LeaseQueue, PENDING, QueueTable, backoff_ms, placeholders};
use crate::db::DbConn;

impl LeaseQueue {
    /// [`Delivery::AtMostOnce`]: marks claimed row `id` in flight and counts the
    /// attempt, committed before the job runs; `false` if the claim was lost (its
    /// lease ran out and another worker took the row).
    pub async fn start(
        &self,
        conn: &mut DbConn,
        id: i64,
        token: i64,
        now: i64,
    ) -> QueryResult<bool> {
        let Delivery::AtMostOnce { claimed, in_flight } = self.table.delivery else {
            // At least once: the claim itself counted the attempt.
            return Ok(true);
        };
        let table = self.table.name;
        let sql = format!(
            "UPDATE {table} SET state = '{in_flight}', attempts = attempts + 1, \
             locked_until = ? WHERE id = ? AND claim_token = ? AND state = '{claimed}'"
        );
        let values = [
            Value::Int(now + self.settings.lease_ms),
            Value::Int(id),
            Value::Int(token),
        ];
        Ok(execute(conn, &sql, &values).await? == 1)
    }

    /// Marks rows `ids` done at `now`; `extra` sets columns of the table's own
    /// (e.g. WeChat's `msgid`) in the same statement.
    pub async fn complete(
        &self,
        conn: &mut DbConn,
        ids: &[i64],
        now: i64,
        extra: &[(&'static str, Option<i64>)],
    ) -> QueryResult<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let (table, done) = (self.table.name, self.table.done);
        let (finished, error) = (self.table.finished_at, self.table.error);
        let extra_set: String = extra.iter().map(|(c, _)| format!(", {c} = ?")).collect();
        let set = format!(
            "state = '{done}', {finished} = ?, locked_until = NULL, claim_token = NULL, \
             {error} = NULL{extra_set}"
        );
        let mut values = vec![Value::Int(now)];
        values.extend(extra.iter().map(|(_, v)| Value::OptInt(*v)));
        if matches!(conn, DbConn::Postgres(_)) {
            values.push(Value::Ids(ids));
            let sql = format!("UPDATE {table} SET {set} WHERE id = ANY(?)");
            return execute(conn, &sql, &values).await;
        }
        values.extend(ids.iter().map(|id| Value::Int(*id)));
        let listed = placeholders(ids.len());
        let sql = format!("UPDATE {table} SET {set} WHERE id IN ({listed})");
        execute(conn, &sql, &values).await
    }

    /// Records a failed attempt of row `id` (`attempts` made so far): pending again
    /// after the backoff if `retry` allows and attempts are left, else parked (and
    /// logged by the caller). `extra` sets columns of the table's own.
    #[allow(clippy::too_many_arguments)]
    pub async fn fail(
        &self,
        conn: &mut DbConn,
        id: i64,
        attempts: i32,
        error: &str,
        retry: bool,
        now: i64,
        extra: &[(&'static str, Option<i64>)],
    ) -> QueryResult<Failed> {
        let s = &self.settings;
        let outcome = if retry && attempts < s.max_attempts {
            Failed::RetryAt(now + backoff_ms(s.base_backoff_ms, s.max_backoff_ms, attempts))
        } else {
            Failed::Parked
        };
        let (state, next, finished) = match outcome {
            Failed::RetryAt(at) => (PENDING, at, None),
            Failed::Parked => (self.table.parked, now, Some(now)),
        };
        let (table, finished_at, error_column) =
            (self.table.name, self.table.finished_at, self.table.error);
        let extra_set: String = extra.iter().map(|(c, _)| format!(", {c} = ?")).collect();
        let sql = format!(
            "UPDATE {table} SET state = ?, next_attempt_at = ?, locked_until = NULL, \
             claim_token = NULL, {error_column} = ?, {finished_at} = ?{extra_set} WHERE id = ?"
        );
        let mut values = vec![
            Value::Text(state),
            Value::Int(next),
            Value::Text(error),
            Value::OptInt(finished),
        ];
        values.extend(extra.iter().map(|(_, v)| Value::OptInt(*v)));
        values.push(Value::Int(id));
        execute(conn, &sql, &values).await?;
        Ok(outcome)
    }

    /// [`Delivery::AtMostOnce`]: parks rows whose worker stopped while their job ran
    /// (lease over, still in flight), with `reason`; returns how many.
    pub async fn recover(&self, conn: &mut DbConn, now: i64, reason: &str) -> QueryResult<usize> {
        let Delivery::AtMostOnce { in_flight, .. } = self.table.delivery else {
            // At least once: a row whose lease ran out is simply claimable again.
            return Ok(0);
        };
        let QueueTable {
            name,
            finished_at,
            error,
            parked,
            ..
        } = self.table;
        let sql = format!(
            "UPDATE {name} SET state = '{parked}', {error} = ?, {finished_at} = ?, \
             locked_until = NULL WHERE state = '{in_flight}' AND locked_until < ?"
        );
        let values = [Value::Text(reason), Value::Int(now), Value::Int(now)];
        execute(conn, &sql, &values).await
    }

    /// Deletes rows finished (done or parked) more than `keep_finished_s` before
    /// `now`; returns how many.
    pub async fn purge(&self, conn: &mut DbConn, now: i64) -> QueryResult<usize> {
        let keep_ms = self.settings.keep_finished_s.saturating_mul(1000);
        let QueueTable {
            name,
            finished_at,
            done,
            parked,
            ..
        } = self.table;
        let sql = format!(
            "DELETE FROM {name} WHERE state IN ('{done}', '{parked}') AND {finished_at} < ?"
        );
        let values = [Value::Int(now.saturating_sub(keep_ms))];
        execute(conn, &sql, &values).await
    }
}
