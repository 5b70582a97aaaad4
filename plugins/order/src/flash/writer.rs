//! The writers: every instance reads the sales' queues in one consumer group and
//! writes the reservations to PostgreSQL, a batch per transaction.
//!
//! A batch locks the product's stock row, skips orders already written (a batch
//! read again after its writer stopped between commit and settling), writes each
//! order `pending` while the database has units for it and `cancelled`
//! (`out_of_stock`) after, with its line, key and event, and takes the units. Only
//! after the commit does Redis forget the reservations ([`SETTLE`]): a crash in
//! between leaves them to be read again (by another instance after
//! `order.flash_sale.claim_after_ms`) and skipped.

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply,
};
use weapp::Shutdown;
use weapp::db::DbConn;
use weapp::kv::KvError;

use super::reservation::Reserved;
use super::rows::write;
use super::scripts::{SETTLE, WRITERS};
use super::{FlashSales, Sale, metrics};
use crate::error::OrderError;
use crate::outbox::Outbox;

/// Writes reservations until shutdown.
pub(crate) async fn run_writer(flash: &FlashSales, outbox: &Outbox, shutdown: &Shutdown) {
    let poll = Duration::from_millis(flash.config.poll_interval_ms);
    let claim_every = Duration::from_millis((flash.config.claim_after_ms / 2).max(1));
    let mut last_claim: Option<Instant> = None;
    // With `max_writes_per_s`, when the next batch may start.
    let mut paced_until = Instant::now();
    while !shutdown.is_shutting_down() {
        let claim = last_claim.is_none_or(|at| at.elapsed() >= claim_every);
        if claim {
            last_claim = Some(Instant::now());
        }
        let mut handled = 0;
        for sale in flash.all_sales() {
            match flash.write_batch(&sale, outbox, claim).await {
                Ok(n) => handled += n,
                Err(e) => tracing::warn!(
                    product_id = sale.product_id,
                    error = %e,
                    "writing flash-sale orders failed; retrying"
                ),
            }
        }
        if handled == 0 {
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = flash.wake_writer.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        } else if let Some(pace) = std::num::NonZeroU64::new(flash.config.max_writes_per_s) {
            let spent = Duration::from_secs_f64(handled as f64 / pace.get() as f64);
            paced_until = paced_until.max(Instant::now() - spent) + spent;
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = tokio::time::sleep_until(paced_until.into()) => {}
            }
        }
    }
}

/// A reservation read from a queue.
struct Entry {
    stream_id: String,
    reserved: Option<Reserved>,
}

impl Entry {
    fn of(id: StreamId) -> Entry {
        let reserved = id.get::<String>("p").as_deref().and_then(Reserved::parse);
        Entry {
            stream_id: id.id,
            reserved,
        }
    }
}

impl FlashSales {
    /// Writes one batch of `sale`'s queue (taking over entries another instance left
    /// if `claim`); returns how many reservations it handled.
    async fn write_batch(
        &self,
        sale: &Sale,
        outbox: &Outbox,
        claim: bool,
    ) -> Result<usize, OrderError> {
        let entries = self.read_batch(sale, claim).await?;
        if entries.is_empty() {
            return Ok(0);
        }
        let reserved: Vec<&Reserved> = entries.iter().filter_map(|e| e.reserved.as_ref()).collect();
        if reserved.len() < entries.len() {
            tracing::warn!(
                product_id = sale.product_id,
                unreadable = entries.len() - reserved.len(),
                "unreadable flash-sale queue entries dropped"
            );
        }
        let mut conn = self.db.conn().await?;
        let DbConn::Postgres(c) = &mut conn else {
            return Err(OrderError::Invalid("flash sales need PostgreSQL".into()));
        };
        let written = write(c, sale.product_id, &reserved).await?;
        drop(conn);
        outbox.hint(written.events.iter().copied());
        metrics::written(written.pending, written.refused.len());
        let mut settle = SETTLE.key(&sale.keys.users);
        settle
            .key(&sale.keys.held)
            .key(&sale.keys.queue)
            .arg(WRITERS)
            .arg(entries.len());
        for entry in &entries {
            settle.arg(&entry.stream_id);
        }
        for entry in &entries {
            settle.arg(entry.reserved.as_ref().map_or(0, |r| r.order_id));
        }
        for (user, qty) in &written.refused {
            settle.arg(user).arg(qty);
        }
        let _: i64 = settle
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(KvError::from)?;
        if !written.refused.is_empty() || !written.recount.is_empty() {
            // The database had fewer units than Redis counted, or a batch was
            // written twice: the counters are set again from the database.
            let users = written.refused.iter().map(|(u, _)| *u);
            self.resync(users.chain(written.recount.iter().copied()));
        }
        Ok(entries.len())
    }

    /// Up to a batch of the queue's entries for this instance: new ones, or (with
    /// `claim`) those another reader left unwritten for `claim_after_ms`.
    async fn read_batch(&self, sale: &Sale, claim: bool) -> Result<Vec<Entry>, OrderError> {
        let mut redis = self.redis.clone();
        let queue = &sale.keys.queue;
        let count = self.config.batch_size;
        if claim {
            let options = StreamAutoClaimOptions::default().count(count);
            let claimed: Result<StreamAutoClaimReply, _> = redis
                .xautoclaim_options(
                    queue,
                    WRITERS,
                    &self.consumer,
                    self.config.claim_after_ms,
                    "0-0",
                    options,
                )
                .await;
            match claimed {
                Ok(reply) if !reply.claimed.is_empty() => {
                    return Ok(reply.claimed.into_iter().map(Entry::of).collect());
                }
                Ok(_) => {}
                Err(e) if e.code() == Some("NOGROUP") => self.create_group(sale).await?,
                Err(e) => return Err(KvError::from(e).into()),
            }
        }
        let options = StreamReadOptions::default()
            .group(WRITERS, &self.consumer)
            .count(count);
        let read: Result<Option<StreamReadReply>, _> =
            redis.xread_options(&[queue], &[">"], &options).await;
        let reply = match read {
            Ok(reply) => reply,
            Err(e) if e.code() == Some("NOGROUP") => {
                self.create_group(sale).await?;
                return Ok(Vec::new());
            }
            Err(e) => return Err(KvError::from(e).into()),
        };
        Ok(reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(Entry::of)
            .collect())
    }

    /// The writers' group on the sale's queue (from its first entry; the queue is
    /// made if missing).
    pub(super) async fn create_group(&self, sale: &Sale) -> Result<(), OrderError> {
        let made: Result<(), redis::RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&sale.keys.queue)
            .arg(WRITERS)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.redis.clone())
            .await;
        match made {
            Err(e) if e.code() != Some("BUSYGROUP") => Err(KvError::from(e).into()),
            _ => Ok(()),
        }
    }
}
