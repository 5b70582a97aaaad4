//! Placing an order: stock taken, order written, response kept under its key, all in
//! one transaction — by one [`Strategy`], chosen once at start, over one description
//! of the order's rows ([`Placement`], [`crate::rows`]).
//!
//! - [`stepwise`] (MySQL/MariaDB, SQLite): priced, then one statement at a time.
//! - [`pipelined`] (PostgreSQL): two pipelined round trips, the server checking the
//!   stock, so the hot stock row is never locked while the app waits for a CPU.
//! - [`group_commit`] (PostgreSQL, `order.group_commit`): orders arriving together
//!   share one transaction; an order a batch could not place is placed pipelined.
//!
//! Every strategy gives the same answers: group commit only changes how many orders
//! one commit carries.

pub(crate) mod group_commit;
mod pipelined;
mod stepwise;

use std::collections::HashMap;

use weapp::db::{Backend, Db, DbConn, Isolation, RetryPolicy};

use crate::config::OrderConfig;
use crate::error::OrderError;
use crate::gate::StockGate;
use crate::idempotency::IdempotencyKey;
use crate::model::{OrderCreated, OrderLine, OrderStatus, now_ms};
use crate::outbox::NewEvent;
use crate::rows::{NewItem, NewKey, NewOrder};
use group_commit::Combiner;
use group_commit::batch::{Answer, BatchSettings, GroupedOrder};

/// What the client asked for: whose order, under which key, which lines.
pub(crate) struct OrderRequest<'a> {
    pub user_id: i64,
    pub key: &'a IdempotencyKey,
    pub hash: &'a [u8],
    /// Sorted by product, as `Orders::validated` returns them.
    pub lines: &'a [OrderLine],
}

impl OrderRequest<'_> {
    /// The ordered products' ids, sorted.
    pub(crate) fn product_ids(&self) -> Vec<i64> {
        self.lines.iter().map(|l| l.product_id).collect()
    }
}

/// One order being placed: everything its statements need.
pub(crate) struct Placement<'a> {
    request: &'a OrderRequest<'a>,
    prices: &'a HashMap<i64, i64>,
    pub total: i64,
    pub now: i64,
    pub expires_at: i64,
}

/// A committed order: its `201` answer, and its event's id for the outbox worker.
pub(crate) struct Placed {
    pub body: String,
    pub event_id: i64,
}

/// What an order writes once its id is known.
pub(crate) struct Written {
    pub items: Vec<NewItem>,
    pub event: NewEvent,
    /// The `201` answer, kept under the idempotency key.
    pub body: String,
}

impl<'a> Placement<'a> {
    /// Prices the request's lines: the order's total, or which product is not for
    /// sale, or that the total does not fit.
    pub(crate) fn priced(
        request: &'a OrderRequest<'a>,
        prices: &'a HashMap<i64, i64>,
        unpaid_timeout_s: u64,
    ) -> Result<Placement<'a>, OrderError> {
        let mut total: i64 = 0;
        for line in request.lines {
            let price = prices
                .get(&line.product_id)
                .ok_or(OrderError::UnknownProduct(line.product_id))?;
            total = price
                .checked_mul(line.qty)
                .and_then(|amount| total.checked_add(amount))
                .ok_or(OrderError::TotalTooLarge)?;
        }
        let now = now_ms();
        Ok(Placement {
            request,
            prices,
            total,
            now,
            expires_at: now.saturating_add((unpaid_timeout_s as i64).saturating_mul(1000)),
        })
    }

    /// The order's own row.
    fn order(&self) -> NewOrder<'static> {
        NewOrder {
            user_id: self.request.user_id,
            status: OrderStatus::Pending.as_str(),
            total_fen: self.total,
            version: 0,
            created_at: self.now,
            updated_at: self.now,
            expires_at: self.expires_at,
        }
    }

    /// The order's lines, event and answer, as order `order_id`.
    pub(crate) fn written(&self, order_id: i64) -> Result<Written, OrderError> {
        let items = self
            .request
            .lines
            .iter()
            .map(|l| NewItem {
                order_id,
                product_id: l.product_id,
                qty: l.qty,
                price_fen: self.prices[&l.product_id],
            })
            .collect();
        let body = serde_json::to_string(&OrderCreated {
            order_id,
            status: OrderStatus::Pending,
            total_fen: self.total,
        })
        .map_err(|e| OrderError::Invalid(e.to_string()))?;
        let created = crate::events::Created {
            order_id,
            user_id: Some(self.request.user_id),
            total_fen: self.total,
        };
        let event = NewEvent::new(&created, self.now);
        Ok(Written { items, event, body })
    }

    /// The idempotency key's row, keeping `body` as the answer.
    fn key<'b>(&'b self, body: &'b str) -> NewKey<'b> {
        NewKey {
            user_id: self.request.user_id,
            idem_key: self.request.key.as_str(),
            request_hash: self.request.hash,
            status: 201,
            response: body,
            created_at: self.now,
        }
    }
}

/// How this app places orders; see the [module docs](self).
enum Strategy {
    /// MySQL/MariaDB and SQLite.
    Stepwise,
    /// PostgreSQL, one order per transaction.
    Pipelined,
    /// PostgreSQL, orders arriving together in one transaction.
    GroupCommit(Combiner<GroupedOrder, Answer>),
}

/// Places orders by the strategy chosen for the app's database and configuration.
pub(crate) struct Placer {
    db: Db,
    strategy: Strategy,
    stock_gate: StockGate,
    isolation: Isolation,
    unpaid_timeout_s: u64,
    retry: RetryPolicy,
}

impl Placer {
    /// Chooses the strategy for `db`'s backend and `order.group_commit`.
    pub(crate) fn new(db: Db, config: &OrderConfig) -> Placer {
        let grouped = &config.group_commit;
        let strategy = match db.backend() {
            Backend::Postgres if grouped.max_orders > 1 => {
                Strategy::GroupCommit(Combiner::new(grouped.lanes, grouped.max_orders))
            }
            Backend::Postgres => Strategy::Pipelined,
            Backend::Mysql | Backend::Sqlite => Strategy::Stepwise,
        };
        Placer {
            db,
            strategy,
            stock_gate: StockGate::new(config.stock_writers),
            isolation: config.isolation,
            unpaid_timeout_s: config.unpaid_timeout_s,
            retry: config.retry,
        }
    }

    /// The strategy's name, for the start-up log.
    pub(crate) fn strategy(&self) -> &'static str {
        match self.strategy {
            Strategy::Stepwise => "stepwise",
            Strategy::Pipelined => "pipelined",
            Strategy::GroupCommit(_) => "group commit",
        }
    }

    /// Places the order: committed, or refused with nothing written.
    pub(crate) async fn place(&self, request: &OrderRequest<'_>) -> Result<Placed, OrderError> {
        if let Strategy::GroupCommit(combiner) = &self.strategy {
            let order = GroupedOrder {
                user_id: request.user_id,
                key: request.key.clone(),
                hash: request.hash.to_vec(),
                lines: request.lines.to_vec(),
            };
            let settings = BatchSettings {
                isolation: self.isolation,
                unpaid_timeout_s: self.unpaid_timeout_s,
            };
            let batched = combiner
                .submit(order, |batch| {
                    group_commit::batch::place_batch(self.db.clone(), settings, batch)
                })
                .await;
            // `None`: no batch placed it; it is placed on its own.
            if let Some(answer) = batched {
                return answer;
            }
        }
        self.place_alone(request).await
    }

    /// One order in a transaction of its own.
    async fn place_alone(&self, request: &OrderRequest<'_>) -> Result<Placed, OrderError> {
        let mut conn = self.db.conn().await?;
        // The strategy was chosen for this backend: PostgreSQL's are pipelined (group
        // commit's fallback included), the others' stepwise.
        match &mut conn {
            DbConn::Postgres(c) => pipelined::place(self, c, request).await,
            DbConn::Mysql(c) => stepwise::place(self, &mut **c, request).await,
            DbConn::Sqlite(c) => stepwise::place(self, &mut **c, request).await,
        }
    }
}
