//! `Orders`: the plugin's service, stored in the app context by `on_start`.

use weapp::AppContext;
use weapp::db::Db;

use std::sync::Arc;

use crate::config::OrderConfig;
use crate::error::OrderError;
use crate::flash::FlashSales;
use crate::outbox::Outbox;
use crate::placement::Placer;

/// Catalogue, orders and their transitions over the app's database. Handlers and
/// other plugins reach it with `ctx.get::<Orders>()`.
pub struct Orders {
    pub(crate) config: OrderConfig,
    pub(crate) db: Db,
    /// Places orders by the strategy chosen for the database.
    pub(crate) placer: Placer,
    /// Events committed here, and their delivery.
    pub(crate) outbox: Outbox,
    /// Flash sales, where the app can run them (PostgreSQL and Redis).
    pub(crate) flash: Option<Arc<FlashSales>>,
}

impl Orders {
    /// A service over `db`.
    pub fn new(config: OrderConfig, db: Db) -> Orders {
        Orders {
            placer: Placer::new(db.clone(), &config),
            outbox: Outbox::new(db.clone(), &config.outbox),
            flash: None,
            config,
            db,
        }
    }

    /// Runs flash sales with `flash`.
    pub(crate) fn with_flash_sales(mut self, flash: FlashSales) -> Orders {
        self.flash = Some(Arc::new(flash));
        self
    }

    /// The flash sales, or 409 `flash_sale_unsupported` where the app cannot run them.
    pub(crate) fn flash_sales(&self) -> Result<&FlashSales, weapp::Error> {
        self.flash.as_deref().ok_or_else(|| {
            weapp::Error::conflict(
                "flash_sale_unsupported",
                "flash sales need PostgreSQL (database.url) and Redis (redis.url)",
            )
        })
    }

    /// Tells the flash sales that the stock of `products` changed outside them
    /// (orders of `users` cancelled or refunded, a stock change), so Redis counts
    /// them again if one is on sale.
    pub(crate) fn units_returned(&self, products: &[i64], users: impl IntoIterator<Item = i64>) {
        if let Some(flash) = &self.flash {
            flash.resync(products, users);
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &OrderConfig {
        &self.config
    }

    /// How orders are placed: `stepwise`, `pipelined` or `group commit`.
    pub fn placement_strategy(&self) -> &'static str {
        self.placer.strategy()
    }

    /// The events not handled yet, if they are past `order.outbox.max_behind`: new
    /// orders wait until delivery catches up.
    pub fn events_behind(&self) -> Option<i64> {
        let bound = self.config.outbox.max_behind;
        let behind = self.outbox.backlog.behind();
        (bound > 0 && behind >= bound).then_some(behind)
    }

    /// The outbox sweep: publishes a batch of due events found by scanning the
    /// outbox; returns how many were attempted. The plugin's worker calls it on its
    /// own; tests and tools may too.
    pub async fn deliver_outbox(&self, ctx: &AppContext) -> Result<usize, OrderError> {
        self.outbox.deliver_due(ctx).await
    }

    /// Deletes delivered and parked events that finished more than
    /// `order.outbox.keep_finished_s` before `now`; returns how many.
    pub async fn purge_outbox(&self, now: i64) -> Result<usize, OrderError> {
        self.outbox.purge(now).await
    }
}
