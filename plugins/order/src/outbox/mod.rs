//! The transactional outbox: events are rows written in the transaction that caused
//! them, and a worker publishes them on the app's event bus after commit.
//!
//! A worker claims a batch of due rows with a lease in `locked_until`, so several
//! instances share the work without locks held across the publish. It finds them
//! two ways: by the ids committed transactions hand it (`hints`), in batches, and
//! by sweeping the pending index now and then for what no hint named (`worker`).
//! A failed publish is retried with exponential backoff; after
//! `order.outbox.max_attempts` the row is parked as `failed` and logged. Delivery is
//! at least once: subscribers deduplicate by [`Event::id`](weapp::events::Event::id).

mod claim;
pub(crate) mod hints;
pub(crate) mod worker;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use weapp::events::Event;
use weapp::{AppContext, with_conn};

use weapp::events::TypedEvent;

use crate::error::OrderError;
use crate::model::now_ms;
use crate::schema::order_outbox as outbox;
use crate::service::Orders;

/// An outbox row to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = outbox)]
pub(crate) struct NewEvent {
    pub(crate) topic: &'static str,
    pub(crate) payload: String,
    pub(crate) state: &'static str,
    pub(crate) attempts: i32,
    pub(crate) next_attempt_at: i64,
    pub(crate) created_at: i64,
}

impl NewEvent {
    /// An event of one of the plugin's [`crate::events`] types.
    pub(crate) fn new<E: TypedEvent>(event: &E, now: i64) -> NewEvent {
        // Through `Value`, whose keys are sorted: the stored text is the same
        // whatever order the type declares its fields in.
        let payload = serde_json::to_value(event).unwrap_or_default();
        NewEvent {
            topic: E::TOPIC,
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
pub(crate) struct Claimed {
    id: i64,
    topic: String,
    payload: String,
    attempts: i32,
}

/// The prefix of outbox event ids on the bus.
pub const EVENT_ID_PREFIX: &str = "order-outbox:";

impl Orders {
    /// The sweep: publishes a batch of due events found by scanning the outbox;
    /// returns how many were attempted.
    ///
    /// The batch is claimed (see `Orders::claim_due`), published at once, and the
    /// delivered ones are marked done with one more update.
    pub async fn deliver_outbox(&self, ctx: &AppContext) -> Result<usize, OrderError> {
        let mut conn = self.db.conn().await?;
        let claimed = self.claim_due(&mut conn, now_ms()).await?;
        drop(conn);
        self.publish(ctx, claimed).await
    }

    /// Publishes the next batch of events this instance was told about (see
    /// `hints`), or with `only_full` nothing until a whole batch waits; returns
    /// how many ids it took.
    pub(crate) async fn deliver_hinted(
        &self,
        ctx: &AppContext,
        only_full: bool,
    ) -> Result<usize, OrderError> {
        let ids = match only_full {
            true => self.outbox_hints.take_full_batch(),
            false => self.outbox_hints.take_batch(),
        };
        if ids.is_empty() {
            return Ok(0);
        }
        let mut conn = self.db.conn().await?;
        let claimed = self.claim_ids(&mut conn, &ids, now_ms()).await?;
        drop(conn);
        self.publish(ctx, claimed).await?;
        Ok(ids.len())
    }

    /// Publishes claimed events, marks the delivered ones done and schedules retries
    /// of the rest; returns how many were attempted.
    async fn publish(&self, ctx: &AppContext, claimed: Vec<Claimed>) -> Result<usize, OrderError> {
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
