CREATE TABLE IF NOT EXISTS users (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    openid VARBINARY(255) NOT NULL,
    openid_index BINARY(32) NOT NULL,
    unionid VARBINARY(255),
    unionid_index BINARY(32),
    phone VARBINARY(255),
    phone_index BINARY(32),
    nickname VARCHAR(64),
    avatar_url VARCHAR(512),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE KEY users_openid_index (openid_index),
    KEY users_unionid_index (unionid_index),
    KEY users_phone_index (phone_index)
) DEFAULT CHARSET = utf8mb4;
