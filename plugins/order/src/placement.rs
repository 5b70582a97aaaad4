//! One order's rows: what the client asked for, priced, and written out once the
//! order has its id. Shared by every way of placing it (see [`crate::placing`] and
//! [`crate::group_commit`]).

use std::collections::HashMap;

use weapp::db::{AsyncPgConnection, BeginTransaction, Isolation};

use crate::backend::{NewItem, NewKey, NewOrder, OrderWrites, StepwisePlacement};
use crate::error::OrderError;
use crate::idempotency::IdempotencyKey;
use crate::model::{OrderCreated, OrderLine, OrderStatus, now_ms};
use crate::outbox::NewEvent;

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
    pub fn product_ids(&self) -> Vec<i64> {
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
    pub fn priced(
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
    pub fn written(&self, order_id: i64) -> Result<Written, OrderError> {
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

    /// PostgreSQL: the second round trip, with the transaction begun by the first
    /// and the order's id drawn there; see [`crate::pipelined`].
    pub async fn pipelined(
        &self,
        c: &mut AsyncPgConnection,
        order_id: i64,
    ) -> Result<Placed, OrderError> {
        let written = match self.written(order_id) {
            Ok(written) => written,
            Err(e) => {
                crate::pipelined::rollback(c).await;
                return Err(e);
            }
        };
        let writes = OrderWrites {
            items: &written.items,
            event: &written.event,
            key: &self.key(&written.body),
            lines: self.request.lines,
        };
        let event_id =
            crate::pipelined::write_and_commit(c, order_id, &self.order(), &writes).await?;
        Ok(Placed {
            body: written.body,
            event_id,
        })
    }

    /// MySQL/MariaDB and SQLite: one statement at a time in a transaction.
    pub async fn stepwise<C>(&self, c: &mut C, isolation: Isolation) -> Result<Placed, OrderError>
    where
        C: StepwisePlacement + BeginTransaction,
    {
        c.begin_with(isolation).await?;
        let result = async {
            let order_id = c.insert_order(&self.order()).await?;
            let written = self.written(order_id)?;
            let writes = OrderWrites {
                items: &written.items,
                event: &written.event,
                key: &self.key(&written.body),
                lines: self.request.lines,
            };
            let event_id = c.complete_order(&writes).await?;
            Ok::<_, OrderError>(Placed {
                body: written.body,
                event_id,
            })
        }
        .await;
        weapp::db::transaction::finish(c, result).await
    }
}
