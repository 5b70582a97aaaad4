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

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply,
};
use weapp::Shutdown;
use weapp::kv::KvError;

use super::reservation::Reserved;
use super::rows::{Written, write};
use super::scripts::{PER_ENTRY, SETTLE, WRITERS};
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
    let mut read_sizes: HashMap<i64, ReadSize> = HashMap::new();
    while !shutdown.is_shutting_down() {
        let claim = last_claim.is_none_or(|at| at.elapsed() >= claim_every);
        if claim {
            last_claim = Some(Instant::now());
        }
        let mut handled = 0;
        for sale in flash.all_sales() {
            let size = read_sizes.entry(sale.product_id).or_default();
            match flash.write_batch(&sale, outbox, claim, size).await {
                Ok(n) => handled += n,
                // Stopping: the connections close under a batch, which is read
                // again by the next writer.
                Err(_) if shutdown.is_shutting_down() => break,
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

/// An entry read from a queue: the reservations of one call of the script (up to
/// [`PER_ENTRY`]).
struct Entry {
    stream_id: String,
    reserved: Vec<Reserved>,
    /// Lines that are no reservation.
    unreadable: usize,
}

impl Entry {
    fn of(id: StreamId) -> Entry {
        let mut reserved = Vec::new();
        let mut unreadable = 0;
        let lines = id.get::<String>("p").unwrap_or_default();
        for line in lines.split('\n') {
            match Reserved::parse(line) {
                Some(r) => reserved.push(r),
                None => unreadable += 1,
            }
        }
        Entry {
            stream_id: id.id,
            reserved,
            unreadable,
        }
    }
}

/// How many queue entries a writer reads at a time: about `batch_size`
/// reservations, from the sizes of the entries it read last (one reservation each
/// when buyers come one by one, up to [`PER_ENTRY`] in a rush).
struct ReadSize {
    per_entry: usize,
}

impl Default for ReadSize {
    fn default() -> ReadSize {
        ReadSize { per_entry: 1 }
    }
}

impl ReadSize {
    fn entries(&self, batch_size: usize) -> usize {
        (batch_size / self.per_entry).max(1)
    }

    fn read(&mut self, entries: usize, reservations: usize) {
        if entries > 0 {
            // Halfway to what was seen, rounded towards it.
            let seen = reservations.div_ceil(entries);
            let sum = self.per_entry + seen;
            let half = if seen >= self.per_entry {
                sum.div_ceil(2)
            } else {
                sum / 2
            };
            self.per_entry = half.clamp(1, PER_ENTRY);
        }
    }
}

impl FlashSales {
    /// Writes one batch of `sale`'s queue (taking over entries another instance left
    /// if `claim`), in transactions of up to `batch_size` orders; returns how many
    /// reservations it handled.
    async fn write_batch(
        &self,
        sale: &Sale,
        outbox: &Outbox,
        claim: bool,
        size: &mut ReadSize,
    ) -> Result<usize, OrderError> {
        let entries = self
            .read_batch(sale, claim, size.entries(self.config.batch_size))
            .await?;
        if entries.is_empty() {
            return Ok(0);
        }
        let reserved: Vec<&Reserved> = entries.iter().flat_map(|e| &e.reserved).collect();
        size.read(entries.len(), reserved.len());
        let unreadable: usize = entries.iter().map(|e| e.unreadable).sum();
        if unreadable > 0 {
            tracing::warn!(
                product_id = sale.product_id,
                unreadable,
                "unreadable flash-sale queue entries dropped"
            );
        }
        let mut written = Written::default();
        for chunk in reserved.chunks(self.config.batch_size.max(1)) {
            let mut conn = self.db.conn().await?;
            let c = super::postgres(&mut conn)?;
            // A failure leaves every entry to be read again: what committed is
            // skipped then.
            written.add(write(c, sale.product_id, chunk).await?);
            drop(conn);
        }
        outbox.hint(written.events.iter().copied());
        metrics::written(written.pending, written.refused.len());
        let mut settle = SETTLE.key(&sale.keys.users);
        settle
            .key(&sale.keys.held)
            .key(&sale.keys.queue)
            .arg(WRITERS)
            .arg(entries.len())
            .arg(reserved.len());
        for entry in &entries {
            settle.arg(&entry.stream_id);
        }
        for r in &reserved {
            settle.arg(r.order_id);
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
            self.resync(
                &[sale.product_id],
                users.chain(written.recount.iter().copied()),
            );
        }
        Ok(reserved.len() + unreadable)
    }

    /// Up to `count` of the queue's entries for this instance: new ones, or (with
    /// `claim`) those another reader left unwritten for `claim_after_ms`.
    async fn read_batch(
        &self,
        sale: &Sale,
        claim: bool,
        count: usize,
    ) -> Result<Vec<Entry>, OrderError> {
        let mut redis = self.redis.clone();
        let queue = &sale.keys.queue;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writer_reads_about_a_batch_of_reservations_whatever_the_entries_hold() {
        let mut size = ReadSize::default();
        assert_eq!(size.entries(500), 500, "one reservation an entry at first");
        // A rush: full entries. The estimate follows within a few reads.
        for _ in 0..6 {
            let n = size.entries(500);
            size.read(n, n * PER_ENTRY);
        }
        assert_eq!(size.entries(500), 500 / PER_ENTRY);
        // Buyers one by one again.
        for _ in 0..6 {
            let n = size.entries(500);
            size.read(n, n);
        }
        assert_eq!(size.entries(500), 500);
        // Nothing read changes nothing; a batch smaller than an entry reads one.
        size.read(0, 0);
        assert_eq!(size.entries(500), 500);
        size.read(1, PER_ENTRY);
        size.read(1, PER_ENTRY);
        assert_eq!(size.entries(1), 1);
    }
}
