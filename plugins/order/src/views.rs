//! Orders as their buyer sees them.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use weapp::db::ReadFrom;
use weapp::with_conn;

use crate::error::OrderError;
use crate::model::{OrderItem, OrderStatus, OrderView, Page, page_offset, rfc3339};
use crate::schema::{order_items, orders};
use crate::service::Orders;

type ViewRow = (i64, String, i64, Option<String>, i64, i64, Option<i64>);

const VIEW_COLUMNS: (
    orders::id,
    orders::status,
    orders::total_fen,
    orders::cancel_reason,
    orders::created_at,
    orders::expires_at,
    orders::paid_at,
) = (
    orders::id,
    orders::status,
    orders::total_fen,
    orders::cancel_reason,
    orders::created_at,
    orders::expires_at,
    orders::paid_at,
);

impl Orders {
    /// One of `user_id`'s orders; someone else's is not found. Read `from` the
    /// primary when the caller must see their latest writes.
    pub async fn order(
        &self,
        user_id: i64,
        order_id: i64,
        from: ReadFrom,
    ) -> Result<OrderView, OrderError> {
        let mut conn = self.db.read_conn(from).await?;
        let row: Option<ViewRow> = with_conn!(conn, |c| {
            orders::table
                .find(order_id)
                .filter(orders::user_id.eq(user_id))
                .select(VIEW_COLUMNS)
                .first(c)
                .await
                .optional()
        })?;
        drop(conn);
        let Some(row) = row else {
            // Reserved in a flash sale and not written yet?
            if let Some(flash) = &self.flash
                && let Some(view) = flash.reserved_order(user_id, order_id).await?
            {
                return Ok(view);
            }
            return Err(OrderError::OrderNotFound);
        };
        let mut views = self.with_items(vec![row], from).await?;
        views.pop().ok_or(OrderError::OrderNotFound)
    }

    /// `user_id`'s orders, newest first, read `from` a replica or the primary.
    pub async fn orders_of(
        &self,
        user_id: i64,
        page: i64,
        per_page: i64,
        from: ReadFrom,
    ) -> Result<Page<OrderView>, OrderError> {
        let mut conn = self.db.read_conn(from).await?;
        let offset = page_offset(page, per_page);
        let rows: Vec<ViewRow> = with_conn!(conn, |c| {
            orders::table
                .filter(orders::user_id.eq(user_id))
                .order(orders::id.desc())
                .select(VIEW_COLUMNS)
                .limit(per_page + 1)
                .offset(offset)
                .load(c)
                .await
        })?;
        drop(conn);
        let rows = Page::from_rows(rows, page, per_page, |row| row);
        Ok(Page {
            items: self.with_items(rows.items, from).await?,
            page,
            per_page,
            has_more: rows.has_more,
        })
    }

    async fn with_items(
        &self,
        rows: Vec<ViewRow>,
        from: ReadFrom,
    ) -> Result<Vec<OrderView>, OrderError> {
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let mut conn = self.db.read_conn(from).await?;
        let items: Vec<(i64, i64, i64, i64)> = with_conn!(conn, |c| {
            order_items::table
                .filter(order_items::order_id.eq_any(&ids))
                .order((order_items::order_id, order_items::product_id))
                .select((
                    order_items::order_id,
                    order_items::product_id,
                    order_items::qty,
                    order_items::price_fen,
                ))
                .load(c)
                .await
        })?;
        let mut by_order: HashMap<i64, Vec<OrderItem>> = HashMap::new();
        for (order_id, product_id, qty, price_fen) in items {
            by_order.entry(order_id).or_default().push(OrderItem {
                product_id,
                qty,
                price_fen,
            });
        }
        Ok(rows
            .into_iter()
            .map(
                |(id, status, total_fen, cancel_reason, created_at, expires_at, paid_at)| {
                    OrderView {
                        order_id: id,
                        status: OrderStatus::parse(&status).unwrap_or(OrderStatus::Cancelled),
                        total_fen,
                        items: by_order.remove(&id).unwrap_or_default(),
                        cancel_reason,
                        created_at: rfc3339(created_at),
                        expires_at: rfc3339(expires_at),
                        paid_at: paid_at.map(rfc3339),
                    }
                },
            )
            .collect())
    }
}
