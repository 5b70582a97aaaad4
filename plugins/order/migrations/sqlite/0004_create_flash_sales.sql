-- Products sold in flash-sale mode (秒杀): units are reserved in Redis and the orders
-- written in batches. One row per product; ending a sale keeps the row (inactive),
-- so its per-user counts still start from `started_at` if it is started again.
CREATE TABLE order_flash_sales (
    product_id BIGINT PRIMARY KEY,
    -- Most units one buyer may hold of the product in the sale (cancelled orders
    -- give theirs back).
    per_user_limit BIGINT NOT NULL CHECK (per_user_limit > 0),
    active BOOLEAN NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    updated_at BIGINT NOT NULL
);
