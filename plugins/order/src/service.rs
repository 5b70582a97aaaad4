//! `Orders`: the plugin's service, stored in the app context by `on_start`.

use weapp::AppContext;
use weapp::db::Db;

use crate::config::OrderConfig;
use crate::error::OrderError;
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
}

impl Orders {
    /// A service over `db`.
    pub fn new(config: OrderConfig, db: Db) -> Orders {
        Orders {
            placer: Placer::new(db.clone(), &config),
            outbox: Outbox::new(db.clone(), &config.outbox),
            config,
            db,
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
