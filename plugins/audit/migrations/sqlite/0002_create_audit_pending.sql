-- Rows recorded but not chained yet: recording is a plain insert (no shared lock),
-- and a background task appends them to audit_log in batches under the chain-head
-- lock. event_id is unique here too, so a redelivered event is staged once.
CREATE TABLE audit_pending (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    actor VARCHAR(64) NOT NULL,
    action VARCHAR(64) NOT NULL,
    target VARCHAR(128) NOT NULL,
    request_id VARCHAR(64),
    details TEXT NOT NULL,
    event_id VARCHAR(96) UNIQUE
);
