//! The transactional outbox: events are rows written in the transaction that caused
//! them, and a worker publishes them on the app's event bus after commit.
//!
//! The outbox is a [`LeaseQueue`] delivering [at least once](Delivery::AtLeastOnce):
//! a worker claims a batch of due rows with a lease, so several instances share the
//! work without locks held across the publish. It finds them two ways: by the ids
//! committed transactions hand it (`hints`), in batches, and by sweeping the pending
//! index now and then for what no hint named (`worker`). A failed publish is retried
//! with exponential backoff; after `order.outbox.max_attempts` the row is parked as
//! `failed` and logged. Subscribers deduplicate by
//! [`Event::id`](weapp::events::Event::id). Events are published as shared
//! ([`EventBus::publish_shared_batch`](weapp::events::EventBus::publish_shared_batch)):
//! with the Redis relay a row is done once its event is appended to the stream.

pub(crate) mod backlog;
pub(crate) mod hints;
pub(crate) mod worker;

use diesel::prelude::*;
use weapp::AppContext;
use weapp::db::Db;
use weapp::events::{Event, TypedEvent};
use weapp::queue::{Delivery, LeaseQueue, QueueRow, QueueSettings, QueueTable};

use crate::config::OutboxConfig;
use crate::error::OrderError;
use crate::model::now_ms;
use crate::schema::order_outbox as outbox;
use hints::OutboxHints;

/// The outbox table as a lease queue.
const TABLE: QueueTable = QueueTable {
    name: "order_outbox",
    finished_at: "done_at",
    error: "last_error",
    done: "done",
    parked: "failed",
    delivery: Delivery::AtLeastOnce,
};

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
            state: weapp::queue::PENDING,
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
        }
    }
}

/// A claimed outbox row, as published.
#[derive(Debug, QueryableByName)]
#[diesel(table_name = outbox)]
struct Claimed {
    id: i64,
    topic: String,
    payload: String,
    attempts: i32,
}

impl QueueRow for Claimed {
    const COLUMNS: &'static str = "id, topic, payload, attempts";
    fn id(&self) -> i64 {
        self.id
    }
}

/// The prefix of outbox event ids on the bus.
pub const EVENT_ID_PREFIX: &str = "order-outbox:";

/// Ids of undelivered events held for the worker: the backlog the order path
/// allows and a margin (the bound is checked once a sweep interval), or a fixed
/// amount without a bound.
fn hint_capacity(config: &OutboxConfig) -> usize {
    const WITHOUT_BOUND: usize = 100_000;
    match usize::try_from(config.max_behind) {
        Ok(0) | Err(_) => WITHOUT_BOUND,
        Ok(bound) => bound.saturating_mul(2).max(10_000),
    }
}

/// The order plugin's outbox: its queue and the hints of this instance's commits.
pub(crate) struct Outbox {
    db: Db,
    queue: LeaseQueue,
    pub(crate) hints: OutboxHints,
    pub(crate) config: OutboxConfig,
    pub(crate) backlog: backlog::Backlog,
}

impl Outbox {
    /// The outbox of the app's database, as `order.outbox` configures it.
    pub(crate) fn new(db: Db, config: &OutboxConfig) -> Outbox {
        let settings = QueueSettings {
            batch_size: config.batch_size,
            lease_ms: config.lease_ms,
            max_attempts: config.max_attempts,
            base_backoff_ms: config.base_backoff_ms,
            max_backoff_ms: config.max_backoff_ms,
            keep_finished_s: config.keep_finished_s,
        };
        Outbox {
            db,
            queue: LeaseQueue::new(TABLE, settings),
            hints: OutboxHints::new(
                usize::try_from(config.batch_size).unwrap_or(1),
                config.max_batch_size,
                hint_capacity(config),
            ),
            config: config.clone(),
            backlog: backlog::Backlog::default(),
        }
    }

    /// Counts the events not handled yet (`order_events_behind`, the order bound).
    pub(crate) async fn refresh_backlog(&self, ctx: &AppContext) -> Result<i64, OrderError> {
        self.backlog.refresh(&self.db, ctx).await
    }

    /// Names events whose transaction committed, for the worker.
    pub(crate) fn hint(&self, committed: impl IntoIterator<Item = i64>) {
        self.hints.push(committed);
    }

    /// The sweep: publishes a batch of due events found by scanning the outbox;
    /// returns how many were attempted.
    pub(crate) async fn deliver_due(&self, ctx: &AppContext) -> Result<usize, OrderError> {
        let mut conn = self.db.conn().await?;
        let claimed = self.queue.claim_due(&mut conn, now_ms()).await?;
        drop(conn);
        self.publish(ctx, claimed.rows).await
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
            true => self.hints.take_full_batch(),
            false => self.hints.take_batch(),
        };
        if ids.is_empty() {
            return Ok(0);
        }
        let mut conn = self.db.conn().await?;
        let claimed = self.queue.claim_ids(&mut conn, &ids, now_ms()).await?;
        drop(conn);
        self.publish(ctx, claimed.rows).await?;
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
        // Shared: with the Redis relay, every instance's subscribers take their
        // share, and a row is done once its event is in the stream.
        let outcomes = ctx.events().publish_shared_batch(ctx, events).await;
        let mut delivered = Vec::with_capacity(attempted);
        let mut conn = self.db.conn().await?;
        for (row, outcome) in claimed.into_iter().zip(outcomes) {
            match outcome {
                Ok(()) => delivered.push(row.id),
                Err(e) => {
                    let error = e.to_string();
                    let failed = self
                        .queue
                        .fail(&mut conn, row.id, row.attempts, &error, true, now_ms(), &[])
                        .await?;
                    if failed == weapp::queue::Failed::Parked {
                        tracing::error!(
                            event_id = row.id,
                            attempts = row.attempts,
                            error,
                            "outbox event failed for good"
                        );
                    }
                }
            }
        }
        self.queue
            .complete(&mut conn, &delivered, now_ms(), &[])
            .await?;
        Ok(attempted)
    }

    /// Deletes delivered and parked events that finished more than
    /// `order.outbox.keep_finished_s` before `now`; returns how many.
    pub(crate) async fn purge(&self, now: i64) -> Result<usize, OrderError> {
        let mut conn = self.db.conn().await?;
        Ok(self.queue.purge(&mut conn, now).await?)
    }
}
