use weapp::health::{Health, Readiness};
use weapp::testing::TestApp;

#[tokio::test]
async fn healthz_reports_build_and_uptime() {
    let app = TestApp::builder().spawn().await;
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let health: Health = response.json().await.unwrap();
    assert_eq!(health.status, "ok");
    assert_eq!(health.version, env!("CARGO_PKG_VERSION"));
    // The app did not say its commit; the framework's is its own field.
    assert_eq!(health.git_hash, "unknown");
    assert_eq!(health.framework_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(health.framework_git_hash, weapp::FRAMEWORK_GIT_HASH);
    assert!(!health.framework_git_hash.is_empty());
    assert!(chrono::DateTime::parse_from_rfc3339(&health.started_at).is_ok());
    assert!(health.uptime_s >= 0);

    // 59 more requests (plus the one above and the next): 61 in the last minute.
    for _ in 0..59 {
        app.client.get(app.url("/readyz")).send().await.unwrap();
    }
    let health: Health = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        (health.qps_1m - 61.0 / 60.0).abs() < 0.02,
        "qps_1m {} for 61 requests in the last minute",
        health.qps_1m
    );
}

#[tokio::test]
async fn readyz_is_ready_with_database_and_redis_up() {
    let app = TestApp::builder()
        .database(weapp::db::Backend::Postgres)
        .redis()
        .spawn()
        .await;
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let ready: Readiness = response.json().await.unwrap();
    assert_eq!(ready.status, "ready");
    assert_eq!(ready.checks["database"].status, "up");
    assert_eq!(ready.checks["database"].backend, "postgres");
    assert_eq!(ready.checks["kv"].status, "up");
    assert_eq!(ready.checks["kv"].backend, "redis");
}

#[tokio::test]
async fn readyz_names_a_database_that_is_down() {
    let app = TestApp::builder()
        .database_url("postgres://postgres@127.0.0.1:1/none")
        .set("database.migrate_on_start", false)
        .set("database.connect_timeout_ms", 5_000)
        .set("health.check_timeout_ms", 300)
        .spawn()
        .await;
    let started = std::time::Instant::now();
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "bounded by the check timeout"
    );
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let ready: Readiness = response.json().await.unwrap();
    assert_eq!(ready.status, "unavailable");
    assert_eq!(ready.code.as_deref(), Some("not_ready"));
    assert_eq!(ready.message.as_deref(), Some("unavailable: database"));
    assert!(ready.request_id.is_some());
    assert_eq!(ready.checks["database"].status, "down");
    assert_eq!(ready.checks["kv"].status, "up");
    // Anyone may call /readyz: the driver's message (hosts, ports, users) stays in
    // the log.
    let error = ready.checks["database"]
        .error
        .as_deref()
        .unwrap_or_default();
    assert!(
        error == "unreachable" || error.starts_with("no answer within"),
        "{error}"
    );
}

#[tokio::test]
async fn readyz_names_a_key_value_store_that_is_down() {
    let app = TestApp::builder()
        .set("redis.url", "redis://127.0.0.1:1")
        .set("redis.connect_timeout_ms", 200)
        .set("redis.response_timeout_ms", 200)
        .spawn()
        .await;
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let ready: Readiness = response.json().await.unwrap();
    assert_eq!(ready.message.as_deref(), Some("unavailable: kv"));
    assert_eq!(ready.checks["database"].status, "up");
    assert_eq!(ready.checks["kv"].status, "down");
    let error = ready.checks["kv"].error.as_deref().unwrap_or_default();
    assert!(
        error == "unreachable" || error.starts_with("no answer within"),
        "{error}"
    );
    assert!(!error.contains("127.0.0.1"), "{error}");
}
