//! The checkout as the pay plugin's [`PaymentSink`]: verified payments and refund
//! outcomes of the merchant orders are paid to.

use weapp::Error;
use weapp::actix_web::http::StatusCode;
use weapp_pay::types::{RefundNotice, Transaction};
use weapp_pay::{Merchant, PaymentSink};

use super::Checkout;
use crate::error::OrderError;

#[weapp::async_trait::async_trait]
impl PaymentSink for Checkout {
    async fn paid(&self, merchant: &Merchant, transaction: &Transaction) -> weapp::Result<()> {
        if merchant.name != self.merchant.name {
            return Err(Error::http(
                StatusCode::BAD_REQUEST,
                "other_merchant",
                "orders are not paid to this merchant",
            ));
        }
        // An anomaly is recorded as `payment.anomaly`; no retry would change it.
        self.settle(transaction).await.map(|_| ())
    }

    async fn refunded(&self, merchant: &Merchant, refund: &RefundNotice) -> weapp::Result<()> {
        if merchant.name != self.merchant.name {
            return Err(Error::http(
                StatusCode::BAD_REQUEST,
                "other_merchant",
                "orders are not paid to this merchant",
            ));
        }
        let order_id = self
            .order_id_of(&refund.out_trade_no)
            .ok_or_else(|| Error::not_found("no order has this out_trade_no"))?;
        match refund.refund_status.as_str() {
            "SUCCESS" => match self.orders.complete_refund(order_id).await {
                Ok(_) => Ok(()),
                Err(OrderError::WrongState(state)) => {
                    tracing::warn!(order_id, state, "a refund for an order that is not paid");
                    Ok(())
                }
                Err(e) => Err(e.into()),
            },
            status => {
                tracing::warn!(order_id, status, "WeChat Pay could not refund an order");
                self.orders
                    .record_refund_failure(order_id, status, &refund.refund_id)
                    .await
                    .map_err(Into::into)
            }
        }
    }
}
