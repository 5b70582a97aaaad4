-- Products, stock, orders and their items, idempotency keys and the outbox.
-- Money is integer fen; times are Unix milliseconds.
CREATE TABLE products (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    price_fen BIGINT NOT NULL CHECK (price_fen >= 0),
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE stock (
    product_id BIGINT PRIMARY KEY REFERENCES products (id),
    qty BIGINT NOT NULL CHECK (qty >= 0)
);

CREATE TABLE orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT,
    status TEXT NOT NULL,
    total_fen BIGINT NOT NULL CHECK (total_fen >= 0),
    version INTEGER NOT NULL DEFAULT 0,
    payment_id TEXT,
    cancel_reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    paid_at BIGINT
);
CREATE INDEX orders_by_user ON orders (user_id, id);
CREATE INDEX orders_by_status_expiry ON orders (status, expires_at);

CREATE TABLE order_items (
    order_id BIGINT NOT NULL REFERENCES orders (id),
    product_id BIGINT NOT NULL,
    qty BIGINT NOT NULL CHECK (qty > 0),
    price_fen BIGINT NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

CREATE TABLE order_idempotency_keys (
    user_id BIGINT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, idem_key)
);
CREATE INDEX order_idempotency_keys_by_age ON order_idempotency_keys (created_at);

CREATE TABLE order_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT,
    claim_token BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    done_at BIGINT
);
CREATE INDEX order_outbox_due ON order_outbox (state, next_attempt_at);
