//! Products and their stock: what buyers see here; what administrators change is in
//! `admin`.

mod admin;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use weapp::db::ReadFrom;
use weapp::with_conn;

use crate::error::OrderError;
use crate::model::{Page, Product, page_offset};
use crate::schema::{products, stock};
use crate::service::Orders;

type ProductColumns = (
    products::id,
    products::name,
    products::description,
    products::price_fen,
    stock::qty,
);

const PRODUCT_COLUMNS: ProductColumns = (
    products::id,
    products::name,
    products::description,
    products::price_fen,
    stock::qty,
);

fn product((id, name, description, price_fen, stock): (i64, String, String, i64, i64)) -> Product {
    Product {
        id,
        name,
        description,
        price_fen,
        stock,
    }
}

impl Orders {
    /// Products for sale, by id; from a read replica when there is one (the
    /// catalogue may lag its edits by `database.max_replica_lag_ms`).
    pub async fn products(&self, page: i64, per_page: i64) -> Result<Page<Product>, OrderError> {
        let mut conn = self.db.read_conn(ReadFrom::Replica).await?;
        let offset = page_offset(page, per_page);
        let rows: Vec<(i64, String, String, i64, i64)> = with_conn!(conn, |c| {
            products::table
                .inner_join(stock::table.on(stock::product_id.eq(products::id)))
                .filter(products::active.eq(true))
                .order(products::id)
                .select(PRODUCT_COLUMNS)
                .limit(per_page + 1)
                .offset(offset)
                .load(c)
                .await
        })?;
        Ok(Page::from_rows(rows, page, per_page, product))
    }

    /// One product for sale; from a read replica when there is one.
    pub async fn product(&self, id: i64) -> Result<Option<Product>, OrderError> {
        let mut conn = self.db.read_conn(ReadFrom::Replica).await?;
        let row = with_conn!(conn, |c| {
            products::table
                .inner_join(stock::table.on(stock::product_id.eq(products::id)))
                .filter(products::id.eq(id))
                .filter(products::active.eq(true))
                .select(PRODUCT_COLUMNS)
                .first(c)
                .await
                .optional()
        })?;
        Ok(row.map(product))
    }
}
