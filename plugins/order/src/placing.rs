//! Placing an order as `POST /api/orders` asks: validated, placed by the app's
//! strategy (the private `placement` module), and answered the same way every time its
//! `Idempotency-Key` comes back.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use weapp::with_conn;

use crate::error::OrderError;
use crate::idempotency::{IdempotencyKey, StoredResponse, request_hash};
use crate::model::OrderStatus;
use crate::model::{OrderLine, now_ms};
use crate::placement::OrderRequest;
use crate::rows::key_taken;
use crate::schema::order_idempotency_keys as keys;
use crate::schema::{order_items, orders};
use crate::service::Orders;

/// Rows read to count what a user holds unpaid: enough for any cap worth setting.
const PENDING_ROWS_READ: i64 = 10_000;

impl Orders {
    /// Places an order for `user_id`, or answers as the first request with this key
    /// did. Refusals that depend on the stored state (out of stock) are kept under the
    /// key too; malformed input is not. An order of a product on flash sale is
    /// reserved instead (`202`, see [`crate::flash`]); its refusals are not kept.
    pub async fn place_order(
        &self,
        user_id: i64,
        key: &IdempotencyKey,
        lines: &[OrderLine],
    ) -> Result<StoredResponse, weapp::Error> {
        let lines = self.validated(lines)?;
        if let Some(flash) = &self.flash
            && let Some(sale) = flash.sale_for(&lines)?
        {
            let hash = request_hash(&lines);
            return flash.reserve(&sale, user_id, key, &lines[0], &hash).await;
        }
        self.check_pending_cap(user_id, &lines).await?;
        let hash = request_hash(&lines);
        let request = OrderRequest {
            user_id,
            key,
            hash: &hash,
            lines: &lines,
        };
        match self.placer.place(&request).await {
            Ok(placed) => {
                self.outbox.hint([placed.event_id]);
                Ok(StoredResponse {
                    status: 201,
                    body: placed.body,
                    replayed: false,
                })
            }
            Err(OrderError::KeyTaken) => self.replay(user_id, key, &hash).await,
            // A product withdrawn since the first attempt: the stored answer wins.
            Err(OrderError::UnknownProduct(id)) => match self.stored(user_id, key, &hash).await? {
                Some(stored) => Ok(stored),
                None => Err(OrderError::UnknownProduct(id).into()),
            },
            Err(OrderError::OutOfStock { product_id }) => {
                let body = serde_json::json!({
                    "code": "out_of_stock",
                    "message": format!("not enough stock for product {product_id}"),
                    "product_id": product_id,
                })
                .to_string();
                self.keep_refusal(user_id, key, &hash, 409, body).await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Refuses an order that would take the user past `order.max_pending_orders` or
    /// `order.max_pending_units` unpaid. Checked before the order's transaction, so
    /// concurrent orders of one user may pass it together; it bounds what one
    /// account holds, not the last unit. A refusal is not kept under the key: once
    /// the user pays or cancels, the same request succeeds.
    async fn check_pending_cap(
        &self,
        user_id: i64,
        lines: &[OrderLine],
    ) -> Result<(), weapp::Error> {
        let (max_orders, max_units) = (
            self.config.max_pending_orders,
            self.config.max_pending_units,
        );
        if max_orders == 0 && max_units == 0 {
            return Ok(());
        }
        let mut conn = self.db.conn().await?;
        let held: Vec<(i64, i64)> = with_conn!(conn, |c| {
            orders::table
                .inner_join(order_items::table.on(order_items::order_id.eq(orders::id)))
                .filter(orders::user_id.eq(user_id))
                .filter(orders::status.eq(OrderStatus::Pending.as_str()))
                .select((orders::id, order_items::qty))
                .limit(PENDING_ROWS_READ)
                .load(c)
                .await
        })
        .map_err(OrderError::from)?;
        drop(conn);
        let orders_held = held
            .iter()
            .map(|(id, _)| id)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let units_held: i64 = held.iter().map(|(_, qty)| qty).sum();
        let units_asked: i64 = lines.iter().map(|l| l.qty).sum();
        if max_orders > 0 && orders_held >= max_orders as usize {
            return Err(weapp::Error::conflict(
                "too_many_pending_orders",
                format!(
                    "you have {orders_held} unpaid orders, the most allowed: pay or cancel one first"
                ),
            ));
        }
        if max_units > 0 && units_held.saturating_add(units_asked) > max_units {
            return Err(weapp::Error::conflict(
                "too_many_pending_units",
                format!(
                    "unpaid orders may hold at most {max_units} units; you hold {units_held}: pay or cancel first"
                ),
            ));
        }
        Ok(())
    }

    /// Checks lines and returns them sorted by product.
    fn validated(&self, lines: &[OrderLine]) -> Result<Vec<OrderLine>, weapp::Error> {
        let invalid = |message: String| weapp::Error::bad_request("invalid_items", message);
        if lines.is_empty() || lines.len() > self.config.max_items {
            return Err(invalid(format!(
                "items must hold 1 to {} lines",
                self.config.max_items
            )));
        }
        let mut sorted = lines.to_vec();
        sorted.sort_by_key(|l| l.product_id);
        for (i, line) in sorted.iter().enumerate() {
            if line.product_id <= 0 {
                return Err(invalid(format!(
                    "product_id {} is not valid",
                    line.product_id
                )));
            }
            if line.qty < 1 || line.qty > self.config.max_qty {
                return Err(invalid(format!(
                    "qty of product {} must be 1 to {}",
                    line.product_id, self.config.max_qty
                )));
            }
            if i > 0 && sorted[i - 1].product_id == line.product_id {
                return Err(invalid(format!(
                    "product {} appears twice; put the total qty on one line",
                    line.product_id
                )));
            }
        }
        Ok(sorted)
    }

    /// Keeps a refusal under the key, or answers with what another request with the
    /// same key kept first.
    async fn keep_refusal(
        &self,
        user_id: i64,
        key: &IdempotencyKey,
        hash: &[u8],
        status: u16,
        body: String,
    ) -> Result<StoredResponse, weapp::Error> {
        let mut conn = self.db.conn().await?;
        let kept = with_conn!(conn, |c| {
            diesel::insert_into(keys::table)
                .values((
                    keys::user_id.eq(user_id),
                    keys::idem_key.eq(key.as_str()),
                    keys::request_hash.eq(hash),
                    keys::status.eq(i32::from(status)),
                    keys::response.eq(&body),
                    keys::created_at.eq(now_ms()),
                ))
                .execute(c)
                .await
        });
        drop(conn);
        match kept.map_err(key_taken) {
            Ok(_) => Ok(StoredResponse {
                status,
                body,
                replayed: false,
            }),
            Err(OrderError::KeyTaken) => self.replay(user_id, key, hash).await,
            Err(e) => Err(e.into()),
        }
    }

    /// The kept answer for a key that is taken.
    async fn replay(
        &self,
        user_id: i64,
        key: &IdempotencyKey,
        hash: &[u8],
    ) -> Result<StoredResponse, weapp::Error> {
        self.stored(user_id, key, hash)
            .await?
            .ok_or_else(|| OrderError::KeyTaken.into())
    }

    /// The answer kept under a key, if any; a different request under the same key is
    /// refused (422 `idempotency_key_reused`).
    async fn stored(
        &self,
        user_id: i64,
        key: &IdempotencyKey,
        hash: &[u8],
    ) -> Result<Option<StoredResponse>, weapp::Error> {
        let mut conn = self.db.conn().await?;
        let row: Option<(Vec<u8>, i32, String)> = with_conn!(conn, |c| {
            keys::table
                .find((user_id, key.as_str()))
                .select((keys::request_hash, keys::status, keys::response))
                .first(c)
                .await
                .optional()
        })
        .map_err(OrderError::from)?;
        let Some((stored_hash, status, body)) = row else {
            return Ok(None);
        };
        if stored_hash != hash {
            return Err(weapp::Error::unprocessable(
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request; use a new key",
            ));
        }
        Ok(Some(StoredResponse {
            status: u16::try_from(status).unwrap_or(500),
            body,
            replayed: true,
        }))
    }

    /// Deletes kept responses older than `order.idempotency_ttl_s`; returns how many.
    pub async fn purge_idempotency_keys(&self, now: i64) -> Result<usize, OrderError> {
        let cutoff =
            now.saturating_sub((self.config.idempotency_ttl_s as i64).saturating_mul(1000));
        let mut conn = self.db.conn().await?;
        Ok(with_conn!(conn, |c| {
            diesel::delete(keys::table.filter(keys::created_at.lt(cutoff)))
                .execute(c)
                .await
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Callers may spawn order placement on a multi-threaded runtime.
    #[allow(dead_code)]
    fn place_order_is_send(orders: &Orders, key: &IdempotencyKey) {
        fn send<T: Send>(_: T) {}
        send(orders.place_order(1, key, &[]));
    }
}
