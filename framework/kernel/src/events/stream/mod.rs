//! Shared events through a Redis stream with one consumer group per subscription.
//!
//! [`StreamRelay::append`] adds each shared event to the stream `<prefix><stream>`
//! (trimmed approximately to `events.max_len` as it grows). Every instance runs one
//! consumer per subscription of its bus, in the subscription's group
//! ([`SubscriptionGroup`]): Redis hands each entry to one consumer of each group, so
//! each subscription handles each event once across the instances, wherever it was
//! published. A consumer acknowledges what its handler took; what failed stays
//! pending and, like what a killed instance had read, is claimed again by a live
//! consumer (`XAUTOCLAIM`) once it has been pending `events.claim_idle_ms`. Delivery
//! is therefore at least once: handlers are idempotent by [`Event::id`]. An event
//! delivered `events.max_deliveries` times is moved to `<stream>:dead` and logged.
//!
//! A group created by a new subscription starts at the stream's end: it sees the
//! events appended after its first start ([`StreamRelay::create_groups`]), not the
//! stream's history, which would replay old events to a new subscriber.
//!
//! Metrics: `events_relay_appended_total`, `events_relay_handled_total{group,outcome}`,
//! `events_relay_latency_seconds{group}` (append to handled), and, refreshed every
//! `events.claim_interval_ms`, `events_stream_lag{group}` (entries the group has not
//! read yet) and `events_stream_pending{group}` (read, not acknowledged).

mod consumer;
pub mod entry;
mod metrics;

use std::sync::Arc;
use std::time::Duration;

use redis::streams::StreamInfoGroupsReply;

use super::{Event, EventsConfig, SubscriptionGroup};
use crate::AppContext;
use crate::kv::{KvError, RedisClient, RedisConnection};
use crate::shutdown::Shutdown;

/// Entries the dead-letter stream keeps at most.
const DEAD_MAX_LEN: u64 = 10_000;

/// The relay of one app's shared events; see the [module docs](self).
pub struct StreamRelay {
    client: RedisClient,
    conn: RedisConnection,
    key: String,
    dead_key: String,
    config: EventsConfig,
    consumer: String,
}

/// One group's standing in the stream, as `XINFO GROUPS` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStanding {
    /// The group ([`SubscriptionGroup::name`]).
    pub name: String,
    /// Entries read by one of its consumers and not acknowledged yet.
    pub pending: u64,
    /// Entries not read by the group yet; `None` when Redis cannot tell (after
    /// entries were deleted from the middle of the stream).
    pub lag: Option<u64>,
}

impl StreamRelay {
    /// The relay over `client`'s Redis, as `config` sets it up; connects lazily.
    pub fn new(client: RedisClient, config: &EventsConfig) -> Result<Self, KvError> {
        let key = format!("{}{}", client.key_prefix(), config.stream);
        let consumer = match config.consumer.is_empty() {
            false => config.consumer.clone(),
            true => default_consumer_name(),
        };
        Ok(StreamRelay {
            conn: client.connection()?,
            dead_key: format!("{key}:dead"),
            key,
            client,
            config: config.clone(),
            consumer,
        })
    }

    /// The stream's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The dead-letter stream's key.
    pub fn dead_letter_key(&self) -> &str {
        &self.dead_key
    }

    /// This instance's consumer name in every group.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Appends `events` to the stream, in order, in one round trip.
    pub async fn append(&self, events: &[Event]) -> Result<(), KvError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for event in events {
            pipe.cmd("XADD")
                .arg(&self.key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.config.max_len)
                .arg("*")
                .arg("id")
                .arg(&event.id)
                .arg("topic")
                .arg(&event.topic)
                .arg("payload")
                .arg(event.payload.to_string())
                .ignore();
        }
        pipe.query_async::<()>(&mut self.conn.clone()).await?;
        metrics::appended().inc_by(events.len() as u64);
        Ok(())
    }

    /// Creates the consumer group of every subscription of the app's bus that has
    /// none yet, at the stream's end. Awaited before anything publishes (the app
    /// builder does, after every plugin's `on_start`), so that a first start's
    /// events are not appended before their groups exist; a consumer creates its
    /// group itself if this failed.
    pub async fn create_groups(&self, ctx: &AppContext) -> Result<(), KvError> {
        for group in ctx.events().groups() {
            self.create_group(&group.name).await?;
        }
        Ok(())
    }

    /// Runs this instance's consumer of `group` until `stop`: one task per
    /// subscription of the app's bus ([`EventBus::groups`](super::EventBus::groups)),
    /// started after every plugin has subscribed.
    pub async fn run_consumer(
        self: Arc<Self>,
        ctx: AppContext,
        group: SubscriptionGroup,
        stop: Shutdown,
    ) {
        consumer::run(self, ctx, group, stop).await
    }

    /// Every group's pending entries and lag.
    pub async fn standings(&self) -> Result<Vec<GroupStanding>, KvError> {
        let reply: StreamInfoGroupsReply = match redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&self.key)
            .query_async(&mut self.conn.clone())
            .await
        {
            Ok(reply) => reply,
            // No stream yet: nothing was appended and no group created.
            Err(e) if e.to_string().contains("no such key") => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        Ok(reply
            .groups
            .into_iter()
            .map(|g| GroupStanding {
                name: g.name,
                pending: g.pending as u64,
                lag: g.lag.map(|l| l as u64),
            })
            .collect())
    }

    /// Creates `group` at the stream's end (and the stream, if absent); an existing
    /// group is left as it is.
    async fn create_group(&self, group: &str) -> Result<(), KvError> {
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.key)
            .arg(group)
            .arg("$")
            .arg("MKSTREAM")
            .query_async(&mut self.conn.clone())
            .await;
        match created {
            Err(e) if e.code() != Some("BUSYGROUP") => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Acknowledges `ids` in `group`.
    async fn acknowledge(&self, group: &str, ids: &[&str]) -> Result<(), KvError> {
        if ids.is_empty() {
            return Ok(());
        }
        redis::cmd("XACK")
            .arg(&self.key)
            .arg(group)
            .arg(ids)
            .query_async::<i64>(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    /// Moves an entry `group` gave up on to the dead-letter stream, then
    /// acknowledges it.
    async fn bury(&self, group: &str, entry: &entry::Entry, why: &str) -> Result<(), KvError> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.dead_key)
            .arg("MAXLEN")
            .arg("~")
            .arg(DEAD_MAX_LEN)
            .arg("*");
        for (field, value) in &entry.fields {
            cmd.arg(field).arg(value);
        }
        cmd.arg("stream_id")
            .arg(&entry.id)
            .arg("group")
            .arg(group)
            .arg("reason")
            .arg(why);
        cmd.query_async::<String>(&mut self.conn.clone()).await?;
        tracing::error!(
            group,
            stream_id = %entry.id,
            event_id = %String::from_utf8_lossy(entry.field("id").unwrap_or_default()),
            reason = why,
            dead_letter = %self.dead_key,
            "shared event given up on"
        );
        metrics::handled(group, "dead").inc();
        self.acknowledge(group, &[entry.id.as_str()]).await
    }

    /// Trims entries older than `events.max_age_s`.
    async fn trim_by_age(&self) -> Result<(), KvError> {
        let max_age_ms = self.config.max_age_s.saturating_mul(1000);
        let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
        let oldest_kept = now_ms.saturating_sub(max_age_ms);
        // Exact, not `~`: approximate trimming only drops whole internal nodes
        // (about a hundred entries), so a quiet stream would keep old events.
        redis::cmd("XTRIM")
            .arg(&self.key)
            .arg("MINID")
            .arg(oldest_kept)
            .query_async::<i64>(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    fn block(&self) -> Duration {
        Duration::from_millis(self.config.block_ms)
    }
}

/// `host-pid-random`: unique per process, readable in `XINFO CONSUMERS`.
fn default_consumer_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "weapp".to_owned());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &suffix[..8])
}
