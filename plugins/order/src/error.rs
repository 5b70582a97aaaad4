//! Failures of order operations and how clients see them.

use weapp::backoff::Transient;
use weapp::db::DbError;

/// Why an order operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// A statement failed.
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    /// No connection, or another database failure.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Redis failed (flash sales).
    #[error(transparent)]
    Kv(#[from] weapp::kv::KvError),
    /// Not enough units of a product; nothing of the order was kept.
    #[error("not enough stock for product {product_id}")]
    OutOfStock {
        /// The product that ran out.
        product_id: i64,
    },
    /// A product in the request does not exist or is not for sale.
    #[error("product {0} is not for sale")]
    UnknownProduct(i64),
    /// The order's total does not fit in an `i64` of fen.
    #[error("the order total is too large")]
    TotalTooLarge,
    /// The input is not acceptable (a library caller's mistake, or a client's).
    #[error("{0}")]
    Invalid(String),
    /// The order does not exist, or belongs to someone else.
    #[error("order not found")]
    OrderNotFound,
    /// The order's state does not allow the transition.
    #[error("order is {0}")]
    WrongState(&'static str),
    /// Another transition of the same order won the race; retried.
    #[error("the order changed concurrently")]
    Concurrent,
    /// The `Idempotency-Key` was already used: its stored response applies.
    #[error("idempotency key already used")]
    KeyTaken,
    /// A catalogue change with a missing or unacceptable field.
    #[error("{0}")]
    InvalidProduct(String),
    /// The product does not exist (on sale or not).
    #[error("product not found")]
    ProductNotFound,
    /// A stock adjustment would leave fewer than no units, or too many.
    #[error("the stock of product {product_id} ({qty}) cannot change by that much")]
    StockOutOfRange {
        /// The product.
        product_id: i64,
        /// Its units on hand, unchanged.
        qty: i64,
    },
}

/// Whether retrying the whole transaction may succeed: a deadlock, a serialization
/// failure, or a lost version check.
impl Transient for OrderError {
    fn is_transient(&self) -> bool {
        match self {
            OrderError::Query(e) => e.is_transient(),
            OrderError::Db(e) => e.is_transient(),
            OrderError::Concurrent => true,
            _ => false,
        }
    }
}

impl From<OrderError> for weapp::Error {
    fn from(e: OrderError) -> Self {
        if e.is_transient() {
            // Retries ran out under contention: the client may try again.
            return weapp::Error::unavailable(
                "database_busy",
                "the database is busy with conflicting changes, try again",
            );
        }
        match e {
            OrderError::Query(e) => DbError::Query(e).into(),
            OrderError::Db(e) => e.into(),
            OrderError::Kv(e) => e.into(),
            OrderError::OutOfStock { product_id } => weapp::Error::conflict(
                "out_of_stock",
                format!("not enough stock for product {product_id}"),
            ),
            OrderError::UnknownProduct(id) => weapp::Error::unprocessable(
                "unknown_product",
                format!("product {id} does not exist or is not for sale"),
            ),
            OrderError::TotalTooLarge => {
                weapp::Error::unprocessable("total_too_large", "the order total is too large")
            }
            OrderError::Invalid(message) => weapp::Error::bad_request("invalid_order", message),
            OrderError::OrderNotFound => weapp::Error::not_found("order not found"),
            OrderError::WrongState(state) => {
                weapp::Error::conflict("invalid_order_state", format!("the order is {state}"))
            }
            OrderError::Concurrent => weapp::Error::unavailable(
                "database_busy",
                "the order was changed by another request, try again",
            ),
            OrderError::KeyTaken => weapp::Error::conflict(
                "request_in_progress",
                "a request with this Idempotency-Key is in progress",
            ),
            OrderError::InvalidProduct(message) => {
                weapp::Error::bad_request("invalid_product", message)
            }
            OrderError::ProductNotFound => weapp::Error::not_found("product not found"),
            OrderError::StockOutOfRange { product_id, qty } => weapp::Error::conflict(
                "stock_out_of_range",
                format!(
                    "product {product_id} has {qty} units; the change would leave fewer than 0 \
                     or more than {}",
                    crate::model::MAX_STOCK
                ),
            ),
        }
    }
}
