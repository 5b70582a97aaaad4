//! The `order_flash_sales` table: which products are on flash sale, and the admin
//! API's view of a sale.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use weapp::db::Db;

use crate::error::OrderError;
use crate::schema::{order_flash_sales as sales, products};

/// A sale with its product's price, as [`super::FlashSales::refresh`] reads it.
pub(super) struct SaleRow {
    pub product_id: i64,
    pub per_user_limit: i64,
    pub active: bool,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub price_fen: i64,
    pub product_active: bool,
}

/// A flash sale as an administrator sees it (`/api/admin/products/{id}/flash-sale`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct FlashSaleView {
    /// The product.
    pub product_id: i64,
    /// Most units one buyer may hold in the sale.
    pub per_user_limit: i64,
    /// Whether orders of the product are reserved in Redis now.
    pub active: bool,
    /// When the sale started (RFC 3339); a buyer's units count from then.
    pub started_at: String,
    /// When it ended (RFC 3339), if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// Units on hand in the database (not yet taken by a written order).
    pub stock: i64,
    /// Units Redis still lets buyers reserve; `null` until the counters are loaded,
    /// and once an ended sale's are dropped.
    pub available: Option<i64>,
    /// Reservations not yet written to the database (or written and not yet
    /// settled in Redis).
    pub queued: i64,
}

/// Every sale, with its product's price and whether the product is for sale.
pub(super) async fn load(db: &Db) -> Result<Vec<SaleRow>, OrderError> {
    let mut conn = db.conn().await?;
    type Row = (i64, i64, bool, i64, Option<i64>, i64, bool);
    let rows: Vec<Row> = weapp::with_conn!(conn, |c| {
        sales::table
            .inner_join(products::table.on(products::id.eq(sales::product_id)))
            .select((
                sales::product_id,
                sales::per_user_limit,
                sales::active,
                sales::started_at,
                sales::ended_at,
                products::price_fen,
                products::active,
            ))
            .load(c)
            .await
    })?;
    Ok(rows
        .into_iter()
        .map(
            |(
                product_id,
                per_user_limit,
                active,
                started_at,
                ended_at,
                price_fen,
                product_active,
            )| {
                SaleRow {
                    product_id,
                    per_user_limit,
                    active,
                    started_at,
                    ended_at: ended_at.filter(|_| !active),
                    price_fen,
                    product_active,
                }
            },
        )
        .collect())
}

/// Whether any sale is running: an app that cannot run them must not start then.
pub(crate) async fn any_running(db: &Db) -> Result<bool, OrderError> {
    let mut conn = db.conn().await?;
    let running: i64 = weapp::with_conn!(conn, |c| {
        sales::table
            .filter(sales::active.eq(true))
            .count()
            .get_result(c)
            .await
    })?;
    Ok(running > 0)
}

/// `(per_user_limit, active, started_at, ended_at)` of a product's sale.
pub(super) type SaleState = (i64, bool, i64, Option<i64>);

/// A product's sale, if it ever had one.
pub(super) async fn state(db: &Db, product_id: i64) -> Result<Option<SaleState>, OrderError> {
    let mut conn = db.conn().await?;
    Ok(weapp::with_conn!(conn, |c| {
        sales::table
            .find(product_id)
            .select((
                sales::per_user_limit,
                sales::active,
                sales::started_at,
                sales::ended_at,
            ))
            .first(c)
            .await
            .optional()
    })?)
}

/// Starts the product's sale (or changes the limit of the running one).
pub(super) async fn start(
    db: &Db,
    product_id: i64,
    per_user_limit: i64,
    now: i64,
) -> Result<(), OrderError> {
    let running = matches!(state(db, product_id).await?, Some((_, true, _, _)));
    let mut conn = db.conn().await?;
    let c = super::postgres(&mut conn)?;
    if running {
        diesel::update(sales::table.find(product_id))
            .set((
                sales::per_user_limit.eq(per_user_limit),
                sales::updated_at.eq(now),
            ))
            .execute(c)
            .await?;
        return Ok(());
    }
    diesel::insert_into(sales::table)
        .values((
            sales::product_id.eq(product_id),
            sales::per_user_limit.eq(per_user_limit),
            sales::active.eq(true),
            sales::started_at.eq(now),
            sales::updated_at.eq(now),
        ))
        .on_conflict(sales::product_id)
        .do_update()
        .set((
            sales::per_user_limit.eq(per_user_limit),
            sales::active.eq(true),
            sales::started_at.eq(now),
            sales::ended_at.eq(None::<i64>),
            sales::updated_at.eq(now),
        ))
        .execute(c)
        .await?;
    Ok(())
}

/// Ends the product's sale; `false` if none was running.
pub(super) async fn end(db: &Db, product_id: i64, now: i64) -> Result<bool, OrderError> {
    let mut conn = db.conn().await?;
    let ended = weapp::with_conn!(conn, |c| {
        diesel::update(sales::table.find(product_id).filter(sales::active.eq(true)))
            .set((
                sales::active.eq(false),
                sales::ended_at.eq(Some(now)),
                sales::updated_at.eq(now),
            ))
            .execute(c)
            .await
    })?;
    Ok(ended == 1)
}

/// Body of `PUT /api/admin/products/{id}/flash-sale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"per_user_limit": 1})))]
pub struct FlashSaleSettings {
    /// Most units one buyer may hold of the product in the sale (their cancelled
    /// orders give theirs back).
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub per_user_limit: i64,
}
