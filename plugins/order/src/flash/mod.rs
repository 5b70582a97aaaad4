//! Flash-sale mode (秒杀): for a product put on flash sale, `POST /api/orders`
//! reserves the units in Redis with one script and answers `202 {order_id, status:
//! "reserved"}` at once; writers on every instance then write the reserved orders to
//! PostgreSQL in batches, where they become `pending` (payable).
//!
//! Thousands of buyers in one second would otherwise all wait on the product's one
//! stock row. Here the row is locked once per batch of up to
//! `order.flash_sale.batch_size` orders, and never while a buyer waits.
//!
//! The database stays the truth:
//! - each batch takes its units with the stock row locked, and an order the
//!   database has no units for is written `cancelled` (`out_of_stock`) instead;
//! - a reservation is forgotten in Redis only after its order committed, and a
//!   batch may be written twice (a writer that stopped mid-way): orders already
//!   there are skipped;
//! - a sync sets the Redis counters from the database's figures under the same
//!   lock (every `order.flash_sale.reconcile_interval_ms`, after cancellations, and
//!   from scratch when Redis lost them);
//! - once a sale has ended and its queue is written, Redis forgets its counters and
//!   key records (the `FORGET` script): retries are answered from the
//!   database's keys, as for any order.
//!
//! Needs PostgreSQL and Redis (AOF with `appendfsync always` for no reservation to be
//! lost when Redis itself crashes); elsewhere putting a product on flash sale is
//! refused, and so is starting with one on sale.

mod admin;
mod batches;
mod ids;
mod metrics;
pub(crate) mod reservation;
mod reserve;
mod rows;
mod scripts;
mod store;
mod sync;
mod writer;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::Notify;
use weapp::db::{AsyncPgConnection, Db, DbConn};
use weapp::kv::RedisConnection;

use crate::config::FlashSaleConfig;
use crate::model::OrderLine;
use scripts::SaleKeys;

pub(crate) use reserve::RETRY_SOON;
pub(crate) use store::any_running;
pub use store::{FlashSaleSettings, FlashSaleView};
pub(crate) use sync::run_upkeep;
pub(crate) use writer::run_writer;

/// One product's sale as this instance knows it (re-read every
/// `order.flash_sale.refresh_interval_ms`).
#[derive(Debug)]
pub(crate) struct Sale {
    pub product_id: i64,
    pub per_user_limit: i64,
    pub price_fen: i64,
    /// Taking reservations (the sale runs and the product is for sale).
    pub active: bool,
    /// A buyer's units count from then.
    pub started_at: i64,
    /// When the sale ended (not set while it runs, even with the product off sale).
    pub ended_at: Option<i64>,
    keys: SaleKeys,
    /// Until then (Unix ms) this instance answers "sold out" without the script.
    sold_out_until: AtomicI64,
}

/// The flash sales of the app: the sales, the Redis connection, the order ids set
/// aside, and what the writer and sync tasks wait on.
pub struct FlashSales {
    db: Db,
    redis: RedisConnection,
    key_prefix: String,
    config: FlashSaleConfig,
    unpaid_timeout_s: u64,
    sales: RwLock<HashMap<i64, Arc<Sale>>>,
    ids: ids::OrderIds,
    /// Reservations on their way to Redis, a script call per batch.
    batches: batches::ReservationBatches,
    /// This instance's name in the writers' consumer group.
    consumer: String,
    wake_writer: Notify,
    wake_sync: Notify,
    /// Buyers whose units changed in the database (cancellations, refusals): the
    /// next sync recounts them.
    recount: Mutex<HashSet<i64>>,
}

impl FlashSales {
    /// The flash sales over `db` (PostgreSQL) and `redis`; no sale is known until
    /// [`refresh`](Self::refresh).
    pub(crate) fn new(
        db: Db,
        redis: RedisConnection,
        key_prefix: &str,
        config: FlashSaleConfig,
        unpaid_timeout_s: u64,
    ) -> FlashSales {
        FlashSales {
            ids: ids::OrderIds::new(config.id_block),
            batches: batches::ReservationBatches::new(redis.clone(), config.max_queued),
            db,
            redis,
            key_prefix: key_prefix.to_owned(),
            config,
            unpaid_timeout_s,
            sales: RwLock::new(HashMap::new()),
            consumer: format!("{}-{}", hostname(), std::process::id()),
            wake_writer: Notify::new(),
            wake_sync: Notify::new(),
            recount: Mutex::new(HashSet::new()),
        }
    }

    /// Re-reads which products are on flash sale, at what price and limit.
    pub(crate) async fn refresh(&self) -> Result<(), crate::error::OrderError> {
        let rows = store::load(&self.db).await?;
        let mut sales = self.sales.write().unwrap_or_else(|e| e.into_inner());
        let old = std::mem::take(&mut *sales);
        for row in rows {
            let sold_out_until = old
                .get(&row.product_id)
                .map_or(0, |s| s.sold_out_until.load(Ordering::Relaxed));
            let sale = Sale {
                keys: SaleKeys::new(&self.key_prefix, row.product_id),
                product_id: row.product_id,
                per_user_limit: row.per_user_limit,
                price_fen: row.price_fen,
                active: row.active && row.product_active,
                started_at: row.started_at,
                ended_at: row.ended_at,
                sold_out_until: AtomicI64::new(sold_out_until),
            };
            sales.insert(row.product_id, Arc::new(sale));
        }
        Ok(())
    }

    /// The running sale an order's lines fall under, if any. A flash-sale product
    /// is ordered alone: mixing it with other lines is refused.
    pub(crate) fn sale_for(&self, lines: &[OrderLine]) -> Result<Option<Arc<Sale>>, weapp::Error> {
        let sales = self.sales.read().unwrap_or_else(|e| e.into_inner());
        if sales.is_empty() {
            return Ok(None);
        }
        let mut on_sale = lines
            .iter()
            .filter_map(|l| sales.get(&l.product_id).filter(|s| s.active));
        let Some(sale) = on_sale.next() else {
            return Ok(None);
        };
        if lines.len() > 1 {
            return Err(weapp::Error::unprocessable(
                "flash_sale_single_line",
                format!(
                    "product {} is on flash sale: order it alone, in an order of one line",
                    sale.product_id
                ),
            ));
        }
        Ok(Some(sale.clone()))
    }

    /// Every sale known, running or ended (an ended one may still have
    /// reservations to write).
    fn all_sales(&self) -> Vec<Arc<Sale>> {
        let sales = self.sales.read().unwrap_or_else(|e| e.into_inner());
        sales.values().cloned().collect()
    }

    /// Asks for a sync (now, or after `resync_interval_ms` since the last), recounting
    /// `users`, if one of `products` is
    /// on sale here (running, or ended with reservations maybe still to write):
    /// the stock of other products is none of a sale's business, and a shop's
    /// ordinary cancellations (unpaid orders expiring by the thousand) must not
    /// have every sale recounted from its whole queue each time.
    pub(crate) fn resync(&self, products: &[i64], users: impl IntoIterator<Item = i64>) {
        let on_sale = {
            let sales = self.sales.read().unwrap_or_else(|e| e.into_inner());
            products.iter().any(|p| sales.contains_key(p))
        };
        if !on_sale {
            return;
        }
        self.recount
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(users);
        self.wake_sync.notify_one();
    }
}

/// Locks `product_id`'s stock row for the rest of the transaction and returns its
/// units on hand (0 without a row): what every write and sync of a sale starts with,
/// so they take turns.
async fn lock_stock(
    c: &mut AsyncPgConnection,
    product_id: i64,
) -> Result<i64, crate::error::OrderError> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let on_hand: Option<i64> = crate::schema::stock::table
        .find(product_id)
        .select(crate::schema::stock::qty)
        .for_update()
        .first(c)
        .await
        .optional()?;
    Ok(on_hand.unwrap_or(0))
}

/// The PostgreSQL connection behind `conn`: flash sales run on nothing else (an app
/// on another database refuses them).
fn postgres(conn: &mut DbConn) -> Result<&mut AsyncPgConnection, crate::error::OrderError> {
    match conn {
        DbConn::Postgres(c) => Ok(c),
        _ => Err(crate::error::OrderError::Invalid(
            "flash sales need PostgreSQL".into(),
        )),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "weapp".to_owned())
}
