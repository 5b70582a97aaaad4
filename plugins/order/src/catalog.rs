//! Products and their stock.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use weapp::{transaction, with_conn};

use crate::error::OrderError;
use crate::model::{NewProduct, Page, Product, now_ms};
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

/// A new row of `products`.
#[derive(Debug, Insertable)]
#[diesel(table_name = products)]
struct NewProductRow<'a> {
    name: &'a str,
    description: &'a str,
    price_fen: i64,
    active: bool,
    created_at: i64,
}

weapp::insert_returning_id! {
    /// Adding a product and learning its id.
    trait InsertProduct { fn insert_product(&NewProductRow<'_>) } => products::table, products::id;
}

impl Orders {
    /// Products for sale, by id.
    pub async fn products(&self, page: i64, per_page: i64) -> Result<Page<Product>, OrderError> {
        let mut conn = self.db.conn().await?;
        let offset = (page - 1).saturating_mul(per_page);
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
        let has_more = rows.len() as i64 > per_page;
        let items = rows
            .into_iter()
            .take(per_page as usize)
            .map(product)
            .collect();
        Ok(Page {
            items,
            page,
            per_page,
            has_more,
        })
    }

    /// One product for sale.
    pub async fn product(&self, id: i64) -> Result<Option<Product>, OrderError> {
        let mut conn = self.db.conn().await?;
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

    /// Adds a product with its initial stock; returns its id.
    pub async fn add_product(&self, new: &NewProduct) -> Result<i64, OrderError> {
        if new.price_fen < 0 || new.stock < 0 || new.name.trim().is_empty() {
            return Err(OrderError::Invalid(
                "a product needs a name, and a price and stock of at least 0".to_owned(),
            ));
        }
        let mut conn = self.db.conn().await?;
        let row = NewProductRow {
            name: &new.name,
            description: &new.description,
            price_fen: new.price_fen,
            active: true,
            created_at: now_ms(),
        };
        let id = transaction!(conn, self.config.isolation, |c| {
            let id = c.insert_product(&row).await?;
            diesel::insert_into(stock::table)
                .values((stock::product_id.eq(id), stock::qty.eq(new.stock)))
                .execute(c)
                .await?;
            Ok::<_, OrderError>(id)
        })?;
        Ok(id)
    }

    /// Adds `products` unless the catalogue already has some (demo data for a fresh
    /// embedded database); returns how many were added.
    pub async fn seed_products(&self, products: &[NewProduct]) -> Result<usize, OrderError> {
        let mut conn = self.db.conn().await?;
        let existing: i64 = with_conn!(conn, |c| products::table.count().get_result(c).await)?;
        drop(conn);
        if existing > 0 {
            return Ok(0);
        }
        for new in products {
            self.add_product(new).await?;
        }
        Ok(products.len())
    }

    /// Sets a product's units on hand.
    pub async fn set_stock(&self, product_id: i64, qty: i64) -> Result<(), OrderError> {
        let mut conn = self.db.conn().await?;
        let rows = with_conn!(conn, |c| {
            diesel::update(stock::table.find(product_id))
                .set(stock::qty.eq(qty.max(0)))
                .execute(c)
                .await
        })?;
        if rows == 0 {
            return Err(OrderError::UnknownProduct(product_id));
        }
        Ok(())
    }
}
