//! The events the order plugin publishes, as types: other plugins subscribe with
//! `ctx.events().on::<weapp_order::events::Paid, _, _>(…)`, so a field renamed or
//! dropped here fails their build, not their handler. Users appear only by id.

use serde::{Deserialize, Serialize};
use weapp::events::TypedEvent;

/// `order.created`: an order was placed (pending payment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    /// The order.
    pub order_id: i64,
    /// The buyer; `None` once the account is erased.
    pub user_id: Option<i64>,
    /// What it costs, in fen.
    pub total_fen: i64,
}

impl TypedEvent for Created {
    const TOPIC: &'static str = "order.created";
}

/// `order.paid`: a payment notification settled the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paid {
    /// The order.
    pub order_id: i64,
    /// The buyer; `None` once the account is erased.
    pub user_id: Option<i64>,
    /// What was paid, in fen.
    pub total_fen: i64,
}

impl TypedEvent for Paid {
    const TOPIC: &'static str = "order.paid";
}

/// `order.cancelled`: the buyer cancelled, or the unpaid timeout did; stock was
/// put back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancelled {
    /// The order.
    pub order_id: i64,
    /// The buyer; `None` once the account is erased.
    pub user_id: Option<i64>,
    /// What it cost, in fen.
    pub total_fen: i64,
    /// `user` or `timeout`.
    pub reason: String,
}

impl TypedEvent for Cancelled {
    const TOPIC: &'static str = "order.cancelled";
}

/// `payment.anomaly`: a payment notification that could not be applied (wrong
/// amount, order not payable, a second transaction); for reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAnomaly {
    /// The order.
    pub order_id: i64,
    /// The buyer; `None` once the account is erased.
    pub user_id: Option<i64>,
    /// Why the payment was not applied, e.g. `amount_mismatch`.
    pub reason: String,
    /// The order's status when the notification came.
    pub order_status: String,
    /// What the order costs, in fen.
    pub total_fen: i64,
    /// What the notification says was paid, in fen.
    pub amount_fen: i64,
    /// The provider's transaction id.
    pub transaction_id: String,
}

impl TypedEvent for PaymentAnomaly {
    const TOPIC: &'static str = "payment.anomaly";
}
