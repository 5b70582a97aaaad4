//! Claiming events: a lease in `locked_until`, a fresh `claim_token` and one more
//! attempt, so that several instances share the outbox without holding locks while
//! they publish.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{Array, BigInt};
use diesel_async::RunQueryDsl;
use weapp::db::{DbConn, PrepareOnce};
use weapp::with_conn;

use super::Claimed;
use crate::error::OrderError;
use crate::schema::order_outbox as outbox;
use crate::service::Orders;

/// PostgreSQL's sweep: the due rows in the pending index's order, skipping rows
/// another worker is claiming right now (`SKIP LOCKED`), leased in the same
/// statement. The ids are collected into an array so the update finds its rows by
/// primary key whatever the planner believes about the table's size: a queue
/// table's statistics lag far behind it.
const CLAIM_DUE_PG: &str = "UPDATE order_outbox \
     SET locked_until = $1, claim_token = $2, attempts = attempts + 1 \
     WHERE id = ANY(ARRAY(SELECT id FROM order_outbox \
         WHERE state = 'pending' AND next_attempt_at <= $3 \
         AND (locked_until IS NULL OR locked_until < $3) \
         ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)) \
     RETURNING id, topic, payload, attempts";

/// PostgreSQL's claim of hinted events, by primary key: those not finished yet and
/// not leased (a sweep may have taken some first). "Not finished" is `done_at IS
/// NULL`, which holds exactly while `state = 'pending'`, but written so it does not
/// match the pending index's predicate: with a queue table's stale statistics the
/// planner would otherwise walk that index (and its dead entries) instead of looking
/// up a hundred primary keys.
const CLAIM_IDS_PG: &str = "UPDATE order_outbox \
     SET locked_until = $1, claim_token = $2, attempts = attempts + 1 \
     WHERE id = ANY($4) AND done_at IS NULL AND next_attempt_at <= $3 \
         AND (locked_until IS NULL OR locked_until < $3) \
     RETURNING id, topic, payload, attempts";

/// One claim's lease: until when, and the token that marks its rows.
struct Lease {
    until: i64,
    token: i64,
}

impl Lease {
    /// PostgreSQL `sql` with `$1` the lease's end, `$2` its token and `$3` now.
    fn bound(&self, sql: &'static str, now: i64) -> BoxedSqlQuery<'static, Pg, SqlQuery> {
        diesel::sql_query(sql)
            .into_boxed()
            .bind::<BigInt, _>(self.until)
            .bind::<BigInt, _>(self.token)
            .bind::<BigInt, _>(now)
    }
}

impl Orders {
    fn lease(&self, now: i64) -> Lease {
        Lease {
            until: now + self.config.outbox.lease_ms,
            token: weapp::plugin::claim_token(),
        }
    }

    /// The sweep: claims up to a batch of due events, found by scanning the pending
    /// index, and returns them by id.
    ///
    /// PostgreSQL claims in one statement ([`CLAIM_DUE_PG`]). MySQL and SQLite read
    /// the due ids, then claim them as [`Orders::claim_ids`] does.
    pub(super) async fn claim_due(
        &self,
        conn: &mut DbConn,
        now: i64,
    ) -> Result<Vec<Claimed>, OrderError> {
        let lease = self.lease(now);
        if let DbConn::Postgres(c) = conn {
            let claimed = lease
                .bound(CLAIM_DUE_PG, now)
                .bind::<BigInt, _>(self.config.outbox.batch_size)
                .prepare_once()
                .load(&mut **c)
                .await?;
            return Ok(by_id(claimed));
        }
        let due: Vec<i64> = with_conn!(*conn, |c| {
            outbox::table
                .filter(outbox::state.eq("pending"))
                .filter(outbox::next_attempt_at.le(now))
                .filter(
                    outbox::locked_until
                        .is_null()
                        .or(outbox::locked_until.lt(now)),
                )
                // The pending index's order, so the scan stops after a batch.
                .order((outbox::next_attempt_at, outbox::id))
                .select(outbox::id)
                .limit(self.config.outbox.batch_size)
                .load(c)
                .await
        })?;
        self.claim_with(conn, &due, now, lease).await
    }

    /// Claims the events among `ids` that are still due and not leased, by primary
    /// key, and returns them by id.
    pub(super) async fn claim_ids(
        &self,
        conn: &mut DbConn,
        ids: &[i64],
        now: i64,
    ) -> Result<Vec<Claimed>, OrderError> {
        let lease = self.lease(now);
        if let DbConn::Postgres(c) = conn {
            let claimed = lease
                .bound(CLAIM_IDS_PG, now)
                .bind::<Array<BigInt>, _>(ids)
                .prepare_once()
                .load(&mut **c)
                .await?;
            return Ok(by_id(claimed));
        }
        self.claim_with(conn, ids, now, lease).await
    }

    /// MySQL and SQLite: leases the claimable rows among `ids` with one conditional
    /// update, then reads back the rows carrying this lease's token (the ones it won
    /// against other instances).
    async fn claim_with(
        &self,
        conn: &mut DbConn,
        ids: &[i64],
        now: i64,
        lease: Lease,
    ) -> Result<Vec<Claimed>, OrderError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(with_conn!(*conn, |c| {
            diesel::update(
                outbox::table
                    .filter(outbox::id.eq_any(ids))
                    .filter(outbox::state.eq("pending"))
                    .filter(outbox::next_attempt_at.le(now))
                    .filter(
                        outbox::locked_until
                            .is_null()
                            .or(outbox::locked_until.lt(now)),
                    ),
            )
            .set((
                outbox::locked_until.eq(lease.until),
                outbox::claim_token.eq(lease.token),
                outbox::attempts.eq(outbox::attempts + 1),
            ))
            .execute(c)
            .await?;
            outbox::table
                .filter(outbox::id.eq_any(ids))
                .filter(outbox::claim_token.eq(lease.token))
                .order(outbox::id)
                .select(Claimed::as_select())
                .load(c)
                .await
        })?)
    }
}

fn by_id(mut claimed: Vec<Claimed>) -> Vec<Claimed> {
    claimed.sort_by_key(|row| row.id);
    claimed
}
