//! Settling what a lost notification left pending, and closing prepays before an
//! order is cancelled, so money never lands on a cancelled order.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use weapp::Error;

use super::{Checkout, RECONCILE_BATCH};
use crate::error::OrderError;
use crate::model::OrderStatus;
use crate::schema::orders;

impl Checkout {
    /// Pending orders whose prepay is older than `order.pay.reconcile_after_s`,
    /// looked up at WeChat Pay; returns how many turned out paid.
    pub async fn reconcile(&self, now: i64) -> Result<usize, Error> {
        let before = now - (self.orders.config.pay.reconcile_after_s as i64).saturating_mul(1_000);
        let mut conn = self.orders.db.conn().await?;
        let due: Vec<i64> = weapp::with_conn!(conn, |c| {
            orders::table
                .filter(orders::status.eq(OrderStatus::Pending.as_str()))
                .filter(orders::prepay_at.le(before))
                .order(orders::prepay_at)
                .select(orders::id)
                .limit(RECONCILE_BATCH)
                .load(c)
                .await
        })
        .map_err(OrderError::from)?;
        drop(conn);
        let mut paid = 0;
        for order_id in due {
            match self.settle_from_query(order_id).await {
                Ok(true) => paid += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(order_id, error = %e, "reconciling an order failed"),
            }
        }
        Ok(paid)
    }

    /// Before unpaid orders past their time are cancelled: each one's prepay is
    /// closed at WeChat Pay (or found paid, and applied) and cleared, so nothing
    /// can pay an order being cancelled. Returns how many were released.
    pub async fn release_due_prepays(&self, now: i64, limit: i64) -> Result<usize, Error> {
        let mut conn = self.orders.db.conn().await?;
        let due: Vec<i64> = weapp::with_conn!(conn, |c| {
            orders::table
                .filter(orders::status.eq(OrderStatus::Pending.as_str()))
                .filter(orders::expires_at.le(now))
                .filter(orders::prepay_id.is_not_null())
                .order(orders::expires_at)
                .select(orders::id)
                .limit(limit)
                .load(c)
                .await
        })
        .map_err(OrderError::from)?;
        drop(conn);
        let mut released = 0;
        for order_id in due {
            match self.close_prepay(order_id).await {
                Ok(()) => released += 1,
                Err(e) => {
                    tracing::warn!(order_id, error = %e, "closing a prepay failed; retried later")
                }
            }
        }
        Ok(released)
    }

    /// Closes an order's prepay (applying the payment instead if it was paid) and
    /// clears it from the order.
    pub async fn close_prepay(&self, order_id: i64) -> Result<(), Error> {
        if self.settle_from_query(order_id).await? {
            return Ok(());
        }
        let out_trade_no = self.out_trade_no(order_id);
        match self
            .payments
            .client()
            .close(&self.merchant, &out_trade_no)
            .await
        {
            Ok(()) => {}
            Err(e) if matches!(e.code(), Some("ORDER_NOT_EXIST" | "ORDER_CLOSED")) => {}
            Err(e) if e.code() == Some("ORDERPAID") => {
                self.settle_from_query(order_id).await?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        let mut conn = self.orders.db.conn().await?;
        weapp::with_conn!(conn, |c| {
            diesel::update(
                orders::table
                    .find(order_id)
                    .filter(orders::status.eq(OrderStatus::Pending.as_str())),
            )
            .set(orders::prepay_id.eq(None::<String>))
            .execute(c)
            .await
        })
        .map_err(OrderError::from)?;
        Ok(())
    }

    /// Before a buyer's cancellation: a pending order with a prepay has it closed
    /// first, so a payment cannot land on a cancelled order (found paid, it is
    /// applied, and the cancellation then refused).
    pub async fn before_cancel(&self, order_id: i64) -> Result<(), Error> {
        match self.row(order_id).await? {
            Some(row)
                if row.prepay_id.is_some()
                    && OrderStatus::parse(&row.status) == Some(OrderStatus::Pending) =>
            {
                self.close_prepay(order_id).await
            }
            _ => Ok(()),
        }
    }
}
