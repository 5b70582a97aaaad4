//! The buyer's side of a flash sale: reserving units with one script, answering a
//! retry from its key's record, and showing a reserved order before it is written.

use std::sync::atomic::Ordering;

use weapp::actix_web::http::StatusCode;
use weapp::kv::KvError;

use super::batches::Reservation;
use super::metrics::{Outcome, count};
use super::reservation::{KeyRecord, Reserved, key_field};
use super::{FlashSales, Sale};
use crate::error::OrderError;
use crate::idempotency::{IdempotencyKey, StoredResponse};
use crate::model::{OrderCreated, OrderItem, OrderLine, OrderStatus, OrderView, now_ms, rfc3339};

/// Codes of refusals that tell the client to come back shortly (`Retry-After`).
pub(crate) const RETRY_SOON: [&str; 2] = ["flash_sale_busy", "flash_sale_loading"];

fn kv(e: redis::RedisError) -> weapp::Error {
    KvError::from(e).into()
}

fn sold_out(product_id: i64) -> weapp::Error {
    count(Outcome::SoldOut);
    weapp::Error::conflict("out_of_stock", format!("product {product_id} is sold out"))
}

impl FlashSales {
    /// Reserves `line` of `sale` for `user_id` under `key`, or answers as the first
    /// request with this key was answered.
    pub(crate) async fn reserve(
        &self,
        sale: &Sale,
        user_id: i64,
        key: &IdempotencyKey,
        line: &OrderLine,
        hash: &[u8],
    ) -> Result<StoredResponse, weapp::Error> {
        let field = key_field(user_id, key.as_str());
        let now = now_ms();
        if sale.sold_out_until.load(Ordering::Relaxed) > now {
            // Sold out: no script, but a retry of a reserved order still gets its answer.
            let prior: Option<String> = redis::cmd("HGET")
                .arg(&sale.keys.keys)
                .arg(&field)
                .query_async(&mut self.redis.clone())
                .await
                .map_err(kv)?;
            return match prior {
                Some(record) => replayed(&record, hash),
                None => Err(sold_out(sale.product_id)),
            };
        }
        let total_fen = sale
            .price_fen
            .checked_mul(line.qty)
            .ok_or(OrderError::TotalTooLarge)?;
        let order_id = self.ids.next(&self.db).await?;
        let reserved = Reserved {
            order_id,
            user_id,
            qty: line.qty,
            total_fen,
            created_at: now,
            expires_at: now.saturating_add((self.unpaid_timeout_s as i64).saturating_mul(1000)),
            hash: hash.to_vec(),
            key: key.as_str().to_owned(),
        };
        let record = KeyRecord {
            order_id,
            total_fen,
            hash: hash.to_vec(),
        };
        let reservation = Reservation {
            user_id,
            qty: line.qty,
            per_user_limit: sale.per_user_limit,
            field,
            order_id,
            record: record.text(),
            payload: reserved.payload(),
        };
        let (outcome, detail) = self
            .batches
            .reserve(sale.product_id, &sale.keys, reservation)
            .await
            // Not given back: the script may have run (a reply lost, a timeout), and
            // the id would then name two reservations. An id never used is a gap.
            .map_err(kv)?;
        let (outcome, detail) = (outcome.as_str(), detail.as_str());
        if outcome != "reserved" {
            self.ids.give_back(order_id);
        }
        match outcome {
            "reserved" => {
                count(Outcome::Reserved);
                self.wake_writer.notify_one();
                if detail == "0" {
                    self.mark_sold_out(sale);
                }
                Ok(StoredResponse {
                    status: 202,
                    body: created(order_id, total_fen),
                    replayed: false,
                })
            }
            "replay" => replayed(detail, hash),
            "sold_out" => {
                self.mark_sold_out(sale);
                Err(sold_out(sale.product_id))
            }
            "limit" => {
                count(Outcome::Limit);
                Err(weapp::Error::conflict(
                    "flash_sale_limit",
                    format!(
                        "you hold {detail} of the {} units one buyer may have in this sale",
                        sale.per_user_limit
                    ),
                ))
            }
            "busy" => {
                count(Outcome::Busy);
                Err(weapp::Error::http(
                    StatusCode::TOO_MANY_REQUESTS,
                    "flash_sale_busy",
                    "too many orders are waiting to be written; try again shortly",
                ))
            }
            "unloaded" => {
                self.wake_sync.notify_one();
                Err(weapp::Error::unavailable(
                    "flash_sale_loading",
                    "the sale is being loaded; try again shortly",
                ))
            }
            _ => Err(weapp::Error::internal(format!(
                "the reservation script answered {outcome:?} {detail:?}"
            ))),
        }
    }

    /// Answers "sold out" here without the script for `sold_out_recheck_ms`.
    fn mark_sold_out(&self, sale: &Sale) {
        let until = now_ms().saturating_add(self.config.sold_out_recheck_ms as i64);
        sale.sold_out_until.store(until, Ordering::Relaxed);
    }

    /// `user_id`'s order `order_id` if it is reserved and not written yet.
    pub(crate) async fn reserved_order(
        &self,
        user_id: i64,
        order_id: i64,
    ) -> Result<Option<OrderView>, OrderError> {
        for sale in self.all_sales() {
            let payload: Option<String> = redis::cmd("HGET")
                .arg(&sale.keys.held)
                .arg(order_id)
                .query_async(&mut self.redis.clone())
                .await
                .map_err(KvError::from)?;
            let Some(reserved) = payload.as_deref().and_then(Reserved::parse) else {
                continue;
            };
            if reserved.user_id != user_id {
                return Ok(None);
            }
            return Ok(Some(OrderView {
                order_id,
                status: OrderStatus::Reserved,
                total_fen: reserved.total_fen,
                items: vec![OrderItem {
                    product_id: sale.product_id,
                    qty: reserved.qty,
                    price_fen: reserved.total_fen / reserved.qty.max(1),
                }],
                cancel_reason: None,
                created_at: rfc3339(reserved.created_at),
                expires_at: rfc3339(reserved.expires_at),
                paid_at: None,
            }));
        }
        Ok(None)
    }
}

/// The `202` answer of a reservation (also what the writers store under its key).
pub(super) fn created(order_id: i64, total_fen: i64) -> String {
    serde_json::to_string(&OrderCreated {
        order_id,
        status: OrderStatus::Reserved,
        total_fen,
    })
    .unwrap_or_default()
}

/// The first answer again for a retry, or 422 if the key came with another request.
fn replayed(record: &str, hash: &[u8]) -> Result<StoredResponse, weapp::Error> {
    let record = KeyRecord::parse(record)
        .ok_or_else(|| weapp::Error::internal("an unreadable flash-sale key record"))?;
    if record.hash != hash {
        return Err(weapp::Error::unprocessable(
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request; use a new key",
        ));
    }
    count(Outcome::Replayed);
    Ok(StoredResponse {
        status: 202,
        body: created(record.order_id, record.total_fen),
        replayed: true,
    })
}
