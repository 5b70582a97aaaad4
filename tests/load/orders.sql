-- pgbench script: the SQL one POST /api/orders runs on PostgreSQL when the order is
-- placed alone (order.group_commit off, or a batch that could not commit whole; see
-- plugins/order/src/placing.rs and pipelined.rs), for comparing the app with the
-- database's own ceiling on the same product row. pgbench sends one statement at a
-- time; orders-pipelined.sql sends the same statements the way the app does. The
-- app inserts the id nextval gave it; pgbench, which cannot carry a result into a
-- pipeline, takes it back with currval (the same sequence work).
\set uid random(1, 1000000000)
\set k random(1, 9000000000000000)
BEGIN;
SELECT id, price_fen FROM products WHERE id = ANY('{1}'::bigint[]) AND active = true;
SELECT nextval('orders_id_seq') AS id;
INSERT INTO orders (id, user_id, status, total_fen, version, created_at, updated_at, expires_at) VALUES (currval('orders_id_seq'), :uid, 'pending', 4800, 0, 1, 1, 900001);
INSERT INTO order_items (order_id, product_id, qty, price_fen) VALUES (currval('orders_id_seq'), 1, 1, 4800);
INSERT INTO order_outbox (topic, payload, state, attempts, next_attempt_at, created_at) VALUES ('order.created', '{"order_id":1,"user_id":1,"total_fen":4800}', 'pending', 0, 1, 1) RETURNING id;
INSERT INTO order_idempotency_keys (user_id, idem_key, request_hash, status, response, created_at) VALUES (:uid, 'k' || :k, '\x00', 201, '{"order_id":1,"status":"pending","total_fen":4800}', 1);
WITH taken AS (UPDATE stock SET qty = qty - 1 WHERE product_id = 1 AND qty >= 1 RETURNING 1) SELECT 1 / COUNT(*) AS taken FROM taken;
COMMIT;
