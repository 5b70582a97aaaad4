//! Statements whose SQL differs by backend, behind traits so transaction bodies stay
//! backend-neutral: `RETURNING` vs `LAST_INSERT_ID()` ([`weapp::insert_returning_id!`]),
//! `FOR UPDATE` vs SQLite's immediate transactions, multi-row inserts. PostgreSQL
//! places orders through [`crate::placement`]'s pipelined statements instead.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use weapp::db::{AsyncMysqlConnection, AsyncPgConnection, SqliteConn};

use crate::error::OrderError;
use crate::model::{OrderLine, OrderStatus};
use crate::outbox::NewEvent;
use crate::rows::{NewOrder, OrderRow, OrderWrites, Transition, key_taken, prices_of};
use crate::schema::{order_idempotency_keys, order_items, order_outbox, orders, stock};

weapp::insert_returning_id! {
    /// Writing an order's row and learning its id.
    pub(crate) trait InsertOrder { fn insert_order(&NewOrder<'_>) } => orders::table, orders::id;
}

weapp::insert_returning_id! {
    /// Writing an outbox event and learning its id, to hint the worker after commit.
    pub(crate) trait InsertEvent { fn insert_event(&NewEvent) } => order_outbox::table, order_outbox::id;
}

/// Backend-specific statements of order transitions.
pub(crate) trait OrderStatements {
    /// Reads an order and locks it for the rest of the transaction.
    async fn lock_order(&mut self, id: i64) -> QueryResult<Option<OrderRow>>;

    /// Applies `change` to `row`, only if the order is still `from` at the version
    /// read: another transaction that won the race leaves it untouched
    /// ([`OrderError::Concurrent`], retried).
    async fn advance(
        &mut self,
        row: &OrderRow,
        from: OrderStatus,
        change: &Transition<'_>,
    ) -> Result<(), OrderError>;

    /// Puts an order's units back on hand, in product order (as orders take them,
    /// so two transactions never wait on each other's rows in opposite orders);
    /// returns the products restocked.
    async fn restock(&mut self, order_id: i64) -> QueryResult<Vec<i64>>;
}

/// Implements [`OrderStatements`]; `lock` is how the order's row is locked.
macro_rules! order_statements {
    ($conn:ty, |$query:ident| $lock:expr) => {
        impl OrderStatements for $conn {
            async fn lock_order(&mut self, id: i64) -> QueryResult<Option<OrderRow>> {
                let $query = orders::table.find(id).select(OrderRow::as_select());
                $lock.first(self).await.optional()
            }

            async fn advance(
                &mut self,
                row: &OrderRow,
                from: OrderStatus,
                change: &Transition<'_>,
            ) -> Result<(), OrderError> {
                let moved = diesel::update(
                    orders::table
                        .find(row.id)
                        .filter(orders::version.eq(row.version))
                        .filter(orders::status.eq(from.as_str())),
                )
                .set(change)
                .execute(self)
                .await?;
                match moved {
                    1 => Ok(()),
                    _ => Err(OrderError::Concurrent),
                }
            }

            async fn restock(&mut self, order_id: i64) -> QueryResult<Vec<i64>> {
                let lines: Vec<(i64, i64)> = order_items::table
                    .filter(order_items::order_id.eq(order_id))
                    .order(order_items::product_id)
                    .select((order_items::product_id, order_items::qty))
                    .load(self)
                    .await?;
                for (product_id, qty) in &lines {
                    diesel::update(stock::table.find(product_id))
                        .set(stock::qty.eq(stock::qty + qty))
                        .execute(self)
                        .await?;
                }
                Ok(lines
                    .into_iter()
                    .map(|(product_id, _)| product_id)
                    .collect())
            }
        }
    };
}
order_statements!(AsyncPgConnection, |query| query.for_update());
order_statements!(AsyncMysqlConnection, |query| query.for_update());
// SQLite has no row locks: transactions begin IMMEDIATE, holding the database's
// write lock, which serialises every transition.
order_statements!(SqliteConn, |query| query);

/// Placing an order one statement at a time (MySQL/MariaDB and SQLite).
pub(crate) trait StepwisePlacement: InsertOrder + Send {
    /// `(id, price_fen)` of the products among `ids` that are for sale.
    fn prices(
        &mut self,
        ids: &[i64],
    ) -> impl std::future::Future<Output = QueryResult<Vec<(i64, i64)>>> + Send;
    /// Writes the rest of an order and takes its stock; returns the event's id.
    fn complete_order(
        &mut self,
        writes: &OrderWrites<'_>,
    ) -> impl std::future::Future<Output = Result<i64, OrderError>> + Send;
}

/// `1` taken, else the line's product is out of stock.
fn check_taken(taken: usize, line: &OrderLine) -> Result<(), OrderError> {
    if taken == 1 {
        Ok(())
    } else {
        Err(OrderError::OutOfStock {
            product_id: line.product_id,
        })
    }
}

/// Implements [`StepwisePlacement`]; `insert_items` writes the order's lines.
macro_rules! stepwise_placement {
    ($conn:ty, |$c:ident, $items:ident| $insert_items:expr) => {
        impl StepwisePlacement for $conn {
            async fn prices(&mut self, ids: &[i64]) -> QueryResult<Vec<(i64, i64)>> {
                prices_of(ids).load(self).await
            }

            async fn complete_order(&mut self, w: &OrderWrites<'_>) -> Result<i64, OrderError> {
                {
                    let ($c, $items) = (&mut *self, w.items);
                    $insert_items;
                }
                let event_id = self.insert_event(w.event).await?;
                diesel::insert_into(order_idempotency_keys::table)
                    .values(w.key)
                    .execute(self)
                    .await
                    .map_err(key_taken)?;
                for line in w.lines {
                    let taken = diesel::update(
                        stock::table
                            .filter(stock::product_id.eq(line.product_id))
                            .filter(stock::qty.ge(line.qty)),
                    )
                    .set(stock::qty.eq(stock::qty - line.qty))
                    .execute(self)
                    .await?;
                    check_taken(taken, line)?;
                }
                Ok(event_id)
            }
        }
    };
}
stepwise_placement!(AsyncMysqlConnection, |c, items| {
    diesel::insert_into(order_items::table)
        .values(items)
        .execute(c)
        .await?
});
// diesel-async offers no multi-row INSERT for SQLite; inside the transaction the rows
// are cheap local writes anyway.
stepwise_placement!(SqliteConn, |c, items| for item in items {
    diesel::insert_into(order_items::table)
        .values(item)
        .execute(c)
        .await?;
});
