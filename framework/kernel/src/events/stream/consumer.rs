//! One subscription's consumer on this instance: reads new entries, claims those
//! left pending too long, hands them to the subscription and acknowledges what it
//! took.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::{Histogram, IntCounter};
use redis::streams::StreamPendingCountReply;

use super::entry::{self, Entry};
use super::{StreamRelay, metrics};
use crate::AppContext;
use crate::events::SubscriptionGroup;
use crate::kv::{KvError, RedisConnection};
use crate::shutdown::Shutdown;

/// Pages of `XAUTOCLAIM` one claim pass goes through at most, so a large backlog
/// of stale entries does not starve new ones.
const CLAIM_PAGES: usize = 8;

/// A consumer gone this long with nothing pending is removed from its group.
const FORGET_CONSUMER_AFTER: Duration = Duration::from_secs(3600);

/// One group's metric series, looked up once rather than per entry.
struct GroupMetrics {
    handled: IntCounter,
    failed: IntCounter,
    latency: Histogram,
}

impl GroupMetrics {
    fn of(group: &str) -> GroupMetrics {
        GroupMetrics {
            handled: metrics::handled(group, "handled"),
            failed: metrics::handled(group, "failed"),
            latency: metrics::latency(group),
        }
    }
}

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
    let series = GroupMetrics::of(&group.name);
    // The stream-wide upkeep (trimming, every group's gauges) is one consumer's
    // job per instance, not every group's.
    let keeps_stream = ctx
        .events()
        .groups()
        .first()
        .is_some_and(|first| first.name == group.name);
    let claim_every = Duration::from_millis(relay.config.claim_interval_ms);
    let mut group_ready = false;
    let mut last_claim: Option<Instant> = None;
    let mut failures: u32 = 0;
    // Handled entries not acknowledged yet: the acknowledgement rides with the next
    // read, one round trip for both.
    let mut unacked: Vec<String> = Vec::new();
    let mut reads = ReadSize::new(relay.config.batch_size, relay.config.max_batch_size);
    while !stop.is_shutting_down() {
        let step = async {
            if !group_ready {
                relay.create_group(&group.name).await?;
                group_ready = true;
            }
            if last_claim.is_none_or(|at| at.elapsed() >= claim_every) {
                last_claim = Some(Instant::now());
                claim_stale(&relay, &ctx, &group, &series).await?;
                maintain(&relay, &group, keeps_stream).await?;
            }
            let count = reads.next();
            let entries =
                acknowledge_and_read(&relay, &mut reader, &group.name, count, &mut unacked).await?;
            reads.came_back(entries.len());
            unacked = handle(&relay, &ctx, &group, &series, entries).await?;
            Ok::<_, KvError>(())
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
    let ids: Vec<&str> = unacked.iter().map(String::as_str).collect();
    if let Err(e) = relay.acknowledge(&group.name, &ids).await {
        // Claimed again by another consumer after events.claim_idle_ms.
        tracing::warn!(group = %group.name, error = %e, "could not acknowledge handled events at stop");
    }
}

/// How many entries the next read asks for: `events.batch_size` while the group
/// keeps up, doubling after each full read up to `events.max_batch_size` while it is
/// behind, back to the batch size after a read that was not full.
struct ReadSize {
    base: usize,
    max: usize,
    next: usize,
}

impl ReadSize {
    fn new(base: usize, max: usize) -> ReadSize {
        let base = base.max(1);
        ReadSize {
            base,
            max: max.max(base),
            next: base,
        }
    }

    fn next(&self) -> usize {
        self.next
    }

    /// Notes that the last read brought `n` entries.
    fn came_back(&mut self, n: usize) {
        self.next = match n >= self.next {
            true => (self.next * 2).min(self.max),
            false => self.base,
        };
    }
}

/// Acknowledges `unacked` (emptied once Redis took it) and reads up to `count` new
/// entries for `group`, waiting up to `events.block_ms` for some: one round trip.
async fn acknowledge_and_read(
    relay: &StreamRelay,
    reader: &mut RedisConnection,
    group: &str,
    count: usize,
    unacked: &mut Vec<String>,
) -> Result<Vec<Entry>, KvError> {
    let mut pipe = redis::pipe();
    if !unacked.is_empty() {
        pipe.cmd("XACK")
            .arg(&relay.key)
            .arg(group)
            .arg(unacked.as_slice())
            .ignore();
    }
    pipe.cmd("XREADGROUP")
        .arg("GROUP")
        .arg(group)
        .arg(&relay.consumer)
        .arg("COUNT")
        .arg(count)
        .arg("BLOCK")
        .arg(relay.config.block_ms)
        .arg("STREAMS")
        .arg(&relay.key)
        .arg(">");
    let (reply,): (redis::Value,) = pipe.query_async(reader).await?;
    unacked.clear();
    entry::read_reply(reply)
}

/// Hands `entries` to the subscription and returns the ids of those it took, to
/// acknowledge; entries that hold no event go to the dead-letter stream.
async fn handle(
    relay: &StreamRelay,
    ctx: &AppContext,
    group: &SubscriptionGroup,
    series: &GroupMetrics,
    entries: Vec<Entry>,
) -> Result<Vec<String>, KvError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let mut events = Vec::with_capacity(entries.len());
    let mut carried = Vec::with_capacity(entries.len());
    for entry in entries {
        match entry.decode() {
            Ok(event) => {
                events.push(Arc::new(event));
                carried.push(entry);
            }
            Err(why) => relay.bury(&group.name, &entry, &why).await?,
        }
    }
    let handled = ctx.events().deliver_to(ctx, group, &events).await;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut acknowledged = Vec::with_capacity(carried.len());
    for (entry, ok) in carried.into_iter().zip(handled) {
        if ok {
            if let Some(at) = entry.appended_at_ms() {
                series.latency.observe((now_ms - at).max(0) as f64 / 1000.0);
            }
            acknowledged.push(entry.id);
        } else {
            series.failed.inc();
        }
    }
    series.handled.inc_by(acknowledged.len() as u64);
    Ok(acknowledged)
}

/// Claims entries pending longer than `events.claim_idle_ms` in `group` (a dead
/// consumer's, or ones whose handler failed), buries those delivered too often and
/// handles the rest.
async fn claim_stale(
    relay: &StreamRelay,
    ctx: &AppContext,
    group: &SubscriptionGroup,
    series: &GroupMetrics,
) -> Result<(), KvError> {
    let mut cursor = "0-0".to_owned();
    for _ in 0..CLAIM_PAGES {
        let reply: redis::Value = redis::cmd("XAUTOCLAIM")
            .arg(&relay.key)
            .arg(&group.name)
            .arg(&relay.consumer)
            .arg(relay.config.claim_idle_ms)
            .arg(&cursor)
            .arg("COUNT")
            .arg(relay.config.batch_size)
            .query_async(&mut relay.conn.clone())
            .await?;
        let claimed = entry::claim_reply(reply)?;
        if claimed.deleted > 0 {
            // Trimmed away before this group handled them.
            tracing::error!(
                group = %group.name,
                lost = claimed.deleted,
                "pending shared events were trimmed from the stream before they were handled; raise events.max_len or events.max_age_s"
            );
            metrics::handled(&group.name, "lost").inc_by(claimed.deleted as u64);
        }
        if !claimed.entries.is_empty() {
            let deliveries = deliveries(relay, &group.name, &claimed.entries).await?;
            let mut retry = Vec::with_capacity(claimed.entries.len());
            for entry in claimed.entries {
                let count = deliveries.get(&entry.id).copied().unwrap_or(0);
                if count > relay.config.max_deliveries {
                    let why = format!("not handled after {} deliveries", count - 1);
                    relay.bury(&group.name, &entry, &why).await?;
                } else {
                    retry.push(entry);
                }
            }
            let taken = handle(relay, ctx, group, series, retry).await?;
            let ids: Vec<&str> = taken.iter().map(String::as_str).collect();
            relay.acknowledge(&group.name, &ids).await?;
        }
        cursor = claimed.next;
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
    entries: &[Entry],
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

/// Forgets `group`'s consumers long gone; with `keeps_stream`, also trims the
/// stream by age and reports every group's standing.
async fn maintain(
    relay: &StreamRelay,
    group: &SubscriptionGroup,
    keeps_stream: bool,
) -> Result<(), KvError> {
    if keeps_stream {
        relay.trim_by_age().await?;
        for standing in relay.standings().await? {
            metrics::pending(&standing.name).set(standing.pending as i64);
            if let Some(lag) = standing.lag {
                metrics::lag(&standing.name).set(lag as i64);
            }
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

#[cfg(test)]
mod tests {
    use super::ReadSize;

    #[test]
    fn reads_grow_while_they_come_back_full_and_shrink_after_one_that_is_not() {
        let mut reads = ReadSize::new(100, 350);
        let mut asked = Vec::new();
        for got in [100, 200, 350, 350, 20, 100, 7] {
            asked.push(reads.next());
            reads.came_back(got);
        }
        asked.push(reads.next());
        assert_eq!(asked, [100, 200, 350, 350, 350, 100, 200, 100]);
        assert_eq!(ReadSize::new(0, 0).next(), 1, "never a read of nothing");
    }
}
