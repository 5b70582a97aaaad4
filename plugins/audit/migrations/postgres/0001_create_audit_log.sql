-- The append-only, hash-chained audit log. Times are Unix milliseconds; hashes are
-- 64 lowercase hex characters (SM3).
CREATE TABLE audit_log (
    id BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor VARCHAR(64) NOT NULL,
    action VARCHAR(64) NOT NULL,
    target VARCHAR(128) NOT NULL,
    request_id VARCHAR(64),
    -- JSON without personal data in clear; NULL once archived by retention.
    details TEXT,
    details_hash CHAR(64) NOT NULL,
    -- The event this row records, so a redelivered event is recorded once.
    event_id VARCHAR(96) UNIQUE,
    prev_hash CHAR(64) NOT NULL,
    hash CHAR(64) NOT NULL
);
CREATE INDEX audit_log_by_action_time ON audit_log (action, at);

-- One row: where the chain ends. Appends lock it, so the chain has one order.
CREATE TABLE audit_chain_head (
    id INTEGER PRIMARY KEY,
    last_id BIGINT NOT NULL,
    last_hash CHAR(64) NOT NULL
);
INSERT INTO audit_chain_head (id, last_id, last_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Details moved out of the live log when their retention ends.
CREATE TABLE audit_archive (
    id BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    action VARCHAR(64) NOT NULL,
    details TEXT NOT NULL,
    archived_at BIGINT NOT NULL
);
