//! The order plugin's part in data export and erasure.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use weapp::db::{Isolation, ReadFrom};
use weapp::transaction;

use crate::error::OrderError;
use crate::model::OrderView;
use crate::schema::{order_idempotency_keys as keys, orders};
use crate::service::Orders;

/// Most orders one export lists.
const EXPORT_LIMIT: i64 = 10_000;

impl Orders {
    /// Every order of the user, for the data export, read `from` a replica or the
    /// primary.
    pub async fn export_user(
        &self,
        user_id: i64,
        from: ReadFrom,
    ) -> Result<Vec<OrderView>, OrderError> {
        Ok(self.orders_of(user_id, 1, EXPORT_LIMIT, from).await?.items)
    }

    /// Anonymises the user's orders (they stay for accounting, with no user) and
    /// forgets their idempotency keys; returns how many orders were anonymised.
    pub async fn erase_user(&self, user_id: i64) -> Result<usize, OrderError> {
        let mut conn = self.db.conn().await?;
        transaction!(conn, Isolation::BackendDefault, |c| {
            let anonymised = diesel::update(orders::table.filter(orders::user_id.eq(user_id)))
                .set(orders::user_id.eq(None::<i64>))
                .execute(c)
                .await?;
            diesel::delete(keys::table.filter(keys::user_id.eq(user_id)))
                .execute(c)
                .await?;
            Ok::<_, OrderError>(anonymised)
        })
    }
}
