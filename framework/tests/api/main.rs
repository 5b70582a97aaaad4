//! Integration tests of the framework core, one binary for fast linking.

mod architecture;
mod auth;
mod config;
mod crypto_field;
mod crypto_sealed;
mod crypto_wechat;
mod db;
mod db_replicas;
mod errors;
mod events;
mod events_relay;
mod guard;
mod health;
mod interleaved_store;
mod kv;
mod lease_queue;
mod metrics;
mod plugins;
mod production;
mod properties;
mod realtime;
mod reload;
mod shutdown;
mod tls;
mod wechat_client;
mod wechat_push;
