-- Products, stock, orders and their items, idempotency keys and the outbox.
-- Money is integer fen; times are Unix milliseconds. MySQL commits DDL one statement
-- at a time, so every statement can run again.
CREATE TABLE IF NOT EXISTS products (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(200) NOT NULL,
    description TEXT NOT NULL,
    price_fen BIGINT NOT NULL CHECK (price_fen >= 0),
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS stock (
    product_id BIGINT PRIMARY KEY,
    qty BIGINT NOT NULL CHECK (qty >= 0),
    CONSTRAINT stock_product FOREIGN KEY (product_id) REFERENCES products (id)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS orders (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    user_id BIGINT NULL,
    status VARCHAR(16) NOT NULL,
    total_fen BIGINT NOT NULL CHECK (total_fen >= 0),
    version INT NOT NULL DEFAULT 0,
    payment_id VARCHAR(64) NULL,
    cancel_reason VARCHAR(16) NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    paid_at BIGINT NULL,
    INDEX orders_by_user (user_id, id),
    INDEX orders_by_status_expiry (status, expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS order_items (
    order_id BIGINT NOT NULL,
    product_id BIGINT NOT NULL,
    qty BIGINT NOT NULL CHECK (qty > 0),
    price_fen BIGINT NOT NULL,
    PRIMARY KEY (order_id, product_id),
    CONSTRAINT order_items_order FOREIGN KEY (order_id) REFERENCES orders (id)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS order_idempotency_keys (
    user_id BIGINT NOT NULL,
    idem_key VARCHAR(128) NOT NULL,
    request_hash VARBINARY(32) NOT NULL,
    status INT NOT NULL,
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, idem_key),
    INDEX order_idempotency_keys_by_age (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS order_outbox (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    topic VARCHAR(64) NOT NULL,
    payload TEXT NOT NULL,
    state VARCHAR(8) NOT NULL DEFAULT 'pending',
    attempts INT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT NULL,
    claim_token BIGINT NULL,
    last_error TEXT NULL,
    created_at BIGINT NOT NULL,
    done_at BIGINT NULL,
    INDEX order_outbox_due (state, next_attempt_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
