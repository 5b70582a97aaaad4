-- A sender's key for one message (e.g. the event that asked for it): a second send
-- with the same key returns the first message instead of queuing another, so an
-- event delivered twice sends once. NULLs (no key) never collide.
ALTER TABLE message_queue ADD COLUMN dedupe_key VARCHAR(128);
CREATE UNIQUE INDEX message_queue_dedupe_key ON message_queue (dedupe_key);
