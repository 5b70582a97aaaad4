CREATE TABLE IF NOT EXISTS {{plugin_name}}_items (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    title TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    INDEX {{plugin_name}}_items_by_user (user_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
