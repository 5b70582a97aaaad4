//! The transactional outbox: events are rows written in the transaction that caused
//! them, and a worker publishes them on the app's event bus after commit.
//!
//! A worker claims a batch of due rows with a lease in `locked_until`, so several
//! instances share the work without locks held across the publish. A failed publish
//! is retried with exponential backoff; after `order.outbox.max_attempts` the row is
//! parked as `failed` and logged. Delivery is at least once: subscribers deduplicate
//! by [`Event::id`](weapp::events::Event::id).

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use weapp::db::{DbConn, PrepareOnce};
use weapp::events::Event;
use weapp::{AppContext, Shutdown, with_conn};

use crate::error::OrderError;
use crate::model::now_ms;
use crate::schema::order_outbox as outbox;
use crate::service::Orders;

/// An outbox row to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = outbox)]
pub(crate) struct NewEvent {
    topic: &'static str,
    payload: String,
    state: &'static str,
    attempts: i32,
    next_attempt_at: i64,
    created_at: i64,
}

impl NewEvent {
    /// An event about an order, with no personal data (the user only by id).
    pub(crate) fn order(
        topic: &'static str,
        order_id: i64,
        user_id: Option<i64>,
        total_fen: i64,
        now: i64,
    ) -> NewEvent {
        NewEvent::new(
            topic,
            serde_json::json!({ "order_id": order_id, "user_id": user_id, "total_fen": total_fen }),
            now,
        )
    }

    /// Any event.
    pub(crate) fn new(topic: &'static str, payload: serde_json::Value, now: i64) -> NewEvent {
        NewEvent {
            topic,
            payload: payload.to_string(),
            state: "pending",
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
        }
    }
}

/// A claimed outbox row, as published.
#[derive(Debug, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = outbox)]
struct Claimed {
    id: i64,
    topic: String,
    payload: String,
    attempts: i32,
}

/// PostgreSQL's claim: the due rows in the due index's order, skipping rows another
/// worker is claiming right now (`SKIP LOCKED`), leased in the same statement. The
/// ids are collected into an array so the update finds its rows by primary key
/// whatever the planner believes about the table's size: a queue table's statistics
/// lag far behind it.
const CLAIM_DUE_PG: &str = "UPDATE order_outbox \
     SET locked_until = $1, claim_token = $2, attempts = attempts + 1 \
     WHERE id = ANY(ARRAY(SELECT id FROM order_outbox \
         WHERE state = 'pending' AND next_attempt_at <= $3 \
         AND (locked_until IS NULL OR locked_until < $3) \
         ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)) \
     RETURNING id, topic, payload, attempts";

/// The prefix of outbox event ids on the bus.
pub const EVENT_ID_PREFIX: &str = "order-outbox:";

impl Orders {
    /// Publishes a batch of due events; returns how many were attempted.
    ///
    /// The batch is claimed (see [`Orders::claim_due`]), published at once, and the
    /// delivered ones are marked done with one more update.
    pub async fn deliver_outbox(&self, ctx: &AppContext) -> Result<usize, OrderError> {
        let mut conn = self.db.conn().await?;
        let claimed = self.claim_due(&mut conn, now_ms()).await?;
        drop(conn);
        if claimed.is_empty() {
            return Ok(0);
        }
        let attempted = claimed.len();
        let events = claimed
            .iter()
            .map(|row| Event {
                id: format!("{EVENT_ID_PREFIX}{}", row.id),
                topic: row.topic.clone(),
                payload: serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::Null),
            })
            .collect();
        // One publish for the batch: batch subscribers (the audit log) write it at once.
        let outcomes = ctx.events().publish_batch(ctx, events).await;
        let mut delivered = Vec::with_capacity(attempted);
        for (row, outcome) in claimed.into_iter().zip(outcomes) {
            match outcome {
                Ok(()) => delivered.push(row.id),
                Err(e) => {
                    self.record_failure(row.id, row.attempts, &e.to_string())
                        .await?
                }
            }
        }
        if !delivered.is_empty() {
            let now = now_ms();
            let mut conn = self.db.conn().await?;
            with_conn!(conn, |c| {
                diesel::update(outbox::table.filter(outbox::id.eq_any(&delivered)))
                    .set((
                        outbox::state.eq("done"),
                        outbox::done_at.eq(Some(now)),
                        outbox::locked_until.eq(None::<i64>),
                        outbox::last_error.eq(None::<String>),
                    ))
                    .execute(c)
                    .await
            })?;
        }
        Ok(attempted)
    }

    /// Claims up to a batch of due events for this worker: stamps a lease in
    /// `locked_until` and this claim's random token, bumps `attempts`, and returns
    /// the claimed rows by id.
    ///
    /// PostgreSQL claims in one statement ([`CLAIM_DUE_PG`]). MySQL and SQLite read
    /// the due ids, claim them with one conditional update, and read back the rows
    /// carrying this claim's token (the ones it won against other instances).
    async fn claim_due(&self, conn: &mut DbConn, now: i64) -> Result<Vec<Claimed>, OrderError> {
        let settings = &self.config.outbox;
        let token = weapp::plugin::claim_token();
        let lease_until = now + settings.lease_ms;
        if let DbConn::Postgres(c) = conn {
            let mut claimed: Vec<Claimed> = diesel::sql_query(CLAIM_DUE_PG)
                .bind::<BigInt, _>(lease_until)
                .bind::<BigInt, _>(token)
                .bind::<BigInt, _>(now)
                .bind::<BigInt, _>(settings.batch_size)
                .prepare_once()
                .load(&mut **c)
                .await?;
            claimed.sort_by_key(|row| row.id);
            return Ok(claimed);
        }
        let claimable = outbox::state.eq("pending").and(
            outbox::locked_until
                .is_null()
                .or(outbox::locked_until.lt(now)),
        );
        let due: Vec<i64> = with_conn!(*conn, |c| {
            outbox::table
                .filter(claimable)
                .filter(outbox::next_attempt_at.le(now))
                // The due index's order, so the scan stops after a batch.
                .order((outbox::next_attempt_at, outbox::id))
                .select(outbox::id)
                .limit(settings.batch_size)
                .load(c)
                .await
        })?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        Ok(with_conn!(*conn, |c| {
            diesel::update(
                outbox::table
                    .filter(outbox::id.eq_any(&due))
                    .filter(claimable),
            )
            .set((
                outbox::locked_until.eq(lease_until),
                outbox::claim_token.eq(token),
                outbox::attempts.eq(outbox::attempts + 1),
            ))
            .execute(c)
            .await?;
            outbox::table
                .filter(outbox::id.eq_any(&due))
                .filter(outbox::claim_token.eq(token))
                .order(outbox::id)
                .select(Claimed::as_select())
                .load(c)
                .await
        })?)
    }

    /// Schedules a retry with backoff, or parks the event after its last attempt.
    async fn record_failure(&self, id: i64, attempts: i32, error: &str) -> Result<(), OrderError> {
        let settings = &self.config.outbox;
        let now = now_ms();
        let (state, next_attempt_at) = if attempts >= settings.max_attempts {
            tracing::error!(
                event_id = id,
                attempts,
                error,
                "outbox event failed for good"
            );
            ("failed", now)
        } else {
            (
                "pending",
                now + weapp::plugin::backoff_ms(
                    settings.base_backoff_ms,
                    settings.max_backoff_ms,
                    attempts,
                ),
            )
        };
        let mut conn = self.db.conn().await?;
        with_conn!(conn, |c| {
            diesel::update(outbox::table.find(id))
                .set((
                    outbox::state.eq(state),
                    outbox::next_attempt_at.eq(next_attempt_at),
                    outbox::locked_until.eq(None::<i64>),
                    outbox::last_error.eq(Some(error)),
                    // A parked event is finished too (for purging).
                    outbox::done_at.eq((state == "failed").then_some(now)),
                ))
                .execute(c)
                .await
        })?;
        Ok(())
    }

    /// Deletes delivered and parked events that finished more than
    /// `order.outbox.keep_finished_s` before `now`; returns how many.
    pub async fn purge_outbox(&self, now: i64) -> Result<usize, OrderError> {
        let cutoff = now.saturating_sub(self.config.outbox.keep_finished_s.saturating_mul(1000));
        let mut conn = self.db.conn().await?;
        Ok(with_conn!(conn, |c| {
            diesel::delete(
                outbox::table
                    .filter(outbox::state.ne("pending"))
                    .filter(outbox::done_at.lt(cutoff)),
            )
            .execute(c)
            .await
        })?)
    }
}

/// The worker: delivers due events until shutdown, pausing when idle.
pub(crate) async fn run_worker(ctx: AppContext, shutdown: Shutdown) {
    let Some(orders) = ctx.get::<Orders>() else {
        return;
    };
    let idle = std::time::Duration::from_millis(orders.config.outbox.poll_interval_ms);
    let full = usize::try_from(orders.config.outbox.batch_size).unwrap_or(1);
    shutdown
        .drain("outbox delivery", idle, full, || {
            let (orders, ctx) = (orders.clone(), ctx.clone());
            async move { orders.deliver_outbox(&ctx).await }
        })
        .await;
}
