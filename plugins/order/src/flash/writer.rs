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

use std::collections::HashSet;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use redis::AsyncCommands;
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply,
};
use weapp::Shutdown;
use weapp::db::{AsyncPgConnection, BeginTransaction, DbConn, Isolation};
use weapp::kv::KvError;

use super::reservation::Reserved;
use super::scripts::{SETTLE, WRITERS};
use super::{FlashSales, Sale, metrics};
use crate::error::OrderError;
use crate::events;
use crate::model::{OrderCreated, OrderStatus};
use crate::outbox::{NewEvent, Outbox};
use crate::rows::{NewItem, NewKey};
use crate::schema::{order_idempotency_keys, order_items, order_outbox, orders, stock};

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

/// What a batch wrote.
#[derive(Default)]
struct Written {
    pending: usize,
    /// `(user, units)` of the orders the database had no units for.
    refused: Vec<(i64, i64)>,
    /// Buyers of orders found written already: their counts are redone.
    recount: Vec<i64>,
    events: Vec<i64>,
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

/// A flash-sale order's row: its id was given at reservation.
#[derive(Insertable)]
#[diesel(table_name = orders)]
struct FlashOrder<'a> {
    id: i64,
    user_id: i64,
    status: &'a str,
    total_fen: i64,
    version: i32,
    cancel_reason: Option<&'a str>,
    created_at: i64,
    updated_at: i64,
    expires_at: i64,
}

/// Writes `batch` of `product_id` in one transaction (see the [module docs](self)).
async fn write(
    c: &mut AsyncPgConnection,
    product_id: i64,
    batch: &[&Reserved],
) -> Result<Written, OrderError> {
    c.begin_with(Isolation::BackendDefault).await?;
    let result = write_in_transaction(c, product_id, batch).await;
    weapp::db::transaction::finish(c, result).await
}

async fn write_in_transaction(
    c: &mut AsyncPgConnection,
    product_id: i64,
    batch: &[&Reserved],
) -> Result<Written, OrderError> {
    let mut written = Written::default();
    let on_hand: i64 = super::lock_stock(c, product_id).await?;
    let ids: Vec<i64> = batch.iter().map(|r| r.order_id).collect();
    let there: HashSet<i64> = orders::table
        .filter(orders::id.eq_any(&ids))
        .select(orders::id)
        .load::<i64>(c)
        .await?
        .into_iter()
        .collect();
    let mut seen = HashSet::new();
    let mut left = on_hand;
    let mut rows = Vec::new();
    for r in batch {
        if there.contains(&r.order_id) || !seen.insert(r.order_id) {
            written.recount.push(r.user_id);
            continue;
        }
        let fits = r.qty <= left;
        if fits {
            left -= r.qty;
            written.pending += 1;
        } else {
            written.refused.push((r.user_id, r.qty));
        }
        rows.push((*r, fits));
    }
    if rows.is_empty() {
        return Ok(written);
    }
    let now = crate::model::now_ms();
    let orders: Vec<FlashOrder> = rows
        .iter()
        .map(|(r, fits)| FlashOrder {
            id: r.order_id,
            user_id: r.user_id,
            status: if *fits {
                OrderStatus::Pending.as_str()
            } else {
                OrderStatus::Cancelled.as_str()
            },
            total_fen: r.total_fen,
            version: 0,
            cancel_reason: (!fits).then_some("out_of_stock"),
            created_at: r.created_at,
            updated_at: now,
            expires_at: r.expires_at,
        })
        .collect();
    diesel::insert_into(orders::table)
        .values(&orders)
        .execute(c)
        .await?;
    let items: Vec<NewItem> = rows
        .iter()
        .map(|(r, _)| NewItem {
            order_id: r.order_id,
            product_id,
            qty: r.qty,
            price_fen: r.total_fen / r.qty.max(1),
        })
        .collect();
    diesel::insert_into(order_items::table)
        .values(&items)
        .execute(c)
        .await?;
    let answers: Vec<String> = rows
        .iter()
        .map(|(r, _)| {
            serde_json::to_string(&OrderCreated {
                order_id: r.order_id,
                status: OrderStatus::Reserved,
                total_fen: r.total_fen,
            })
            .unwrap_or_default()
        })
        .collect();
    let keys: Vec<NewKey> = rows
        .iter()
        .zip(&answers)
        .map(|((r, _), answer)| NewKey {
            user_id: r.user_id,
            idem_key: &r.key,
            request_hash: &r.hash,
            status: 202,
            response: answer,
            created_at: r.created_at,
        })
        .collect();
    // A key an ordinary order took first keeps that order's answer.
    diesel::insert_into(order_idempotency_keys::table)
        .values(&keys)
        .on_conflict_do_nothing()
        .execute(c)
        .await?;
    let events: Vec<NewEvent> = rows
        .iter()
        .map(|(r, fits)| match fits {
            true => NewEvent::new(
                &events::Created {
                    order_id: r.order_id,
                    user_id: Some(r.user_id),
                    total_fen: r.total_fen,
                },
                now,
            ),
            false => NewEvent::new(
                &events::Cancelled {
                    order_id: r.order_id,
                    user_id: Some(r.user_id),
                    total_fen: r.total_fen,
                    reason: "out_of_stock".to_owned(),
                },
                now,
            ),
        })
        .collect();
    written.events = diesel::insert_into(order_outbox::table)
        .values(&events)
        .returning(order_outbox::id)
        .get_results(c)
        .await?;
    let taken = on_hand - left;
    if taken > 0 {
        // The stock row is locked: this always holds; kept as the last check.
        let updated = diesel::update(stock::table.find(product_id).filter(stock::qty.ge(taken)))
            .set(stock::qty.eq(stock::qty - taken))
            .execute(c)
            .await?;
        if updated != 1 {
            return Err(OrderError::OutOfStock { product_id });
        }
    }
    Ok(written)
}
