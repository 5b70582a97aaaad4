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
use crate::schema::{order_items, orders, stock};
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
}

impl PaymentAnomaly {
    /// Stable name, used as the event's `reason` and the error code.
    pub fn code(self) -> &'static str {
        match self {
            PaymentAnomaly::AmountMismatch => "amount_mismatch",
            PaymentAnomaly::PaidTwice => "already_paid",
            PaymentAnomaly::PaidAfterCancel => "order_not_payable",
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
    // Only this plugin writes the column; an unknown value is treated as final.
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
                    OrderStatus::Paid
                        if row.payment_id.as_deref() == Some(&notice.transaction_id) =>
                    {
                        return Ok((PaymentOutcome::AlreadyPaid, None));
                    }
                    OrderStatus::Paid => PaymentAnomaly::PaidTwice,
                    OrderStatus::Cancelled => PaymentAnomaly::PaidAfterCancel,
                    OrderStatus::Pending if notice.amount_fen != row.total_fen => {
                        PaymentAnomaly::AmountMismatch
                    }
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
                    OrderStatus::Pending => {}
                }
                let change = Transition {
                    cancel_reason: Some(reason.as_str()),
                    ..Transition::to(OrderStatus::Cancelled, &row, now)
                };
                c.advance(&row, OrderStatus::Pending, &change).await?;
                let lines: Vec<(i64, i64)> = order_items::table
                    .filter(order_items::order_id.eq(row.id))
                    .order(order_items::product_id)
                    .select((order_items::product_id, order_items::qty))
                    .load(c)
                    .await?;
                for (product_id, qty) in lines {
                    diesel::update(stock::table.find(product_id))
                        .set(stock::qty.eq(stock::qty + qty))
                        .execute(c)
                        .await?;
                }
                let cancelled = events::Cancelled {
                    order_id: row.id,
                    user_id: row.user_id,
                    total_fen: row.total_fen,
                    reason: reason.as_str().to_owned(),
                };
                let event = NewEvent::new(&cancelled, now);
                let event_id = c.insert_event(&event).await?;
                Ok::<_, OrderError>(Some(event_id))
            })
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
