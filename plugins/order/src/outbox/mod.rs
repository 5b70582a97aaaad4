//! The transactional outbox: events are rows written in the transaction that caused
//! them, and a worker publishes them on the app's event bus after commit.
//!
//! The outbox is a [`LeaseQueue`] delivering [at least once](Delivery::AtLeastOnce):
//! a worker claims a batch of due rows with a lease, so several instances share the
//! work without locks held across the publish. It finds them two ways: by the ids
//! committed transactions hand it (`hints`), in batches, read without a claim since
//! the sweep leaves a fresh event to its writer for ten seconds; and by sweeping the
//! pending index now and then for what no hint named (`worker`). A failed publish
//! is retried with exponential backoff; after `order.outbox.max_attempts` the row is
//! parked as `failed` and logged. Subscribers deduplicate by
//! [`Event::id`](weapp::events::Event::id). Events are published as shared
//! ([`EventBus::publish_shared_batch`](weapp::events::EventBus::publish_shared_batch)):
//! with the Redis relay a row is done once its event is appended to the stream.

pub(crate) mod backlog;
pub(crate) mod hints;
pub(crate) mod worker;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use weapp::AppContext;
use weapp::db::Db;
use weapp::events::{Event, TypedEvent};
use weapp::queue::{Delivery, LeaseQueue, QueueRow, QueueSettings, QueueTable};
use weapp::with_conn;

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

/// How long an event is not due for the sweep after its transaction wrote it.
///
/// Every transaction that writes an event hands its id to this instance's worker
/// after commit (`hints`), which delivers it first: reading the row and marking it
/// done, with no claim statement between (a third of the outbox's writes per
/// event). Only an event whose hint was lost (its instance stopped, or the hint
/// queue was full) waits this long for the sweep; one the worker is still behind on
/// by then may be published by both, which at-least-once delivery allows.
const HINTED_GRACE_MS: i64 = 10_000;

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
    /// An event of one of the plugin's [`crate::events`] types, written at `now`;
    /// hand its id to [`Outbox::hint`] once the transaction committed.
    pub(crate) fn new<E: TypedEvent>(event: &E, now: i64) -> NewEvent {
        // Through `Value`, whose keys are sorted: the stored text is the same
        // whatever order the type declares its fields in.
        let payload = serde_json::to_value(event).unwrap_or_default();
        NewEvent {
            topic: E::TOPIC,
            payload: payload.to_string(),
            state: weapp::queue::PENDING,
            attempts: 0,
            next_attempt_at: now + HINTED_GRACE_MS,
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

/// Who counted the attempt being made: the claim that took the rows (it increments
/// `attempts`), or the delivery itself (hinted rows are read, not claimed).
#[derive(Debug, Clone, Copy)]
enum Counted {
    ByClaim,
    Here,
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
        self.publish(ctx, claimed.rows, Counted::ByClaim).await
    }

    /// Publishes the next batch of events this instance was told about (see
    /// `hints`), or with `only_full` nothing until a whole batch waits; returns
    /// how many ids it took. The rows are read, not claimed: the sweep leaves them
    /// alone for [`HINTED_GRACE_MS`] after they were written, and those it claimed
    /// since (their lease running) are left to it.
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
        let now = now_ms();
        let mut conn = self.db.conn().await?;
        let rows: Vec<(i64, String, String, i32)> = with_conn!(conn, |c| {
            outbox::table
                .filter(outbox::id.eq_any(&ids))
                // "Not finished" rather than the state, which would match the
                // pending index's predicate: the planner (with a queue table's
                // stale statistics) might walk that index, dead entries and all,
                // instead of looking up a batch of primary keys.
                .filter(outbox::done_at.is_null())
                .filter(
                    outbox::locked_until
                        .is_null()
                        .or(outbox::locked_until.lt(now)),
                )
                .select((outbox::id, outbox::topic, outbox::payload, outbox::attempts))
                .order(outbox::id)
                .load(c)
                .await
        })?;
        drop(conn);
        let rows = rows
            .into_iter()
            .map(|(id, topic, payload, attempts)| Claimed {
                id,
                topic,
                payload,
                // This delivery is an attempt, as a claim would have counted it.
                attempts: attempts + 1,
            })
            .collect();
        self.publish(ctx, rows, Counted::Here).await?;
        Ok(ids.len())
    }

    /// Publishes claimed events, marks the delivered ones done and schedules retries
    /// of the rest; returns how many were attempted.
    async fn publish(
        &self,
        ctx: &AppContext,
        claimed: Vec<Claimed>,
        counted: Counted,
    ) -> Result<usize, OrderError> {
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
        // Delivered ids by the attempts they took.
        let mut delivered: std::collections::BTreeMap<i32, Vec<i64>> = Default::default();
        let mut conn = self.db.conn().await?;
        for (row, outcome) in claimed.into_iter().zip(outcomes) {
            match outcome {
                Ok(()) => delivered.entry(row.attempts).or_default().push(row.id),
                Err(e) => {
                    let error = e.to_string();
                    let attempts = [("attempts", Some(i64::from(row.attempts)))];
                    let failed = self
                        .queue
                        .fail(
                            &mut conn,
                            row.id,
                            row.attempts,
                            &error,
                            true,
                            now_ms(),
                            &attempts,
                        )
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
        let now = now_ms();
        match counted {
            Counted::ByClaim => {
                let ids: Vec<i64> = delivered.into_values().flatten().collect();
                self.queue.complete(&mut conn, &ids, now, &[]).await?;
            }
            // Nearly always one statement: hinted rows are fresh (attempts 1 now).
            Counted::Here => {
                for (attempts, ids) in delivered {
                    let attempts = [("attempts", Some(i64::from(attempts)))];
                    self.queue.complete(&mut conn, &ids, now, &attempts).await?;
                }
            }
        }
        Ok(attempted)
    }

    /// Deletes delivered and parked events that finished more than
    /// `order.outbox.keep_finished_s` before `now`; returns how many.
    pub(crate) async fn purge(&self, now: i64) -> Result<usize, OrderError> {
        let mut conn = self.db.conn().await?;
        Ok(self.queue.purge(&mut conn, now).await?)
    }
}
