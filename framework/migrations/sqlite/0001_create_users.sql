CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    openid BLOB NOT NULL,
    openid_index BLOB NOT NULL,
    unionid BLOB,
    unionid_index BLOB,
    phone BLOB,
    phone_index BLOB,
    nickname TEXT,
    avatar_url TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_openid_index ON users (openid_index);
CREATE INDEX users_unionid_index ON users (unionid_index);
CREATE INDEX users_phone_index ON users (phone_index);
