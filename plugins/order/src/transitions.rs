//! Order state changes: payment, cancellation, expiry.
//!
//! Each transition locks the order row (`SELECT … FOR UPDATE`; SQLite's immediate
//! transaction holds the database lock instead), checks the state, and updates with
//! `WHERE version = <read version>`, so two transitions can never both win even where
//! the lock is weaker than expected. The event goes to the outbox in the same
//! transaction.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use weapp::transaction;

use crate::error::OrderError;
use crate::events;
use crate::model::{OrderStatus, PaymentNotice, now_ms};
use crate::outbox::NewEvent;
use crate::rows::{OrderRow, Transition};
use crate::schema::orders;
use crate::service::Orders;
use crate::statements::{InsertEvent, OrderStatements};

/// What a payment notification did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// The order moved from pending to paid.
    Paid,
    /// The same payment was notified before; nothing changed.
    AlreadyPaid,
    /// The notification was refused and recorded as a `payment.anomaly` event.
    Anomaly(PaymentAnomaly),
}

/// A notification that cannot be applied; each is audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentAnomaly {
    /// The amount is not the order's total.
    AmountMismatch,
    /// The order was paid by another transaction.
    PaidTwice,
    /// The order was cancelled before the payment arrived.
    PaidAfterCancel,
    /// Someone other than the buyer paid (another openid).
    PayerMismatch,
}

impl PaymentAnomaly {
    /// Stable name, used as the event's `reason` and the error code.
    pub fn code(self) -> &'static str {
        match self {
            PaymentAnomaly::AmountMismatch => "amount_mismatch",
            PaymentAnomaly::PaidTwice => "already_paid",
            PaymentAnomaly::PaidAfterCancel => "order_not_payable",
            PaymentAnomaly::PayerMismatch => "payer_mismatch",
        }
    }
}

/// Why an order was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// The buyer cancelled it.
    User,
    /// It was not paid in time.
    Timeout,
}

impl CancelReason {
    fn as_str(self) -> &'static str {
        match self {
            CancelReason::User => "user",
            CancelReason::Timeout => "timeout",
        }
    }
}

fn status_of(row: &OrderRow) -> OrderStatus {
    // Only this plugin writes the column, never `reserved`; an unknown value is
    // treated as final.
    OrderStatus::parse(&row.status).unwrap_or(OrderStatus::Cancelled)
}

impl Orders {
    /// Applies a verified payment notification exactly once.
    pub async fn apply_payment(
        &self,
        notice: &PaymentNotice,
    ) -> Result<PaymentOutcome, OrderError> {
        let mut conn = self.db.conn().await?;
        let (outcome, event_id) = weapp::retrying!(self.config.retry, "apply payment", {
            transaction!(conn, self.config.isolation, |c| {
                let now = now_ms();
                let row = c
                    .lock_order(notice.order_id)
                    .await?
                    .ok_or(OrderError::OrderNotFound)?;
                let anomaly = match status_of(&row) {
                    OrderStatus::Paid | OrderStatus::Refunded
                        if row.payment_id.as_deref() == Some(&notice.transaction_id) =>
                    {
                        return Ok((PaymentOutcome::AlreadyPaid, None));
                    }
                    OrderStatus::Paid | OrderStatus::Refunded => PaymentAnomaly::PaidTwice,
                    // A stored order is never `reserved` (see `status_of`).
                    OrderStatus::Cancelled | OrderStatus::Reserved => {
                        PaymentAnomaly::PaidAfterCancel
                    }
                    OrderStatus::Pending if notice.amount_fen != row.total_fen => {
                        PaymentAnomaly::AmountMismatch
                    }
                    OrderStatus::Pending if !notice.payer_matches => PaymentAnomaly::PayerMismatch,
                    OrderStatus::Pending => {
                        let change = Transition {
                            payment_id: Some(&notice.transaction_id),
                            paid_at: Some(now),
                            ..Transition::to(OrderStatus::Paid, &row, now)
                        };
                        c.advance(&row, OrderStatus::Pending, &change).await?;
                        let paid = events::Paid {
                            order_id: row.id,
                            user_id: row.user_id,
                            total_fen: row.total_fen,
                        };
                        let event = NewEvent::new(&paid, now);
                        let event_id = c.insert_event(&event).await?;
                        return Ok((PaymentOutcome::Paid, Some(event_id)));
                    }
                };
                let anomalous = events::PaymentAnomaly {
                    order_id: row.id,
                    user_id: row.user_id,
                    reason: anomaly.code().to_owned(),
                    order_status: row.status.clone(),
                    total_fen: row.total_fen,
                    amount_fen: notice.amount_fen,
                    transaction_id: notice.transaction_id.clone(),
                };
                let event = NewEvent::new(&anomalous, now);
                let event_id = c.insert_event(&event).await?;
                Ok::<_, OrderError>((PaymentOutcome::Anomaly(anomaly), Some(event_id)))
            })
        })?;
        self.outbox.hint(event_id);
        Ok(outcome)
    }

    /// Cancels a pending order and puts its stock back. With `owner`, only that user's
    /// order is found. Cancelling a cancelled order changes nothing and succeeds.
    pub async fn cancel_order(
        &self,
        owner: Option<i64>,
        order_id: i64,
        reason: CancelReason,
    ) -> Result<(), OrderError> {
        let mut conn = self.db.conn().await?;
        let event_id = weapp::retrying!(self.config.retry, "cancel order", {
            transaction!(conn, self.config.isolation, |c| {
                let now = now_ms();
                let row = c
                    .lock_order(order_id)
                    .await?
                    .ok_or(OrderError::OrderNotFound)?;
                if owner.is_some() && row.user_id != owner {
                    return Err(OrderError::OrderNotFound);
                }
                match status_of(&row) {
                    OrderStatus::Cancelled => return Ok(None),
                    OrderStatus::Paid => return Err(OrderError::WrongState("paid")),
                    OrderStatus::Refunded => return Err(OrderError::WrongState("refunded")),
                    OrderStatus::Reserved => return Err(OrderError::WrongState("reserved")),
                    OrderStatus::Pending => {}
                }
                let change = Transition {
                    cancel_reason: Some(reason.as_str()),
                    ..Transition::to(OrderStatus::Cancelled, &row, now)
                };
                c.advance(&row, OrderStatus::Pending, &change).await?;
                let restocked = c.restock(row.id).await?;
                let cancelled = events::Cancelled {
                    order_id: row.id,
                    user_id: row.user_id,
                    total_fen: row.total_fen,
                    reason: reason.as_str().to_owned(),
                };
                let event = NewEvent::new(&cancelled, now);
                let event_id = c.insert_event(&event).await?;
                Ok::<_, OrderError>(Some((event_id, row.user_id, restocked)))
            })
        })?;
        if let Some((event_id, user_id, restocked)) = event_id {
            self.outbox.hint([event_id]);
            self.units_returned(&restocked, user_id);
        }
        Ok(())
    }

    /// Applies WeChat Pay's confirmation of an order's refund exactly once: paid →
    /// refunded, with the stock put back if `order.pay.restock_on_refund`. `false`
    /// if the order was refunded already.
    pub async fn complete_refund(&self, order_id: i64) -> Result<bool, OrderError> {
        let restock = self.config.pay.restock_on_refund;
        let mut conn = self.db.conn().await?;
        let event_id = weapp::retrying!(self.config.retry, "complete refund", {
            transaction!(conn, self.config.isolation, |c| {
                let now = now_ms();
                let row = c
                    .lock_order(order_id)
                    .await?
                    .ok_or(OrderError::OrderNotFound)?;
                match status_of(&row) {
                    OrderStatus::Refunded => return Ok(None),
                    OrderStatus::Paid => {}
                    OrderStatus::Pending | OrderStatus::Reserved => {
                        return Err(OrderError::WrongState("pending"));
                    }
                    OrderStatus::Cancelled => return Err(OrderError::WrongState("cancelled")),
                }
                let change = Transition {
                    refunded_at: Some(now),
                    ..Transition::to(OrderStatus::Refunded, &row, now)
                };
                c.advance(&row, OrderStatus::Paid, &change).await?;
                let restocked = match restock {
                    true => c.restock(row.id).await?,
                    false => Vec::new(),
                };
                let refunded = events::Refunded {
                    order_id: row.id,
                    user_id: row.user_id,
                    total_fen: row.total_fen,
                    restocked: restock,
                };
                let event_id = c.insert_event(&NewEvent::new(&refunded, now)).await?;
                Ok::<_, OrderError>(Some((event_id, row.user_id, restocked)))
            })
        })?;
        let refunded = event_id.is_some();
        if let Some((event_id, user_id, restocked)) = event_id {
            self.outbox.hint([event_id]);
            self.units_returned(&restocked, user_id);
        }
        Ok(refunded)
    }

    /// Records that WeChat Pay could not refund a paid order (`REFUND.ABNORMAL` or
    /// `REFUND.CLOSED`) as a `payment.anomaly` for an operator; the order stays paid.
    pub async fn record_refund_failure(
        &self,
        order_id: i64,
        refund_status: &str,
        refund_id: &str,
    ) -> Result<(), OrderError> {
        let reason = match refund_status {
            "CLOSED" => "refund_closed",
            _ => "refund_abnormal",
        };
        let mut conn = self.db.conn().await?;
        let event_id = transaction!(conn, self.config.isolation, |c| {
            let row = c
                .lock_order(order_id)
                .await?
                .ok_or(OrderError::OrderNotFound)?;
            let anomalous = events::PaymentAnomaly {
                order_id: row.id,
                user_id: row.user_id,
                reason: reason.to_owned(),
                order_status: row.status.clone(),
                total_fen: row.total_fen,
                amount_fen: 0,
                transaction_id: refund_id.to_owned(),
            };
            let event_id = c.insert_event(&NewEvent::new(&anomalous, now_ms())).await?;
            Ok::<_, OrderError>(Some(event_id))
        })?;
        self.outbox.hint(event_id);
        Ok(())
    }

    /// Cancels (and restocks) up to `limit` pending orders whose time ran out by
    /// `now`; returns how many.
    pub async fn expire_unpaid(&self, now: i64, limit: i64) -> Result<usize, OrderError> {
        let mut conn = self.db.conn().await?;
        let due: Vec<i64> = weapp::with_conn!(conn, |c| {
            orders::table
                .filter(orders::status.eq(OrderStatus::Pending.as_str()))
                .filter(orders::expires_at.le(now))
                // An order with a prepay may be paid at any moment: the checkout
                // closes its prepay first (or finds it paid) and clears it.
                .filter(orders::prepay_id.is_null())
                .order(orders::expires_at)
                .select(orders::id)
                .limit(limit)
                .load(c)
                .await
        })?;
        drop(conn);
        let mut cancelled = 0;
        for id in due {
            match self.cancel_order(None, id, CancelReason::Timeout).await {
                Ok(()) => cancelled += 1,
                // Paid in the meantime: nothing to do.
                Err(OrderError::WrongState(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(cancelled)
    }
}
