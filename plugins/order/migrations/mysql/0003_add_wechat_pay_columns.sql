-- WeChat Pay: the order's prepay (one per order, reused while valid) and its refund.
ALTER TABLE orders ADD COLUMN prepay_id VARCHAR(64);
-- When the prepay was made (Unix milliseconds); reconciliation queries WeChat Pay
-- about pending orders whose prepay is older than order.pay.reconcile_after_s.
ALTER TABLE orders ADD COLUMN prepay_at BIGINT;
-- WeChat Pay's refund id, once a refund was requested.
ALTER TABLE orders ADD COLUMN refund_id VARCHAR(64);
ALTER TABLE orders ADD COLUMN refund_requested_at BIGINT;
ALTER TABLE orders ADD COLUMN refunded_at BIGINT;
-- No index of its own: MariaDB has no partial indexes, and one on every order would
-- cost each placement a write; reconciliation reads the pending orders through
-- orders_by_status_expiry instead.
