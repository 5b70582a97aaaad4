//! Orders paid with WeChat Pay, through the pay plugin ([`weapp_pay`]).
//!
//! Each order has one `out_trade_no` (`order.pay.out_trade_no_prefix` and its id),
//! so WeChat Pay itself takes at most one payment for it. [`Checkout`] makes the
//! order's prepay (reused while valid), applies verified payments and refund
//! outcomes (it is the pay plugin's [`weapp_pay::PaymentSink`]), requests refunds, and settles
//! what a lost notification left pending by asking WeChat Pay.

use std::sync::Arc;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use weapp::crypto::FieldCrypto;
use weapp::{AppContext, Error};
use weapp_pay::types::{JsapiOrder, OrderAmount, Payer, Transaction};
use weapp_pay::{Merchant, Payments, RequestPayment};

use crate::error::OrderError;
use crate::model::{OrderStatus, PaymentNotice, now_ms, rfc3339};
use crate::schema::orders;
use crate::service::Orders;
use crate::transitions::PaymentOutcome;

/// A prepay is valid for 2 hours; it is reused for a little less.
const PREPAY_REUSE_MS: i64 = 2 * 3_600_000 - 5 * 60_000;

/// Pending orders reconciled per run at most.
const RECONCILE_BATCH: i64 = 100;

/// The order columns paying reads.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = orders)]
struct PayRow {
    user_id: Option<i64>,
    status: String,
    total_fen: i64,
    expires_at: i64,
    prepay_id: Option<String>,
    prepay_at: Option<i64>,
}

/// Orders and the merchant they are paid to; on the app's context.
pub struct Checkout {
    orders: Arc<Orders>,
    payments: Arc<Payments>,
    merchant: Arc<Merchant>,
    /// Opens the buyers' sealed openids; `None` without `crypto.keys`.
    crypto: Option<Arc<FieldCrypto>>,
}

impl Checkout {
    /// A checkout paying `orders` to `merchant`.
    pub fn new(
        ctx: &AppContext,
        orders: Arc<Orders>,
        payments: Arc<Payments>,
        merchant: Arc<Merchant>,
    ) -> Checkout {
        Checkout {
            orders,
            payments,
            merchant,
            crypto: ctx.crypto_handle(),
        }
    }

    /// The merchant orders are paid to.
    pub fn merchant(&self) -> &Merchant {
        &self.merchant
    }

    /// The order's `out_trade_no`.
    pub fn out_trade_no(&self, order_id: i64) -> String {
        format!(
            "{}{order_id:010}",
            self.orders.config.pay.out_trade_no_prefix
        )
    }

    /// The order an `out_trade_no` of ours names.
    pub fn order_id_of(&self, out_trade_no: &str) -> Option<i64> {
        let digits = out_trade_no.strip_prefix(&self.orders.config.pay.out_trade_no_prefix)?;
        if digits.len() < 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    fn out_refund_no(&self, order_id: i64) -> String {
        format!("{}R", self.out_trade_no(order_id))
    }

    /// The buyer's openid, opened from its sealed column.
    async fn buyer_openid(&self, user_id: i64) -> Result<Option<String>, Error> {
        let crypto = self
            .crypto
            .as_deref()
            .ok_or(weapp::crypto::FieldError::NotConfigured)?;
        Ok(weapp::auth::users::openid_of(&self.orders.db, crypto, user_id).await?)
    }

    async fn row(&self, order_id: i64) -> Result<Option<PayRow>, OrderError> {
        let mut conn = self.orders.db.conn().await?;
        Ok(weapp::with_conn!(conn, |c| {
            orders::table
                .find(order_id)
                .select(PayRow::as_select())
                .first(c)
                .await
                .optional()
        })?)
    }

    /// `POST /api/orders/{id}/pay`: the `wx.requestPayment` parameters of the
    /// buyer's pending order, with the order's prepay (made now, or reused).
    pub async fn pay(&self, user_id: i64, order_id: i64) -> Result<RequestPayment, Error> {
        let row = self
            .row(order_id)
            .await?
            .filter(|r| r.user_id == Some(user_id))
            .ok_or_else(|| Error::not_found("order not found"))?;
        payable(&row)?;
        let now = now_ms();
        if now >= row.expires_at {
            return Err(Error::conflict(
                "order_not_payable",
                "the order's time to pay has run out",
            ));
        }
        if let (Some(prepay_id), Some(at)) = (&row.prepay_id, row.prepay_at)
            && now - at < PREPAY_REUSE_MS
        {
            return Ok(self.merchant.request_payment(prepay_id));
        }
        let openid = self
            .buyer_openid(user_id)
            .await?
            .ok_or_else(|| Error::not_found("order not found"))?;
        let order = JsapiOrder {
            description: self.orders.config.pay.description.clone(),
            out_trade_no: self.out_trade_no(order_id),
            time_expire: Some(wechat_time(row.expires_at)),
            attach: None,
            amount: OrderAmount {
                total: row.total_fen,
                currency: "CNY".into(),
            },
            payer: Payer { openid },
        };
        let prepay_id = match self.payments.client().jsapi(&self.merchant, &order).await {
            Ok(id) => id,
            Err(e) if e.code() == Some("ORDERPAID") => {
                // Paid already, and the notification is not here yet: settle now.
                self.settle_from_query(order_id).await?;
                return Err(Error::conflict("already_paid", "the order is paid"));
            }
            Err(e) if e.code() == Some("ORDER_CLOSED") => {
                return Err(Error::conflict(
                    "order_not_payable",
                    "the order's payment was closed",
                ));
            }
            Err(e) => return Err(e.into()),
        };
        let mut conn = self.orders.db.conn().await?;
        weapp::with_conn!(conn, |c| {
            diesel::update(
                orders::table
                    .find(order_id)
                    .filter(orders::status.eq(OrderStatus::Pending.as_str())),
            )
            .set((orders::prepay_id.eq(&prepay_id), orders::prepay_at.eq(now)))
            .execute(c)
            .await
        })
        .map_err(OrderError::from)?;
        Ok(self.merchant.request_payment(&prepay_id))
    }

    /// Applies a paid transaction of ours: amount and payer checked, paid once.
    pub async fn settle(&self, transaction: &Transaction) -> Result<PaymentOutcome, Error> {
        let order_id = self
            .order_id_of(&transaction.out_trade_no)
            .ok_or_else(|| Error::not_found("no order has this out_trade_no"))?;
        let (Some(transaction_id), Some(amount)) =
            (&transaction.transaction_id, &transaction.amount)
        else {
            return Err(Error::bad_request(
                "invalid_body",
                "a paid transaction without transaction_id or amount",
            ));
        };
        let row = self
            .row(order_id)
            .await?
            .ok_or_else(|| Error::not_found("order not found"))?;
        let buyer = match row.user_id {
            Some(user_id) => self.buyer_openid(user_id).await?,
            None => None,
        };
        let payer = transaction.payer.as_ref().map(|p| p.openid.as_str());
        let notice = PaymentNotice {
            order_id,
            transaction_id: transaction_id.clone(),
            amount_fen: amount.total,
            // An erased buyer cannot be compared; the money is the order's.
            payer_matches: buyer.is_none() || buyer.as_deref() == payer,
        };
        let outcome = self.orders.apply_payment(&notice).await?;
        if let PaymentOutcome::Anomaly(anomaly) = &outcome {
            tracing::warn!(order_id, reason = anomaly.code(), "payment not applied");
        }
        Ok(outcome)
    }

    /// Asks WeChat Pay about an order and applies the payment if it was paid.
    async fn settle_from_query(&self, order_id: i64) -> Result<bool, Error> {
        let transaction = self
            .payments
            .client()
            .transaction(&self.merchant, &self.out_trade_no(order_id))
            .await?;
        if transaction.trade_state != "SUCCESS" {
            return Ok(false);
        }
        self.settle(&transaction).await?;
        Ok(true)
    }
}

/// Whether a row can be paid; the refusal otherwise.
fn payable(row: &PayRow) -> Result<(), Error> {
    match OrderStatus::parse(&row.status) {
        Some(OrderStatus::Pending) if row.total_fen > 0 => Ok(()),
        Some(OrderStatus::Pending) => Err(Error::conflict(
            "nothing_to_pay",
            "the order costs nothing; there is nothing to pay",
        )),
        Some(OrderStatus::Paid | OrderStatus::Refunded) => {
            Err(Error::conflict("already_paid", "the order is paid"))
        }
        _ => Err(Error::conflict(
            "order_not_payable",
            "the order was cancelled",
        )),
    }
}

/// WeChat Pay's time format (`2026-11-30T18:00:00+08:00`).
fn wechat_time(ms: i64) -> String {
    let beijing = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8 exists");
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&beijing)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
        })
        .unwrap_or_else(|| rfc3339(ms))
}

mod reconcile;
mod refund;
mod sink;
