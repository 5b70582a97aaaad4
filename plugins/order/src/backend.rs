//! Statements whose SQL differs by backend, behind traits so transaction bodies stay
//! backend-neutral: `RETURNING` vs `LAST_INSERT_ID()`, `FOR UPDATE` vs SQLite's
//! immediate transactions, multi-row inserts. PostgreSQL places orders through
//! [`crate::pipelined`] instead.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use weapp::db::{AsyncMysqlConnection, AsyncPgConnection, SqliteConn};

use diesel::result::{DatabaseErrorKind, Error as QueryError};

use crate::error::OrderError;
use crate::model::OrderLine;
use crate::outbox::NewEvent;
use crate::schema::{order_idempotency_keys, order_items, order_outbox, orders, stock};

/// A new row of `orders`.
#[derive(Debug, Insertable)]
#[diesel(table_name = orders)]
pub(crate) struct NewOrder<'a> {
    pub user_id: i64,
    pub status: &'a str,
    pub total_fen: i64,
    pub version: i32,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
}

/// A new row of `order_items`.
#[derive(Debug, Insertable)]
#[diesel(table_name = order_items)]
pub(crate) struct NewItem {
    pub order_id: i64,
    pub product_id: i64,
    pub qty: i64,
    pub price_fen: i64,
}

/// A new row of `order_idempotency_keys`.
#[derive(Debug, Insertable)]
#[diesel(table_name = order_idempotency_keys)]
pub(crate) struct NewKey<'a> {
    pub user_id: i64,
    pub idem_key: &'a str,
    pub request_hash: &'a [u8],
    pub status: i32,
    pub response: &'a str,
    pub created_at: i64,
}

/// Everything an order writes after its own row, in this order: lines, event, the
/// key with its answer (a duplicate stops here), then the stock of each line (by
/// product id; the contended rows come last, so they stay locked the least).
pub(crate) struct OrderWrites<'a> {
    pub items: &'a [NewItem],
    pub event: &'a NewEvent,
    pub key: &'a NewKey<'a>,
    pub lines: &'a [OrderLine],
}

/// A duplicate key means another request with this key committed first.
pub(crate) fn key_taken(e: QueryError) -> OrderError {
    match e {
        QueryError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => OrderError::KeyTaken,
        e => OrderError::Query(e),
    }
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

/// `sequential_writes!(conn, writes)`: the writes after the lines, one statement
/// after another; evaluates to the event's id.
macro_rules! sequential_writes {
    ($conn:expr, $w:expr) => {{
        let event_id = $conn.insert_event($w.event).await?;
        diesel::insert_into(order_idempotency_keys::table)
            .values($w.key)
            .execute($conn)
            .await
            .map_err(key_taken)?;
        for line in $w.lines {
            let taken = diesel::update(
                stock::table
                    .filter(stock::product_id.eq(line.product_id))
                    .filter(stock::qty.ge(line.qty)),
            )
            .set(stock::qty.eq(stock::qty - line.qty))
            .execute($conn)
            .await?;
            check_taken(taken, line)?;
        }
        Ok(event_id)
    }};
}

/// An order's row as transitions read it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = orders)]
pub(crate) struct OrderRow {
    pub id: i64,
    pub user_id: Option<i64>,
    pub status: String,
    pub total_fen: i64,
    pub version: i32,
    pub payment_id: Option<String>,
}

/// Backend-specific statements of order transitions.
pub(crate) trait OrderStatements {
    /// Reads an order and locks it for the rest of the transaction.
    async fn lock_order(&mut self, id: i64) -> QueryResult<Option<OrderRow>>;
}

/// Placing an order one statement at a time (MySQL/MariaDB and SQLite).
pub(crate) trait StepwisePlacement: Send {
    /// `(id, price_fen)` of the products among `ids` that are for sale.
    fn prices(
        &mut self,
        ids: &[i64],
    ) -> impl std::future::Future<Output = QueryResult<Vec<(i64, i64)>>> + Send;
    /// Inserts an order and returns its id.
    fn insert_order(
        &mut self,
        order: &NewOrder<'_>,
    ) -> impl std::future::Future<Output = QueryResult<i64>> + Send;
    /// Writes the rest of an order and takes its stock; returns the event's id.
    fn complete_order(
        &mut self,
        writes: &OrderWrites<'_>,
    ) -> impl std::future::Future<Output = Result<i64, OrderError>> + Send;
}

/// Writing an outbox event and learning its id, to hint the worker after commit.
pub(crate) trait InsertEvent {
    /// Inserts `event`; returns its id.
    async fn insert_event(&mut self, event: &NewEvent) -> QueryResult<i64>;
}

/// `INSERT … RETURNING id`, where the backend has it.
macro_rules! insert_event_returning_id {
    ($($conn:ty),+) => {$(
        impl InsertEvent for $conn {
            async fn insert_event(&mut self, event: &NewEvent) -> QueryResult<i64> {
                diesel::insert_into(order_outbox::table)
                    .values(event)
                    .returning(order_outbox::id)
                    .get_result(self)
                    .await
            }
        }
    )+};
}
insert_event_returning_id!(AsyncPgConnection, SqliteConn);

impl InsertEvent for AsyncMysqlConnection {
    // No RETURNING: the id comes from the same session's LAST_INSERT_ID().
    async fn insert_event(&mut self, event: &NewEvent) -> QueryResult<i64> {
        diesel::insert_into(order_outbox::table)
            .values(event)
            .execute(self)
            .await?;
        last_insert_id(self).await
    }
}

async fn last_insert_id(c: &mut AsyncMysqlConnection) -> QueryResult<i64> {
    diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        weapp::db::Backend::Mysql.last_insert_id_sql(),
    ))
    .get_result(c)
    .await
}

impl OrderStatements for AsyncPgConnection {
    async fn lock_order(&mut self, id: i64) -> QueryResult<Option<OrderRow>> {
        orders::table
            .find(id)
            .select(OrderRow::as_select())
            .for_update()
            .first(self)
            .await
            .optional()
    }
}

impl StepwisePlacement for AsyncMysqlConnection {
    async fn prices(&mut self, ids: &[i64]) -> QueryResult<Vec<(i64, i64)>> {
        crate::catalog::prices_of(ids).load(self).await
    }

    async fn complete_order(&mut self, w: &OrderWrites<'_>) -> Result<i64, OrderError> {
        diesel::insert_into(order_items::table)
            .values(w.items)
            .execute(self)
            .await?;
        sequential_writes!(self, w)
    }

    // No RETURNING: the id comes from the same session's LAST_INSERT_ID().
    async fn insert_order(&mut self, order: &NewOrder<'_>) -> QueryResult<i64> {
        diesel::insert_into(orders::table)
            .values(order)
            .execute(self)
            .await?;
        last_insert_id(self).await
    }
}

impl OrderStatements for AsyncMysqlConnection {
    async fn lock_order(&mut self, id: i64) -> QueryResult<Option<OrderRow>> {
        orders::table
            .find(id)
            .select(OrderRow::as_select())
            .for_update()
            .first(self)
            .await
            .optional()
    }
}

impl StepwisePlacement for SqliteConn {
    async fn prices(&mut self, ids: &[i64]) -> QueryResult<Vec<(i64, i64)>> {
        crate::catalog::prices_of(ids).load(self).await
    }

    async fn complete_order(&mut self, w: &OrderWrites<'_>) -> Result<i64, OrderError> {
        // diesel-async offers no multi-row INSERT for SQLite; inside the transaction the
        // rows are cheap local writes anyway.
        for item in w.items {
            diesel::insert_into(order_items::table)
                .values(item)
                .execute(self)
                .await?;
        }
        sequential_writes!(self, w)
    }

    async fn insert_order(&mut self, order: &NewOrder<'_>) -> QueryResult<i64> {
        diesel::insert_into(orders::table)
            .values(order)
            .returning(orders::id)
            .get_result(self)
            .await
    }
}

impl OrderStatements for SqliteConn {
    // SQLite has no row locks: transactions begin IMMEDIATE, holding the database's
    // write lock, which serialises every transition.
    async fn lock_order(&mut self, id: i64) -> QueryResult<Option<OrderRow>> {
        orders::table
            .find(id)
            .select(OrderRow::as_select())
            .first(self)
            .await
            .optional()
    }
}
