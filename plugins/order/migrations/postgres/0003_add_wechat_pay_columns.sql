-- WeChat Pay: the order's prepay (one per order, reused while valid) and its refund.
ALTER TABLE orders ADD COLUMN prepay_id VARCHAR(64);
-- When the prepay was made (Unix milliseconds); reconciliation queries WeChat Pay
-- about pending orders whose prepay is older than order.pay.reconcile_after_s.
ALTER TABLE orders ADD COLUMN prepay_at BIGINT;
-- WeChat Pay's refund id, once a refund was requested.
ALTER TABLE orders ADD COLUMN refund_id VARCHAR(64);
ALTER TABLE orders ADD COLUMN refund_requested_at BIGINT;
ALTER TABLE orders ADD COLUMN refunded_at BIGINT;
-- Partial: an order is placed without a prepay, so placing one (the hot path)
-- writes no entry here; only paying and settling do.
CREATE INDEX orders_pending_by_prepay ON orders (prepay_at)
    WHERE status = 'pending' AND prepay_at IS NOT NULL;
