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

/// `order.refund_requested`: an administrator asked WeChat Pay to refund a paid
/// order in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequested {
    /// The order.
    pub order_id: i64,
    /// The buyer; `None` once the account is erased.
    pub user_id: Option<i64>,
    /// What is refunded, in fen.
    pub total_fen: i64,
    /// WeChat Pay's refund id.
    pub refund_id: String,
    /// The name of the admin token used.
    pub admin: String,
}

impl TypedEvent for RefundRequested {
    const TOPIC: &'static str = "order.refund_requested";
}

/// `order.refunded`: WeChat Pay confirmed the refund of a paid order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refunded {
    /// The order.
    pub order_id: i64,
    /// The buyer; `None` once the account is erased.
    pub user_id: Option<i64>,
    /// What was refunded, in fen.
    pub total_fen: i64,
    /// Whether its units were put back on sale (`order.pay.restock_on_refund`).
    pub restocked: bool,
}

impl TypedEvent for Refunded {
    const TOPIC: &'static str = "order.refunded";
}

/// `payment.anomaly`: a payment that could not be applied (wrong amount, another
/// payer, order not payable, a second transaction) or a refund WeChat Pay could not
/// make (`refund_abnormal`, `refund_closed`); for an operator to settle.
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

/// `catalog.product_added`: an administrator (or `order seed`) added a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductAdded {
    /// The product.
    pub product_id: i64,
    /// Its unit price in fen.
    pub price_fen: i64,
    /// Its initial units on hand.
    pub qty: i64,
    /// Whether it went on sale at once.
    pub active: bool,
    /// Who added it: the admin token's name in `auth.admin_tokens`, or `seed`.
    pub admin: String,
}

impl TypedEvent for ProductAdded {
    const TOPIC: &'static str = "catalog.product_added";
}

/// `catalog.product_changed`: an administrator changed a product's details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductChanged {
    /// The product.
    pub product_id: i64,
    /// The fields changed, e.g. `["price_fen", "active"]`.
    pub changed: Vec<String>,
    /// The unit price in fen after the change.
    pub price_fen: i64,
    /// Whether it is on sale after the change.
    pub active: bool,
    /// Who changed it.
    pub admin: String,
}

impl TypedEvent for ProductChanged {
    const TOPIC: &'static str = "catalog.product_changed";
}

/// `catalog.stock_changed`: an administrator set or adjusted a product's stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockChanged {
    /// The product.
    pub product_id: i64,
    /// Units on hand after the change.
    pub qty: i64,
    /// Units added (negative: removed), as the change found the stock.
    pub delta: i64,
    /// Who changed it.
    pub admin: String,
}

impl TypedEvent for StockChanged {
    const TOPIC: &'static str = "catalog.stock_changed";
}
