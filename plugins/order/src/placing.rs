//! Placing an order: stock taken, order written, response kept under its key, all in
//! one transaction.
//!
//! The statements of one order on MySQL/MariaDB and SQLite (ids from the
//! auto-increment, affected rows of each stock update checked by the app):
//! ```sql
//! SELECT id, price_fen FROM products WHERE id IN (...) AND active   -- before the transaction
//! BEGIN
//! INSERT INTO orders (user_id, status, total_fen, version, created_at, updated_at, expires_at)
//!   VALUES (...)                                           -- then its id
//! INSERT INTO order_items (order_id, product_id, qty, price_fen) VALUES (...), ...
//! INSERT INTO order_outbox (topic, payload, state, attempts, next_attempt_at, created_at)
//!   VALUES (...)                                           -- then its id (for the worker)
//! INSERT INTO order_idempotency_keys (user_id, idem_key, request_hash, status, response, created_at)
//!   VALUES (...)                                           -- unique: a replay stops here
//! UPDATE stock SET qty = qty - ? WHERE product_id = ? AND qty >= ?   -- per line, by id
//! COMMIT
//! ```
//! The stock rows are the contended ones (every buyer of a product updates the same
//! row), so they are updated last: each is locked only for its own statement and the
//! commit. Lines are updated in product-id order, so two orders never wait on each
//! other in a cycle.
//!
//! PostgreSQL runs the same writes in two pipelined round trips — `BEGIN` with the
//! prices and the new order's id, then everything else with `COMMIT` — and the server
//! checks the stock (see `pipelined.rs`), so the hot row is never locked while
//! the app waits for a CPU. Under load it places orders in batches instead, many in
//! one transaction (`order.group_commit`, see `group_commit/`); an order a batch could
//! not place comes back here and is placed alone.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use weapp::db::{AsyncPgConnection, BeginTransaction, DbConn, Isolation};
use weapp::with_conn;

use crate::backend::StepwisePlacement;
use crate::error::OrderError;
use crate::group_commit::postgres::{BatchSettings, GroupedOrder};
use crate::idempotency::{IdempotencyKey, StoredResponse, request_hash};
use crate::model::{OrderLine, now_ms};
use crate::placement::{OrderRequest, Placed, Placement};
use crate::schema::order_idempotency_keys as keys;
use crate::service::Orders;

impl Orders {
    /// Places an order for `user_id`, or answers as the first request with this key
    /// did. Refusals that depend on the stored state (out of stock) are kept under the
    /// key too; malformed input is not.
    pub async fn place_order(
        &self,
        user_id: i64,
        key: &IdempotencyKey,
        lines: &[OrderLine],
    ) -> Result<StoredResponse, weapp::Error> {
        let lines = self.validated(lines)?;
        let hash = request_hash(&lines);
        let request = OrderRequest {
            user_id,
            key,
            hash: &hash,
            lines: &lines,
        };
        let placed = match self.place_grouped(&request).await {
            Some(answer) => answer,
            None => self.place_alone(&request).await?,
        };
        match placed {
            Ok(placed) => {
                self.outbox_hints.push([placed.event_id]);
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

    /// PostgreSQL with group commit: placed in a batch with the orders arriving
    /// meanwhile; `None` when no batch placed it (or group commit is off), so it is
    /// placed alone. See [`crate::group_commit`].
    async fn place_grouped(
        &self,
        request: &OrderRequest<'_>,
    ) -> Option<Result<Placed, OrderError>> {
        let combiner = self.group_commit.as_ref()?;
        let order = GroupedOrder {
            user_id: request.user_id,
            key: request.key.clone(),
            hash: request.hash.to_vec(),
            lines: request.lines.to_vec(),
        };
        let settings = BatchSettings {
            isolation: self.config.isolation,
            unpaid_timeout_s: self.config.unpaid_timeout_s,
        };
        combiner
            .submit(order, |batch| {
                crate::group_commit::postgres::place_batch(self.db.clone(), settings, batch)
            })
            .await
    }

    /// One order in a transaction of its own.
    async fn place_alone(
        &self,
        request: &OrderRequest<'_>,
    ) -> Result<Result<Placed, OrderError>, weapp::Error> {
        let isolation = self.config.isolation;
        let mut conn = self.db.conn().await?;
        Ok(match &mut conn {
            DbConn::Postgres(c) => self.place_pipelined(c, isolation, request).await,
            DbConn::Mysql(c) => self.place_stepwise(&mut **c, isolation, request).await,
            DbConn::Sqlite(c) => self.place_stepwise(&mut **c, isolation, request).await,
        })
    }

    /// PostgreSQL: priced and written in two round trips; see [`crate::pipelined`].
    async fn place_pipelined(
        &self,
        c: &mut AsyncPgConnection,
        isolation: Isolation,
        request: &OrderRequest<'_>,
    ) -> Result<Placed, OrderError> {
        let ids = request.product_ids();
        crate::service::retrying!(
            self,
            "place order",
            async {
                let (prices, order_id) = crate::pipelined::begin_order(c, isolation, &ids).await?;
                match Placement::priced(request, &prices, self.config.unpaid_timeout_s) {
                    Ok(placement) => {
                        let _turn = self.stock_gate.enter(&ids).await;
                        placement.pipelined(c, order_id).await
                    }
                    Err(e) => {
                        crate::pipelined::rollback(c).await;
                        Err(e)
                    }
                }
            }
            .await
        )
    }

    /// MySQL/MariaDB and SQLite: priced first, then written one statement at a time
    /// in a transaction.
    async fn place_stepwise<C>(
        &self,
        c: &mut C,
        isolation: Isolation,
        request: &OrderRequest<'_>,
    ) -> Result<Placed, OrderError>
    where
        C: StepwisePlacement + BeginTransaction,
    {
        let ids = request.product_ids();
        let prices = c.prices(&ids).await?.into_iter().collect();
        let placement = Placement::priced(request, &prices, self.config.unpaid_timeout_s)?;
        crate::service::retrying!(
            self,
            "place order",
            async {
                let _turn = self.stock_gate.enter(&ids).await;
                placement.stepwise(c, isolation).await
            }
            .await
        )
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
        match kept.map_err(crate::backend::key_taken) {
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
