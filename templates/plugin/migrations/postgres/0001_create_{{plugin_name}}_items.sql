CREATE TABLE {{plugin_name}}_items (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL,
    title TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX {{plugin_name}}_items_by_user ON {{plugin_name}}_items (user_id, id);
