-- MySQL commits DDL one statement at a time, so each statement can run again.
CREATE TABLE IF NOT EXISTS feedback (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    INDEX feedback_by_user (user_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
