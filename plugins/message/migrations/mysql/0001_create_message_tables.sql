-- Subscribe-message templates (a cache of WeChat's list), one-time quotas, and the
-- persistent send queue. Times are Unix milliseconds. Every statement can run again.
CREATE TABLE IF NOT EXISTS message_templates (
    template_id VARCHAR(128) PRIMARY KEY,
    title VARCHAR(200) NOT NULL,
    content TEXT NOT NULL,
    kind INTEGER NOT NULL,
    synced_at BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS message_quotas (
    user_id BIGINT NOT NULL,
    template_id VARCHAR(128) NOT NULL,
    remaining INTEGER NOT NULL CHECK (remaining >= 0),
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, template_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- state: pending -> claimed -> sending -> sent | failed (or back to pending to retry).
CREATE TABLE IF NOT EXISTS message_queue (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    template_id VARCHAR(128) NOT NULL,
    data TEXT NOT NULL,
    -- JSON {"page", "miniprogram_state", "lang"}.
    options TEXT NOT NULL,
    state VARCHAR(8) NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT,
    claim_token BIGINT,
    errcode BIGINT,
    reason TEXT,
    msgid BIGINT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    INDEX message_queue_due (state, next_attempt_at),
    INDEX message_queue_by_user (user_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
