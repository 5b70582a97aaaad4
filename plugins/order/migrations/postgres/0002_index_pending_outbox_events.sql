-- The outbox worker only ever looks for pending events. A partial index leaves
-- delivered and parked rows out of it: marking an event done adds no entry, and the
-- index stays the size of the backlog rather than of the table's history.
DROP INDEX order_outbox_due;
CREATE INDEX order_outbox_pending ON order_outbox (next_attempt_at, id) WHERE state = 'pending';

-- A queue table turns over all the time. Vacuum and analyze it after a number of
-- changed rows, not after a fraction of its size, so dead entries do not pile up in
-- the index and the planner's row counts stay close to the real backlog.
ALTER TABLE order_outbox SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 5000
);
