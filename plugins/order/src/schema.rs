//! The plugin's tables, as diesel sees them.

diesel::table! {
    /// Things for sale.
    products (id) {
        /// Primary key.
        id -> BigInt,
        /// Display name.
        name -> Text,
        /// Longer text.
        description -> Text,
        /// Unit price in fen.
        price_fen -> BigInt,
        /// Orderable.
        active -> Bool,
        /// Unix milliseconds.
        created_at -> BigInt,
    }
}

diesel::table! {
    /// Units on hand per product.
    stock (product_id) {
        /// The product.
        product_id -> BigInt,
        /// Units left; never negative.
        qty -> BigInt,
    }
}

diesel::table! {
    /// Orders and their state.
    orders (id) {
        /// Primary key.
        id -> BigInt,
        /// The buyer; `NULL` once anonymised.
        user_id -> Nullable<BigInt>,
        /// `pending`, `paid`, `cancelled` or `refunded`.
        status -> Text,
        /// Sum of the items in fen.
        total_fen -> BigInt,
        /// Bumped by every transition (optimistic check).
        version -> Integer,
        /// The payment provider's transaction id.
        payment_id -> Nullable<Text>,
        /// `user` or `timeout` for cancelled orders.
        cancel_reason -> Nullable<Text>,
        /// Unix milliseconds.
        created_at -> BigInt,
        /// Unix milliseconds.
        updated_at -> BigInt,
        /// When an unpaid order is cancelled (Unix milliseconds).
        expires_at -> BigInt,
        /// Unix milliseconds.
        paid_at -> Nullable<BigInt>,
        /// WeChat Pay's prepay for this order.
        prepay_id -> Nullable<Text>,
        /// When the prepay was made (Unix milliseconds).
        prepay_at -> Nullable<BigInt>,
        /// WeChat Pay's refund id, once requested.
        refund_id -> Nullable<Text>,
        /// When the refund was requested (Unix milliseconds).
        refund_requested_at -> Nullable<BigInt>,
        /// When WeChat Pay confirmed the refund (Unix milliseconds).
        refunded_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Lines of an order, with the unit price at the time of ordering.
    order_items (order_id, product_id) {
        /// The order.
        order_id -> BigInt,
        /// The product.
        product_id -> BigInt,
        /// Units.
        qty -> BigInt,
        /// Unit price in fen.
        price_fen -> BigInt,
    }
}

diesel::table! {
    /// Responses of `POST /api/orders`, per user and `Idempotency-Key`.
    order_idempotency_keys (user_id, idem_key) {
        /// The caller.
        user_id -> BigInt,
        /// The header's value.
        idem_key -> Text,
        /// SHA-256 of the canonical request.
        request_hash -> Binary,
        /// HTTP status of the stored response.
        status -> Integer,
        /// JSON body of the stored response.
        response -> Text,
        /// Unix milliseconds.
        created_at -> BigInt,
    }
}

diesel::table! {
    /// Events written with the change that caused them, delivered after commit.
    order_outbox (id) {
        /// Primary key; also the event's id.
        id -> BigInt,
        /// Event topic, e.g. `order.paid`.
        topic -> Text,
        /// JSON payload.
        payload -> Text,
        /// `pending`, `done` or `failed`.
        state -> Text,
        /// Delivery attempts so far.
        attempts -> Integer,
        /// Not before (Unix milliseconds).
        next_attempt_at -> BigInt,
        /// A worker's claim expires then (Unix milliseconds).
        locked_until -> Nullable<BigInt>,
        /// Random token of the worker holding the lease.
        claim_token -> Nullable<BigInt>,
        /// Why the last attempt failed.
        last_error -> Nullable<Text>,
        /// Unix milliseconds.
        created_at -> BigInt,
        /// Unix milliseconds.
        done_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Products sold in flash-sale mode (see `crate::flash`).
    order_flash_sales (product_id) {
        /// The product.
        product_id -> BigInt,
        /// Most units one buyer may hold in the sale.
        per_user_limit -> BigInt,
        /// Whether orders of the product are reserved in Redis now.
        active -> Bool,
        /// When the sale (last) started (Unix milliseconds); a buyer's units count
        /// from then.
        started_at -> BigInt,
        /// When it ended, if it did (Unix milliseconds).
        ended_at -> Nullable<BigInt>,
        /// Unix milliseconds.
        updated_at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    products,
    stock,
    orders,
    order_items,
    order_flash_sales
);
