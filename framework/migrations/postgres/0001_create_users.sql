CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    openid BYTEA NOT NULL,
    openid_index BYTEA NOT NULL,
    unionid BYTEA,
    unionid_index BYTEA,
    phone BYTEA,
    phone_index BYTEA,
    nickname VARCHAR(64),
    avatar_url VARCHAR(512),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_openid_index ON users (openid_index);
CREATE INDEX users_unionid_index ON users (unionid_index);
CREATE INDEX users_phone_index ON users (phone_index);
