//! One subscription's consumer on this instance: reads new entries, claims those
//! left pending too long, hands them to the subscription and acknowledges what it
//! took.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};

use super::{StreamRelay, appended_at_ms, decode, metrics};
use crate::AppContext;
use crate::events::SubscriptionGroup;
use crate::kv::{KvError, RedisConnection};
use crate::shutdown::Shutdown;

/// Pages of `XAUTOCLAIM` one claim pass goes through at most, so a large backlog
/// of stale entries does not starve new ones.
const CLAIM_PAGES: usize = 8;

/// A consumer gone this long with nothing pending is removed from its group.
const FORGET_CONSUMER_AFTER: Duration = Duration::from_secs(3600);

/// Runs until `stop`: the consumer of `group` named [`StreamRelay::consumer`].
pub(super) async fn run(
    relay: Arc<StreamRelay>,
    ctx: AppContext,
    group: SubscriptionGroup,
    stop: Shutdown,
) {
    let mut reader = match relay.client.dedicated_connection(relay.block()) {
        Ok(conn) => conn,
        Err(e) => {
            tracing::error!(group = %group.name, error = %e, "event relay consumer cannot start");
            return;
        }
    };
    let claim_every = Duration::from_millis(relay.config.claim_interval_ms);
    let mut group_ready = false;
    let mut last_claim: Option<Instant> = None;
    let mut failures: u32 = 0;
    while !stop.is_shutting_down() {
        let step = async {
            if !group_ready {
                relay.create_group(&group.name).await?;
                group_ready = true;
            }
            if last_claim.is_none_or(|at| at.elapsed() >= claim_every) {
                last_claim = Some(Instant::now());
                claim_stale(&relay, &ctx, &group).await?;
                maintain(&relay, &group).await?;
            }
            let entries = read_new(&relay, &mut reader, &group.name).await?;
            handle(&relay, &ctx, &group, entries).await
        };
        match step.await {
            Ok(()) => failures = 0,
            Err(e) => {
                // The stream or group went away (deleted, or Redis restarted empty).
                if e.0.contains("NOGROUP") {
                    group_ready = false;
                }
                failures = failures.saturating_add(1);
                tracing::warn!(group = %group.name, error = %e, "event relay consumer failed; retrying");
                let wait = crate::backoff::exponential_ms(100, 5_000, failures);
                tokio::select! {
                    () = tokio::time::sleep(crate::backoff::jittered(wait)) => {}
                    () = stop.wait() => {}
                }
            }
        }
    }
}

/// New entries for `group`, waiting up to `events.block_ms` for some.
async fn read_new(
    relay: &StreamRelay,
    reader: &mut RedisConnection,
    group: &str,
) -> Result<Vec<StreamId>, KvError> {
    let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(group)
        .arg(&relay.consumer)
        .arg("COUNT")
        .arg(relay.config.batch_size)
        .arg("BLOCK")
        .arg(relay.config.block_ms)
        .arg("STREAMS")
        .arg(&relay.key)
        .arg(">")
        .query_async(reader)
        .await?;
    Ok(reply
        .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
        .unwrap_or_default())
}

/// Hands `entries` to the subscription and acknowledges those it took; entries
/// that hold no event go to the dead-letter stream.
async fn handle(
    relay: &StreamRelay,
    ctx: &AppContext,
    group: &SubscriptionGroup,
    entries: Vec<StreamId>,
) -> Result<(), KvError> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut events = Vec::with_capacity(entries.len());
    let mut carried = Vec::with_capacity(entries.len());
    for entry in &entries {
        match decode(entry) {
            Ok(event) => {
                events.push(Arc::new(event));
                carried.push(entry);
            }
            Err(why) => relay.bury(&group.name, entry, &why).await?,
        }
    }
    let handled = ctx.events().deliver_to(ctx, group, &events).await;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut acknowledged = Vec::with_capacity(carried.len());
    let mut failed = 0u64;
    for (entry, ok) in carried.into_iter().zip(handled) {
        if ok {
            acknowledged.push(entry.id.as_str());
            if let Some(at) = appended_at_ms(&entry.id) {
                let seconds = (now_ms - at).max(0) as f64 / 1000.0;
                metrics::latency(&group.name).observe(seconds);
            }
        } else {
            failed += 1;
        }
    }
    metrics::handled(&group.name, "handled").inc_by(acknowledged.len() as u64);
    metrics::handled(&group.name, "failed").inc_by(failed);
    relay.acknowledge(&group.name, &acknowledged).await
}

/// Claims entries pending longer than `events.claim_idle_ms` in `group` (a dead
/// consumer's, or ones whose handler failed), buries those delivered too often and
/// handles the rest.
async fn claim_stale(
    relay: &StreamRelay,
    ctx: &AppContext,
    group: &SubscriptionGroup,
) -> Result<(), KvError> {
    let mut cursor = "0-0".to_owned();
    for _ in 0..CLAIM_PAGES {
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(&relay.key)
            .arg(&group.name)
            .arg(&relay.consumer)
            .arg(relay.config.claim_idle_ms)
            .arg(&cursor)
            .arg("COUNT")
            .arg(relay.config.batch_size)
            .query_async(&mut relay.conn.clone())
            .await?;
        if !reply.deleted_ids.is_empty() {
            // Trimmed away before this group handled them.
            tracing::error!(
                group = %group.name,
                lost = reply.deleted_ids.len(),
                "pending shared events were trimmed from the stream before they were handled; raise events.max_len or events.max_age_s"
            );
            metrics::handled(&group.name, "lost").inc_by(reply.deleted_ids.len() as u64);
        }
        if !reply.claimed.is_empty() {
            let deliveries = deliveries(relay, &group.name, &reply.claimed).await?;
            let mut retry = Vec::with_capacity(reply.claimed.len());
            for entry in reply.claimed {
                let count = deliveries.get(&entry.id).copied().unwrap_or(0);
                if count > relay.config.max_deliveries {
                    let why = format!("not handled after {} deliveries", count - 1);
                    relay.bury(&group.name, &entry, &why).await?;
                } else {
                    retry.push(entry);
                }
            }
            handle(relay, ctx, group, retry).await?;
        }
        cursor = reply.next_stream_id;
        if cursor == "0-0" {
            break;
        }
    }
    Ok(())
}

/// How many times each of `entries` was delivered to `group` (this claim included).
async fn deliveries(
    relay: &StreamRelay,
    group: &str,
    entries: &[StreamId],
) -> Result<HashMap<String, u64>, KvError> {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Ok(HashMap::new());
    };
    let reply: StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(&relay.key)
        .arg(group)
        .arg(&first.id)
        .arg(&last.id)
        .arg(entries.len())
        .arg(&relay.consumer)
        .query_async(&mut relay.conn.clone())
        .await?;
    Ok(reply
        .ids
        .into_iter()
        .map(|p| (p.id, p.times_delivered as u64))
        .collect())
}

/// Trims by age, reports the groups' standing, and forgets consumers long gone.
async fn maintain(relay: &StreamRelay, group: &SubscriptionGroup) -> Result<(), KvError> {
    relay.trim_by_age().await?;
    for standing in relay.standings().await? {
        metrics::pending(&standing.name).set(standing.pending as i64);
        if let Some(lag) = standing.lag {
            metrics::lag(&standing.name).set(lag as i64);
        }
    }
    let consumers: redis::streams::StreamInfoConsumersReply = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(&relay.key)
        .arg(&group.name)
        .query_async(&mut relay.conn.clone())
        .await?;
    for gone in consumers.consumers.iter().filter(|c| {
        c.pending == 0
            && c.name != relay.consumer
            && Duration::from_millis(c.idle as u64) > FORGET_CONSUMER_AFTER
    }) {
        redis::cmd("XGROUP")
            .arg("DELCONSUMER")
            .arg(&relay.key)
            .arg(&group.name)
            .arg(&gone.name)
            .query_async::<i64>(&mut relay.conn.clone())
            .await?;
    }
    Ok(())
}
