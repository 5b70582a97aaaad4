-- pgbench script: the transaction the app runs for a batch of :batch orders under
-- group commit (pgbench -D batch=N; see plugins/order/src/group_commit/postgres.rs),
-- in the app's two pipelines. The app binds arrays of the ids it drew in the first
-- round trip; pgbench, which cannot carry results into a pipeline, draws the ids
-- again with nextval in the inserts (2 x batch more sequence calls than the app).
\set uid random(1, 1000000000)
\set k random(1, 9000000000000000)
\startpipeline
BEGIN;
SELECT id, price_fen FROM products WHERE id = ANY('{1}'::bigint[]) AND active = true;
SELECT nextval('orders_id_seq') AS order_id, nextval('order_outbox_id_seq') AS event_id FROM generate_series(1, :batch);
\endpipeline
\startpipeline
WITH o AS (INSERT INTO orders (id, user_id, status, total_fen, version, created_at, updated_at, expires_at) SELECT nextval('orders_id_seq'), :uid + g, 'pending', 4800, 0, 1, 1, 900001 FROM generate_series(1, :batch) g RETURNING id) INSERT INTO order_items (order_id, product_id, qty, price_fen) SELECT id, 1, 1, 4800 FROM o;
INSERT INTO order_outbox (topic, payload, state, attempts, next_attempt_at, created_at) SELECT 'order.created', '{"order_id":1,"user_id":1,"total_fen":4800}', 'pending', 0, 1, 1 FROM generate_series(1, :batch);
INSERT INTO order_idempotency_keys (user_id, idem_key, request_hash, status, response, created_at) SELECT :uid + g, 'k' || :k || '-' || g, '\x00', 201, '{"order_id":1,"status":"pending","total_fen":4800}', 1 FROM generate_series(1, :batch) g;
WITH taken AS (UPDATE stock SET qty = qty - :batch WHERE product_id = 1 AND qty >= :batch RETURNING 1) SELECT 1 / COUNT(*) AS taken FROM taken;
COMMIT;
\endpipeline
