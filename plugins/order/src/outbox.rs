//! The transactional outbox: events are rows written in the transaction that caused
//! them, and a worker publishes them on the app's event bus after commit.
//!
//! A worker claims one due row at a time with a conditional update (a lease in
//! `locked_until`), so several instances share the work without locks held across the
//! publish. A failed publish is retried with exponential backoff; after
//! `order.outbox.max_attempts` the row is parked as `failed` and logged. Delivery is at
//! least once: subscribers deduplicate by [`Event::id`](weapp::events::Event::id).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
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

/// The prefix of outbox event ids on the bus.
pub const EVENT_ID_PREFIX: &str = "order-outbox:";

impl Orders {
    /// Publishes a batch of due events; returns how many were attempted.
    ///
    /// Claims cost two statements per batch, not per event: due ids are read, then
    /// claimed with one conditional update that stamps this worker's random token
    /// (so it can tell which rows it won against other instances), and the
    /// delivered ones are marked done with one more update.
    pub async fn deliver_outbox(&self, ctx: &AppContext) -> Result<usize, OrderError> {
        let settings = &self.config.outbox;
        let now = now_ms();
        let token = weapp::plugin::claim_token();
        let mut conn = self.db.conn().await?;
        let claimable = outbox::state.eq("pending").and(
            outbox::locked_until
                .is_null()
                .or(outbox::locked_until.lt(now)),
        );
        let due: Vec<i64> = with_conn!(conn, |c| {
            outbox::table
                .filter(claimable)
                .filter(outbox::next_attempt_at.le(now))
                .order(outbox::id)
                .select(outbox::id)
                .limit(settings.batch_size)
                .load(c)
                .await
        })?;
        if due.is_empty() {
            return Ok(0);
        }
        let claimed: Vec<(i64, String, String, i32)> = with_conn!(conn, |c| {
            diesel::update(
                outbox::table
                    .filter(outbox::id.eq_any(&due))
                    .filter(claimable),
            )
            .set((
                outbox::locked_until.eq(now + settings.lease_ms),
                outbox::claim_token.eq(token),
                outbox::attempts.eq(outbox::attempts + 1),
            ))
            .execute(c)
            .await?;
            outbox::table
                .filter(outbox::id.eq_any(&due))
                .filter(outbox::claim_token.eq(token))
                .order(outbox::id)
                .select((outbox::id, outbox::topic, outbox::payload, outbox::attempts))
                .load(c)
                .await
        })?;
        drop(conn);
        let attempted = claimed.len();
        let events = claimed
            .iter()
            .map(|(id, topic, payload, _)| Event {
                id: format!("{EVENT_ID_PREFIX}{id}"),
                topic: topic.clone(),
                payload: serde_json::from_str(payload).unwrap_or(serde_json::Value::Null),
            })
            .collect();
        // One publish for the batch: batch subscribers (the audit log) write it at once.
        let outcomes = ctx.events().publish_batch(ctx, events).await;
        let mut delivered = Vec::with_capacity(attempted);
        for ((id, _, _, attempts), outcome) in claimed.into_iter().zip(outcomes) {
            match outcome {
                Ok(()) => delivered.push(id),
                Err(e) => self.record_failure(id, attempts, &e.to_string()).await?,
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
