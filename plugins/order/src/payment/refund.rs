//! Refunds: requested by an operator, confirmed by WeChat Pay's notification.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use weapp::{Error, transaction};
use weapp_pay::types::{Refund, RefundRequest, RefundRequestAmount};

use super::Checkout;
use crate::error::OrderError;
use crate::events;
use crate::model::{OrderStatus, now_ms};
use crate::outbox::NewEvent;
use crate::schema::orders;
use crate::statements::InsertEvent;

impl Checkout {
    /// `POST /api/admin/orders/{id}/refund`: asks WeChat Pay to refund a paid order
    /// in full. Asking again returns the same refund (one refund number per order).
    pub async fn refund(
        &self,
        order_id: i64,
        reason: Option<String>,
        admin: &str,
    ) -> Result<Refund, Error> {
        let row = self
            .row(order_id)
            .await?
            .ok_or_else(|| Error::not_found("order not found"))?;
        match OrderStatus::parse(&row.status) {
            Some(OrderStatus::Paid) => {}
            Some(OrderStatus::Refunded) => {
                return Err(Error::conflict("already_refunded", "the order is refunded"));
            }
            _ => {
                return Err(Error::conflict(
                    "order_not_paid",
                    "only a paid order is refunded",
                ));
            }
        }
        if reason.as_ref().is_some_and(|r| r.chars().count() > 80) {
            return Err(Error::bad_request(
                "invalid_body",
                "reason must be at most 80 characters",
            ));
        }
        let request = RefundRequest {
            out_trade_no: self.out_trade_no(order_id),
            out_refund_no: self.out_refund_no(order_id),
            reason,
            amount: RefundRequestAmount {
                refund: row.total_fen,
                total: row.total_fen,
                currency: "CNY".into(),
            },
        };
        let refund = self
            .payments
            .client()
            .refund(&self.merchant, &request)
            .await?;
        let now = now_ms();
        let requested = events::RefundRequested {
            order_id,
            user_id: row.user_id,
            total_fen: row.total_fen,
            refund_id: refund.refund_id.clone(),
            admin: admin.to_owned(),
        };
        let mut conn = self.orders.db.conn().await?;
        let event_id = transaction!(conn, self.orders.config.isolation, |c| {
            let first = diesel::update(
                orders::table
                    .find(order_id)
                    .filter(orders::status.eq(OrderStatus::Paid.as_str()))
                    .filter(orders::refund_id.is_null()),
            )
            .set((
                orders::refund_id.eq(&refund.refund_id),
                orders::refund_requested_at.eq(now),
            ))
            .execute(c)
            .await?;
            // Asked again: WeChat Pay answered with the same refund; one event.
            if first == 0 {
                return Ok(None);
            }
            let event_id = c.insert_event(&NewEvent::new(&requested, now)).await?;
            Ok::<_, OrderError>(Some(event_id))
        })?;
        self.orders.outbox.hint(event_id);
        Ok(refund)
    }
}
