//! Starting, ending and looking at a product's flash sale (the admin API).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use weapp::kv::KvError;

use super::FlashSales;
use super::store::{self, FlashSaleView};
use super::sync::Recount;
use crate::error::OrderError;
use crate::model::{now_ms, rfc3339};
use crate::schema::{products, stock};

impl FlashSales {
    /// Puts `product_id` on flash sale with `per_user_limit` (or changes the limit of
    /// its running sale); the counters are loaded before this returns.
    pub(crate) async fn start_sale(
        &self,
        product_id: i64,
        per_user_limit: i64,
    ) -> Result<FlashSaleView, weapp::Error> {
        if !(1..=crate::model::MAX_STOCK).contains(&per_user_limit) {
            return Err(weapp::Error::bad_request(
                "invalid_flash_sale",
                format!("per_user_limit must be 1 to {}", crate::model::MAX_STOCK),
            ));
        }
        let mut conn = self.db.conn().await?;
        let found: Option<i64> = weapp::with_conn!(conn, |c| {
            products::table
                .find(product_id)
                .select(products::id)
                .first(c)
                .await
                .optional()
        })
        .map_err(OrderError::from)?;
        drop(conn);
        found.ok_or(OrderError::ProductNotFound)?;
        store::start(&self.db, product_id, per_user_limit, now_ms()).await?;
        self.refresh().await?;
        let sale = self
            .all_sales()
            .into_iter()
            .find(|s| s.product_id == product_id);
        if let Some(sale) = sale.filter(|s| s.active) {
            self.sync(&sale, &Recount::All).await?;
        }
        self.view(product_id).await
    }

    /// Ends `product_id`'s sale: its orders are placed the ordinary way from now;
    /// reservations made before are still written.
    pub(crate) async fn end_sale(&self, product_id: i64) -> Result<FlashSaleView, weapp::Error> {
        if !store::end(&self.db, product_id, now_ms()).await? {
            return Err(weapp::Error::not_found(
                "the product has no running flash sale",
            ));
        }
        self.refresh().await?;
        self.view(product_id).await
    }

    /// `product_id`'s sale, running or ended.
    pub(crate) async fn view(&self, product_id: i64) -> Result<FlashSaleView, weapp::Error> {
        let (per_user_limit, active, started_at, ended_at) = store::state(&self.db, product_id)
            .await?
            .ok_or_else(|| weapp::Error::not_found("the product never had a flash sale"))?;
        let mut conn = self.db.conn().await?;
        let on_hand: Option<i64> = weapp::with_conn!(conn, |c| {
            stock::table
                .find(product_id)
                .select(stock::qty)
                .first(c)
                .await
                .optional()
        })
        .map_err(OrderError::from)?;
        drop(conn);
        let keys = super::scripts::SaleKeys::new(&self.key_prefix, product_id);
        let mut redis = self.redis.clone();
        let (available, queued): (Option<i64>, i64) = redis::pipe()
            .cmd("GET")
            .arg(&keys.stock)
            .cmd("HLEN")
            .arg(&keys.held)
            .query_async(&mut redis)
            .await
            .map_err(KvError::from)?;
        Ok(FlashSaleView {
            product_id,
            per_user_limit,
            active,
            started_at: rfc3339(started_at),
            ended_at: ended_at.map(rfc3339),
            stock: on_hand.unwrap_or(0),
            available,
            queued,
        })
    }
}
