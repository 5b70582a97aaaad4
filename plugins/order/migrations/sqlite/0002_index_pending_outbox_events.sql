-- The outbox worker only ever looks for pending events. A partial index leaves
-- delivered and parked rows out of it: marking an event done adds no entry, and the
-- index stays the size of the backlog rather than of the table's history.
DROP INDEX order_outbox_due;
CREATE INDEX order_outbox_pending ON order_outbox (next_attempt_at, id) WHERE state = 'pending';
