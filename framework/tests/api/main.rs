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
mod me_cache;
mod metrics;
mod plugins;
mod production;
mod properties;
mod realtime;
mod reload;
mod session_cache;
mod shutdown;
mod tls;
mod wechat_client;
mod wechat_push;

/// Two instances sharing a PostgreSQL database and Redis, both with `key` set to
/// `value`: what the cross-instance tests start from.
pub(crate) async fn two_instances(
    key: &str,
    value: u64,
) -> (weapp::testing::TestApp, weapp::testing::TestApp) {
    let first = weapp::testing::TestApp::builder()
        .database(weapp::db::Backend::Postgres)
        .redis()
        .set(key, value)
        .spawn()
        .await;
    let second = weapp::testing::TestApp::builder()
        .beside(&first)
        .set(key, value)
        .spawn()
        .await;
    (first, second)
}

/// Asserts that `app` does not start, with an error naming `named` (the setting
/// at fault).
pub(crate) async fn refused_at_start(app: weapp::testing::TestAppBuilder, named: &str) {
    let refused = app.try_spawn().await.err().expect("start-up must fail");
    assert!(refused.to_string().contains(named), "{refused}");
}
