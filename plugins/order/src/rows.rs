//! The one description of the rows an order writes, shared by every way of placing
//! it (see [`crate::placement`]) and by the transitions that change it later.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as QueryError};

use crate::error::OrderError;
use crate::model::{OrderLine, OrderStatus};
use crate::outbox::NewEvent;
use crate::schema::{order_idempotency_keys, order_items, orders, products};

/// A new row of `orders`.
#[derive(Debug, Insertable)]
#[diesel(table_name = orders)]
pub(crate) struct NewOrder<'a> {
    pub user_id: i64,
    pub status: &'a str,
    pub total_fen: i64,
    pub version: i32,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
}

/// A new row of `order_items`.
#[derive(Debug, Insertable)]
#[diesel(table_name = order_items)]
pub(crate) struct NewItem {
    pub order_id: i64,
    pub product_id: i64,
    pub qty: i64,
    pub price_fen: i64,
}

/// Every line of a batch of orders, as arrays (`UNNEST`): one prepared statement
/// whatever the batch's size.
pub(crate) const INSERT_ITEMS: &str = "INSERT INTO order_items (order_id, product_id, qty, price_fen) \
     SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::int8[])";

/// A new row of `order_idempotency_keys`.
#[derive(Debug, Insertable)]
#[diesel(table_name = order_idempotency_keys)]
pub(crate) struct NewKey<'a> {
    pub user_id: i64,
    pub idem_key: &'a str,
    pub request_hash: &'a [u8],
    pub status: i32,
    pub response: &'a str,
    pub created_at: i64,
}

/// Everything an order writes after its own row, in this order: lines, event, the
/// key with its answer (a duplicate stops here), then the stock of each line (by
/// product id; the contended rows come last, so they stay locked the least).
pub(crate) struct OrderWrites<'a> {
    pub items: &'a [NewItem],
    pub event: &'a NewEvent,
    pub key: &'a NewKey<'a>,
    pub lines: &'a [OrderLine],
}

/// An order's row as transitions read it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = orders)]
pub(crate) struct OrderRow {
    pub id: i64,
    pub user_id: Option<i64>,
    pub status: String,
    pub total_fen: i64,
    pub version: i32,
    pub payment_id: Option<String>,
}

/// A state change of an order: the columns it sets besides the status, the next
/// version and the time. `None` fields are left as they are.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = orders)]
pub(crate) struct Transition<'a> {
    pub status: &'a str,
    pub version: i32,
    pub updated_at: i64,
    pub payment_id: Option<&'a str>,
    pub paid_at: Option<i64>,
    pub cancel_reason: Option<&'a str>,
    pub refunded_at: Option<i64>,
}

impl<'a> Transition<'a> {
    /// Moves `row` to `status` at `now`, one version on.
    pub(crate) fn to(status: OrderStatus, row: &OrderRow, now: i64) -> Transition<'a> {
        Transition {
            status: status.as_str(),
            version: row.version + 1,
            updated_at: now,
            payment_id: None,
            paid_at: None,
            cancel_reason: None,
            refunded_at: None,
        }
    }
}

/// A duplicate key means another request with this key committed first.
pub(crate) fn key_taken(e: QueryError) -> OrderError {
    match e {
        QueryError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => OrderError::KeyTaken,
        e => OrderError::Query(e),
    }
}

/// `(id, price_fen)` of the products among `ids` that are for sale; the query an
/// order is priced with, on any backend.
#[diesel::dsl::auto_type]
pub(crate) fn prices_of<'a>(ids: &'a [i64]) -> _ {
    products::table
        .filter(products::id.eq_any(ids))
        .filter(products::active.eq(true))
        .select((products::id, products::price_fen))
}
