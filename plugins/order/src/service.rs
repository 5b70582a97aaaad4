//! `Orders`: the plugin's service, stored in the app context by `on_start`.

use weapp::db::{Backend, Db};

use crate::config::OrderConfig;
use crate::gate::StockGate;
use crate::group_commit::Combiner;
use crate::group_commit::postgres::{Answer, GroupedOrder};
use crate::outbox::hints::OutboxHints;

/// Catalogue, orders and their transitions over the app's database. Handlers and
/// other plugins reach it with `ctx.get::<Orders>()`.
pub struct Orders {
    pub(crate) config: OrderConfig,
    pub(crate) db: Db,
    pub(crate) stock_gate: StockGate,
    /// Batches concurrent orders (PostgreSQL, unless `order.group_commit` is off).
    pub(crate) group_commit: Option<Combiner<GroupedOrder, Answer>>,
    /// Events committed here, waiting for the outbox worker.
    pub(crate) outbox_hints: OutboxHints,
}

impl Orders {
    /// A service over `db`.
    pub fn new(config: OrderConfig, db: Db) -> Orders {
        let stock_gate = StockGate::new(config.stock_writers);
        let outbox_hints = OutboxHints::new(usize::try_from(config.outbox.batch_size).unwrap_or(1));
        let grouped = &config.group_commit;
        let group_commit = (db.backend() == Backend::Postgres && grouped.max_orders > 1)
            .then(|| Combiner::new(grouped.lanes, grouped.max_orders));
        Orders {
            config,
            db,
            stock_gate,
            group_commit,
            outbox_hints,
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &OrderConfig {
        &self.config
    }
}

/// Evaluates `$attempt` (an expression that awaits one transaction) until it succeeds,
/// fails for good, or `order.retry` runs out; each transient failure (deadlock,
/// serialization failure, lost optimistic check) waits a jittered backoff first.
/// A macro rather than a function taking a closure, so the futures of background
/// tasks stay `Send`.
macro_rules! retrying {
    ($orders:expr, $what:literal, $attempt:expr) => {{
        let mut tries = 0u32;
        loop {
            tries += 1;
            match $attempt {
                Err(e) if e.is_transient() => match $orders.config.retry.backoff(tries) {
                    Some(wait) => {
                        tracing::debug!(what = $what, tries, error = %e, "retrying transaction");
                        tokio::time::sleep(wait).await;
                    }
                    None => {
                        tracing::warn!(what = $what, tries, error = %e, "transaction failed after retries");
                        break Err(e);
                    }
                },
                result => break result,
            }
        }
    }};
}
pub(crate) use retrying;
