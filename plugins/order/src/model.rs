//! What the API accepts and answers, and the order's states.

use serde::{Deserialize, Serialize};

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Reserved in a flash sale and being written: `pending` in moments. Never
    /// stored; shown until the order is written.
    Reserved,
    /// Placed, stock taken, waiting for payment.
    Pending,
    /// Paid.
    Paid,
    /// Cancelled by the buyer or for lack of payment; stock returned; final.
    Cancelled,
    /// Paid, then refunded in full (WeChat Pay confirmed the refund); final.
    Refunded,
}

impl OrderStatus {
    /// The value stored in `orders.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Reserved => "reserved",
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Refunded => "refunded",
        }
    }

    /// Parses a stored value.
    pub fn parse(value: &str) -> Option<OrderStatus> {
        match value {
            "pending" => Some(OrderStatus::Pending),
            "paid" => Some(OrderStatus::Paid),
            "cancelled" => Some(OrderStatus::Cancelled),
            "refunded" => Some(OrderStatus::Refunded),
            _ => None,
        }
    }
}

/// One line of `POST /api/orders`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    /// The product.
    #[schema(minimum = 1, example = 1)]
    pub product_id: i64,
    /// Units, 1 to `order.max_qty` (default 1,000).
    #[schema(minimum = 1, example = 2)]
    pub qty: i64,
}

/// Body of `POST /api/orders`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"items": [{"product_id": 1, "qty": 2}]})))]
pub struct CreateOrder {
    /// What to buy, 1 to `order.max_items` lines (default 50); each product at most once.
    #[schema(min_items = 1)]
    pub items: Vec<OrderLine>,
}

/// Answer of `POST /api/orders`: 201 `pending`, or 202 `reserved` in a flash sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderCreated {
    /// The new order.
    pub order_id: i64,
    /// `pending` (201), or `reserved` (202: a flash sale; `pending` once written,
    /// which `GET /api/orders/{id}` shows).
    pub status: OrderStatus,
    /// What the buyer pays, in fen.
    pub total_fen: i64,
}

/// A product as the catalogue shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// Longest product name, in characters (MySQL's `VARCHAR(200)`).
pub const MAX_NAME_CHARS: usize = 200;
/// Longest product description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
/// Highest unit price, in fen (100 million yuan): totals stay far from overflow.
pub const MAX_PRICE_FEN: i64 = 10_000_000_000;
/// Most units on hand of one product.
pub const MAX_STOCK: i64 = 1_000_000_000;
/// A product to add to the catalogue; also the body of `POST /api/admin/products`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "龙井茶 250g", "description": "明前", "price_fen": 4800, "stock": 100})))]
pub struct NewProduct {
    /// Name, 1 to 200 characters, not only spaces, no control characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Description, at most 2,000 characters.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: String,
    /// Unit price in fen.
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    pub price_fen: i64,
    /// Initial units on hand.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub stock: i64,
    /// For sale at once (default `true`).
    #[serde(default = "for_sale")]
    pub active: bool,
}

fn for_sale() -> bool {
    true
}

/// A product as an administrator sees it: inactive ones too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CatalogEntry {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Unit price in fen.
    pub price_fen: i64,
    /// Units on hand.
    pub stock: i64,
    /// Whether buyers see it and may order it.
    pub active: bool,
    /// When it was added (RFC 3339).
    pub created_at: String,
}

/// Body of `PATCH /api/admin/products/{id}`: the fields to change; absent ones stay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"price_fen": 4500, "active": true})))]
pub struct ProductChange {
    /// New name (as in `NewProduct`).
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// New description.
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// New unit price in fen; orders already placed keep theirs.
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    pub price_fen: Option<i64>,
    /// Put on sale (`true`) or take off sale (`false`).
    pub active: Option<bool>,
}

/// Body of `PUT /api/admin/products/{id}/stock`: exactly one of `qty` (units on hand
/// from now) or `delta` (units to add, negative to remove; safe while orders take
/// units concurrently).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"delta": 50}), json!({"qty": 0})))]
pub struct StockChange {
    /// Units on hand from now.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub qty: Option<i64>,
    /// Units to add (or remove, if negative).
    #[schema(minimum = -1_000_000_000, maximum = 1_000_000_000)]
    pub delta: Option<i64>,
}

/// A line of an order as shown to its buyer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderItem {
    /// The product.
    pub product_id: i64,
    /// Units.
    pub qty: i64,
    /// Unit price in fen when ordered.
    pub price_fen: i64,
}

/// An order as shown to its buyer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderView {
    /// Id.
    pub order_id: i64,
    /// State.
    pub status: OrderStatus,
    /// Total in fen.
    pub total_fen: i64,
    /// Lines.
    pub items: Vec<OrderItem>,
    /// `user`, `timeout`, or `out_of_stock` (a flash-sale reservation the
    /// database had no unit left for) when cancelled.
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// Rows to skip before page `page` of `per_page`.
pub(crate) fn page_offset(page: i64, per_page: i64) -> i64 {
    (page - 1).saturating_mul(per_page)
}

impl<T> Page<T> {
    /// Page `page` from `rows` loaded with `LIMIT per_page + 1` at [`page_offset`]:
    /// the extra row, if it came, only says that a next page exists.
    pub(crate) fn from_rows<R>(
        rows: Vec<R>,
        page: i64,
        per_page: i64,
        item: impl FnMut(R) -> T,
    ) -> Page<T> {
        let has_more = rows.len() as i64 > per_page;
        let items = rows.into_iter().take(per_page as usize).map(item).collect();
        Page {
            items,
            page,
            per_page,
            has_more,
        }
    }
}

/// `?page=&per_page=` of list endpoints.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1-based page number (default 1).
    #[param(minimum = 1, maximum = 1_000_000)]
    pub page: Option<i64>,
    /// Page size (default `order.page_size`, 20; at most `order.max_page_size`, 100).
    #[param(minimum = 1)]
    pub per_page: Option<i64>,
}

/// A verified payment of an order (from a WeChat Pay notification or query).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentNotice {
    /// Our order id.
    pub order_id: i64,
    /// WeChat Pay's transaction id.
    pub transaction_id: String,
    /// Amount paid in fen (the order total WeChat Pay charged).
    pub amount_fen: i64,
    /// Whether the payer is the order's buyer (their openid in the app).
    pub payer_matches: bool,
}

/// Body of `POST /api/admin/orders/{id}/refund`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"reason": "缺货退款"})))]
pub struct RefundOrder {
    /// Shown to the buyer by WeChat Pay (at most 80 characters).
    #[schema(max_length = 80)]
    pub reason: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::PartialSchema;

    fn schema_of<T: PartialSchema>() -> serde_json::Value {
        serde_json::to_value(T::schema()).unwrap()
    }

    #[test]
    fn the_documented_limits_are_the_checked_ones() {
        // utoipa takes literals only: these keep them equal to the constants.
        for schema in [schema_of::<NewProduct>(), schema_of::<ProductChange>()] {
            let fields = &schema["properties"];
            assert_eq!(fields["name"]["maxLength"], MAX_NAME_CHARS, "{schema}");
            assert_eq!(fields["description"]["maxLength"], MAX_DESCRIPTION_CHARS);
            assert_eq!(fields["price_fen"]["maximum"], MAX_PRICE_FEN);
        }
        assert_eq!(
            schema_of::<NewProduct>()["properties"]["stock"]["maximum"],
            MAX_STOCK
        );
        let stock = schema_of::<StockChange>();
        assert_eq!(stock["properties"]["qty"]["maximum"], MAX_STOCK);
        assert_eq!(stock["properties"]["delta"]["minimum"], -MAX_STOCK);
        assert_eq!(stock["properties"]["delta"]["maximum"], MAX_STOCK);
    }
}
