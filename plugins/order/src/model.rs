//! What the API accepts and answers, and the order's states.

use serde::{Deserialize, Serialize};

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed, stock taken, waiting for payment.
    Pending,
    /// Paid; final.
    Paid,
    /// Cancelled by the buyer or for lack of payment; stock returned; final.
    Cancelled,
}

impl OrderStatus {
    /// The value stored in `orders.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a stored value.
    pub fn parse(value: &str) -> Option<OrderStatus> {
        match value {
            "pending" => Some(OrderStatus::Pending),
            "paid" => Some(OrderStatus::Paid),
            "cancelled" => Some(OrderStatus::Cancelled),
            _ => None,
        }
    }
}

/// One line of `POST /api/orders`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    /// The product.
    pub product_id: i64,
    /// Units, at least 1.
    pub qty: i64,
}

/// Body of `POST /api/orders`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    /// What to buy; each product at most once.
    pub items: Vec<OrderLine>,
}

/// Answer of `POST /api/orders` (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated {
    /// The new order.
    pub order_id: i64,
    /// Always `pending`.
    pub status: OrderStatus,
    /// What the buyer pays, in fen.
    pub total_fen: i64,
}

/// A product as the catalogue shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Unit price in fen.
    pub price_fen: i64,
    /// Units left.
    pub stock: i64,
}

/// A product to add to the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewProduct {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Unit price in fen.
    pub price_fen: i64,
    /// Initial units on hand.
    pub stock: i64,
}

/// A line of an order as shown to its buyer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    /// The product.
    pub product_id: i64,
    /// Units.
    pub qty: i64,
    /// Unit price in fen when ordered.
    pub price_fen: i64,
}

/// An order as shown to its buyer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    /// Id.
    pub order_id: i64,
    /// State.
    pub status: OrderStatus,
    /// Total in fen.
    pub total_fen: i64,
    /// Lines.
    pub items: Vec<OrderItem>,
    /// `user` or `timeout` when cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; when it is cancelled unless paid before.
    pub expires_at: String,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// This page's entries.
    pub items: Vec<T>,
    /// 1-based page number.
    pub page: i64,
    /// Page size.
    pub per_page: i64,
    /// Whether a next page exists.
    pub has_more: bool,
}

/// `?page=&per_page=` of list endpoints.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// 1-based page number (default 1).
    pub page: Option<i64>,
    /// Page size (default `order.page_size`, at most `order.max_page_size`).
    pub per_page: Option<i64>,
}

/// Body of `POST /api/pay/notify` from the payment provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentNotice {
    /// Our order id.
    pub order_id: i64,
    /// The provider's transaction id.
    pub transaction_id: String,
    /// Amount paid in fen.
    pub amount_fen: i64,
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// RFC 3339 of Unix milliseconds.
pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}
