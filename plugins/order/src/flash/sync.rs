//! Setting the Redis counters from the database, which is the truth.
//!
//! A sync locks the product's stock row (`FOR UPDATE`), so no batch, cancellation
//! or stock change of the product commits while it runs, and hands the database's
//! figures to [`SYNC`], which adds the reservations Redis still holds: units left =
//! units on hand − units reserved and not written. Reservations whose orders are
//! written already (their writer stopped before settling) are dropped from `held`.
//! When Redis lost the sale (no counter: restarted without its data), the keys of
//! the orders written are loaded first, so a retry is still answered with its order.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool};
use diesel_async::RunQueryDsl;
use weapp::Shutdown;
use weapp::db::{AsyncPgConnection, BeginTransaction, Isolation};
use weapp::kv::KvError;

use super::reservation::{KeyRecord, key_field};
use super::scripts::{FORGET, SYNC};
use super::{FlashSales, Sale, metrics};
use crate::error::OrderError;
use crate::model::OrderStatus;
use crate::schema::{
    order_flash_sales as flash_sales, order_idempotency_keys as keys, order_items, orders,
};

/// Every this many periodic syncs, every buyer is recounted (else only those
/// whose orders changed): a recount missed by a stopped instance is redone.
const FULL_RECOUNT_EVERY: u64 = 12;

/// Which buyers' units a sync recounts.
pub(crate) enum Recount {
    All,
    Only(Vec<i64>),
}

#[derive(QueryableByName)]
struct Units {
    #[diesel(sql_type = BigInt)]
    user_id: i64,
    #[diesel(sql_type = BigInt)]
    units: i64,
}

/// Each buyer's units in the sale's orders that are not cancelled.
const UNITS_BY_BUYER: &str = "SELECT o.user_id AS user_id, SUM(i.qty)::BIGINT AS units \
     FROM orders o JOIN order_items i ON i.order_id = o.id \
     WHERE i.product_id = $1 AND o.status <> 'cancelled' AND o.created_at >= $2 \
       AND o.user_id IS NOT NULL AND ($3 OR o.user_id = ANY($4)) \
     GROUP BY o.user_id";

/// Refreshes the sales every `refresh_interval_ms` and syncs the running ones
/// every `reconcile_interval_ms`, and when asked ([`FlashSales::resync`]) at most
/// every `resync_interval_ms`: each sync reads every reservation still held, so a
/// run of cancellations during a rush must not each have one.
pub(crate) async fn run_upkeep(flash: &FlashSales, shutdown: &Shutdown) {
    let refresh_every = Duration::from_millis(flash.config.refresh_interval_ms);
    let sync_every = Duration::from_millis(flash.config.reconcile_interval_ms);
    let resync_gap = Duration::from_millis(flash.config.resync_interval_ms);
    let now = Instant::now();
    let (mut next_refresh, mut next_sync, mut next_resync) = (now, now, now);
    let mut syncs: u64 = 0;
    // A sync was asked for and has not run yet.
    let mut asked = false;
    while !shutdown.is_shutting_down() {
        if Instant::now() >= next_refresh {
            if let Err(e) = flash.refresh().await {
                tracing::warn!(error = %e, "reading the flash sales failed");
            }
            next_refresh = Instant::now() + refresh_every;
        }
        let now = Instant::now();
        let periodic = now >= next_sync;
        if periodic || (asked && now >= next_resync) {
            let recount = match periodic && syncs.is_multiple_of(FULL_RECOUNT_EVERY) {
                true => Recount::All,
                false => Recount::Only(flash.take_recount()),
            };
            if periodic {
                syncs += 1;
                next_sync = now + sync_every;
            }
            asked = false;
            flash.sync_sales(recount).await;
            next_resync = Instant::now() + resync_gap;
        }
        let mut until = next_refresh.min(next_sync);
        if asked {
            until = until.min(next_resync);
        }
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = tokio::time::sleep_until(until.into()) => {}
            _ = flash.wake_sync.notified() => asked = true,
        }
    }
}

impl FlashSales {
    /// The buyers to recount, taken.
    fn take_recount(&self) -> Vec<i64> {
        let mut recount = self.recount.lock().unwrap_or_else(|e| e.into_inner());
        recount.drain().collect()
    }

    /// Syncs every running sale, and forgets the ended ones whose queue is written;
    /// logs what fails (the next sync tries again).
    pub(crate) async fn sync_sales(&self, recount: Recount) {
        let mut queued = 0;
        let sales = self.all_sales();
        for sale in sales.iter().filter(|s| s.ended_at.is_some()) {
            if let Err(e) = self.forget_ended(sale).await {
                tracing::warn!(product_id = sale.product_id, error = %e, "forgetting an ended flash sale failed");
            }
        }
        for sale in sales.into_iter().filter(|s| s.active) {
            match self.sync(&sale, &recount).await {
                Ok(n) => queued += n,
                Err(e) => {
                    if let Recount::Only(users) = &recount {
                        self.recount
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .extend(users);
                    }
                    tracing::warn!(product_id = sale.product_id, error = %e, "flash-sale sync failed");
                }
            }
        }
        metrics::queued(queued);
    }

    /// Sets `sale`'s counters from the database; returns the reservations still
    /// queued.
    pub(crate) async fn sync(&self, sale: &Sale, recount: &Recount) -> Result<i64, OrderError> {
        let mut conn = self.db.conn().await?;
        let c = super::postgres(&mut conn)?;
        c.begin_with(Isolation::BackendDefault).await?;
        metrics::synced();
        let result = self.sync_locked(c, sale, recount).await;
        weapp::db::transaction::finish(c, result).await
    }

    /// Drops an ended sale's counters and key records from Redis once nothing of it
    /// is left to write and every instance has seen it end (two
    /// `refresh_interval_ms` after): they would otherwise stay for good, a record
    /// per reservation. Retries of its keys are then answered from the database, as
    /// for any order. Under the stock row's lock, with the sale read again, so a
    /// restart of the sale (whose sync waits on the lock) never loses its counters.
    async fn forget_ended(&self, sale: &Sale) -> Result<(), OrderError> {
        let mut redis = self.redis.clone();
        let keys = &sale.keys;
        let left: i64 = redis::cmd("EXISTS")
            .arg(&keys.stock)
            .arg(&keys.users)
            .arg(&keys.keys)
            .query_async(&mut redis)
            .await
            .map_err(KvError::from)?;
        // Every instance re-reads the sales within `refresh_interval_ms`.
        let grace = 2 * self.config.refresh_interval_ms as i64;
        let seen_ended =
            |ended_at: Option<i64>| ended_at.is_some_and(|at| at + grace <= crate::model::now_ms());
        if left == 0 || !seen_ended(sale.ended_at) {
            return Ok(());
        }
        let mut conn = self.db.conn().await?;
        let c = super::postgres(&mut conn)?;
        c.begin_with(Isolation::BackendDefault).await?;
        let result = async {
            super::lock_stock(c, sale.product_id).await?;
            // Read again: it may have been started (and ended) again since.
            let state: Option<(bool, Option<i64>)> = flash_sales::table
                .find(sale.product_id)
                .select((flash_sales::active, flash_sales::ended_at))
                .first(c)
                .await
                .optional()?;
            if !state.is_some_and(|(active, ended_at)| !active && seen_ended(ended_at)) {
                return Ok(0);
            }
            let forgotten: i64 = FORGET
                .key(&keys.stock)
                .key(&keys.users)
                .key(&keys.keys)
                .key(&keys.held)
                .invoke_async(&mut redis)
                .await
                .map_err(KvError::from)?;
            Ok::<_, OrderError>(forgotten)
        }
        .await;
        if weapp::db::transaction::finish(c, result).await? > 0 {
            tracing::info!(
                product_id = sale.product_id,
                "an ended flash sale's Redis counters and key records dropped"
            );
        }
        Ok(())
    }

    async fn is_loaded(&self, sale: &Sale) -> Result<bool, OrderError> {
        let exists: bool = redis::cmd("EXISTS")
            .arg(&sale.keys.stock)
            .query_async(&mut self.redis.clone())
            .await
            .map_err(KvError::from)?;
        Ok(exists)
    }

    async fn sync_locked(
        &self,
        c: &mut AsyncPgConnection,
        sale: &Sale,
        recount: &Recount,
    ) -> Result<i64, OrderError> {
        let on_hand: i64 = super::lock_stock(c, sale.product_id).await?;
        let mut all = matches!(recount, Recount::All);
        if !self.is_loaded(sale).await? {
            self.load_keys(c, sale).await?;
            self.create_group(sale).await?;
            all = true;
        }
        let mut redis = self.redis.clone();
        let held: Vec<i64> = redis::cmd("HKEYS")
            .arg(&sale.keys.held)
            .query_async::<Vec<String>>(&mut redis)
            .await
            .map_err(KvError::from)?
            .iter()
            .filter_map(|id| id.parse().ok())
            .collect();
        let written: Vec<i64> = match held.is_empty() {
            true => Vec::new(),
            false => {
                orders::table
                    .filter(orders::id.eq_any(&held))
                    .select(orders::id)
                    .load(c)
                    .await?
            }
        };
        let only = match recount {
            Recount::Only(users) if !all => users.clone(),
            _ => Vec::new(),
        };
        let mut units: HashMap<i64, i64> = only.iter().map(|u| (*u, 0)).collect();
        if all || !only.is_empty() {
            let counted: Vec<Units> = diesel::sql_query(UNITS_BY_BUYER)
                .bind::<BigInt, _>(sale.product_id)
                .bind::<BigInt, _>(sale.started_at)
                .bind::<Bool, _>(all)
                .bind::<Array<BigInt>, _>(&only)
                .load(c)
                .await?;
            units.extend(counted.into_iter().map(|u| (u.user_id, u.units)));
        }
        let mut script = SYNC.key(&sale.keys.stock);
        script
            .key(&sale.keys.users)
            .key(&sale.keys.held)
            .arg(on_hand)
            .arg(written.len())
            .arg(&written)
            .arg(if all { "all" } else { "some" });
        for (user, n) in &units {
            script.arg(user).arg(n);
        }
        let left: i64 = script
            .invoke_async(&mut redis)
            .await
            .map_err(KvError::from)?;
        if left > 0 {
            // Units came back: this instance stops answering "sold out" at once
            // (the others within `sold_out_recheck_ms`).
            sale.sold_out_until.store(0, Ordering::Relaxed);
        }
        let queued: i64 = redis::cmd("HLEN")
            .arg(&sale.keys.held)
            .query_async(&mut redis)
            .await
            .map_err(KvError::from)?;
        Ok(queued)
    }

    /// Puts the keys of the sale's written orders back into Redis (it lost them).
    async fn load_keys(&self, c: &mut AsyncPgConnection, sale: &Sale) -> Result<(), OrderError> {
        let ours: HashSet<i64> = orders::table
            .inner_join(order_items::table.on(order_items::order_id.eq(orders::id)))
            .filter(order_items::product_id.eq(sale.product_id))
            .filter(orders::created_at.ge(sale.started_at))
            .select(orders::id)
            .load::<i64>(c)
            .await?
            .into_iter()
            .collect();
        let rows: Vec<(i64, String, Vec<u8>, String)> = keys::table
            .filter(keys::status.eq(202))
            .filter(keys::created_at.ge(sale.started_at))
            .select((
                keys::user_id,
                keys::idem_key,
                keys::request_hash,
                keys::response,
            ))
            .load(c)
            .await?;
        let mut fields = Vec::new();
        for (user_id, key, hash, response) in rows {
            let Ok(answer) = serde_json::from_str::<crate::model::OrderCreated>(&response) else {
                continue;
            };
            if answer.status != OrderStatus::Reserved || !ours.contains(&answer.order_id) {
                continue;
            }
            let record = KeyRecord {
                order_id: answer.order_id,
                total_fen: answer.total_fen,
                hash,
            };
            fields.push((key_field(user_id, &key), record.text()));
        }
        tracing::info!(
            product_id = sale.product_id,
            keys = fields.len(),
            "flash-sale counters rebuilt from the database"
        );
        for chunk in fields.chunks(1_000) {
            let _: () = redis::cmd("HSET")
                .arg(&sale.keys.keys)
                .arg(chunk)
                .query_async(&mut self.redis.clone())
                .await
                .map_err(KvError::from)?;
        }
        Ok(())
    }
}
