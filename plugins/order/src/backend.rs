//! The two statements whose SQL differs by backend, behind one trait so transaction
//! bodies stay backend-neutral.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use weapp::db::{AsyncMysqlConnection, AsyncPgConnection, SqliteConn};

use crate::schema::{order_items, orders};

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

/// Backend-specific statements.
pub(crate) trait OrderStatements {
    /// Inserts an order and returns its id.
    async fn insert_order(&mut self, order: &NewOrder<'_>) -> QueryResult<i64>;
    /// Inserts an order's lines.
    async fn insert_items(&mut self, items: &[NewItem]) -> QueryResult<()>;
    /// Reads an order and locks it for the rest of the transaction.
    async fn lock_order(&mut self, id: i64) -> QueryResult<Option<OrderRow>>;
}

impl OrderStatements for AsyncPgConnection {
    async fn insert_items(&mut self, items: &[NewItem]) -> QueryResult<()> {
        diesel::insert_into(order_items::table)
            .values(items)
            .execute(self)
            .await
            .map(drop)
    }

    async fn insert_order(&mut self, order: &NewOrder<'_>) -> QueryResult<i64> {
        diesel::insert_into(orders::table)
            .values(order)
            .returning(orders::id)
            .get_result(self)
            .await
    }

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

impl OrderStatements for AsyncMysqlConnection {
    async fn insert_items(&mut self, items: &[NewItem]) -> QueryResult<()> {
        diesel::insert_into(order_items::table)
            .values(items)
            .execute(self)
            .await
            .map(drop)
    }

    // No RETURNING: the id comes from the same session's LAST_INSERT_ID().
    async fn insert_order(&mut self, order: &NewOrder<'_>) -> QueryResult<i64> {
        diesel::insert_into(orders::table)
            .values(order)
            .execute(self)
            .await?;
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "CAST(LAST_INSERT_ID() AS SIGNED)",
        ))
        .get_result(self)
        .await
    }

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

impl OrderStatements for SqliteConn {
    // diesel-async offers no multi-row INSERT for SQLite; inside the transaction the
    // rows are cheap local writes anyway.
    async fn insert_items(&mut self, items: &[NewItem]) -> QueryResult<()> {
        for item in items {
            diesel::insert_into(order_items::table)
                .values(item)
                .execute(self)
                .await?;
        }
        Ok(())
    }

    async fn insert_order(&mut self, order: &NewOrder<'_>) -> QueryResult<i64> {
        diesel::insert_into(orders::table)
            .values(order)
            .returning(orders::id)
            .get_result(self)
            .await
    }

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
