//! Helpers shared by the order tests.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use weapp::db::Backend;
use weapp::testing::{TestApp, TestAppBuilder};
use weapp_order::{NewProduct, Orders};

/// The payment provider's secret in these tests.
pub(crate) const PAY_SECRET: &str = "test-payment-secret";

/// A test app with the order plugin and a payment secret. One test user may hold
/// any number of unpaid orders (the cap has its own test).
pub(crate) fn builder(backend: Backend) -> TestAppBuilder {
    TestApp::builder()
        .database(backend)
        .set("order.max_pending_orders", 0)
        .set("order.max_pending_units", 0)
        .set("order.payment.secret", PAY_SECRET)
        .set("order.outbox.poll_interval_ms", 20)
        .set("order.outbox.sweep_interval_ms", 20)
}

/// The plugin's service inside the app.
pub(crate) fn orders(app: &TestApp) -> Arc<Orders> {
    app.ctx.get::<Orders>().expect("the order plugin started")
}

/// Adds a product; returns its id.
pub(crate) async fn product(app: &TestApp, price_fen: i64, stock: i64) -> i64 {
    orders(app)
        .add_product(
            &NewProduct {
                name: format!("product at {price_fen}"),
                description: String::new(),
                price_fen,
                stock,
                active: true,
            },
            "test",
        )
        .await
        .expect("product added")
        .id
}

/// Units left of a product, read through the public API.
pub(crate) async fn stock(app: &TestApp, product_id: i64) -> i64 {
    let (status, body) = get(app, &format!("/api/products/{product_id}"), None).await;
    assert_eq!(status, 200, "{body}");
    body["stock"].as_i64().expect("stock")
}

/// GET with an optional bearer token: `(status, JSON body)`.
pub(crate) async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = app.client.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("app reachable");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `POST /api/orders`: `(status, body, replayed)`.
pub(crate) async fn place(
    app: &TestApp,
    token: &str,
    key: impl AsRef<str>,
    items: Value,
) -> (StatusCode, Value, bool) {
    let response = app
        .client
        .post(app.url("/api/orders"))
        .bearer_auth(token)
        .header("Idempotency-Key", key.as_ref())
        .json(&serde_json::json!({ "items": items }))
        .send()
        .await
        .expect("app reachable");
    let status = response.status();
    let replayed = response.headers().get("Idempotent-Replayed").is_some();
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        replayed,
    )
}

/// A fresh key.
pub(crate) fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// POSTs a notification signed as the payment provider does.
pub(crate) async fn notify(app: &TestApp, body: &Value) -> (StatusCode, Value) {
    notify_raw(
        app,
        body.to_string().as_bytes(),
        PAY_SECRET,
        chrono::Utc::now().timestamp(),
    )
    .await
}

/// POSTs raw notification bytes signed with `secret` at `timestamp`.
pub(crate) async fn notify_raw(
    app: &TestApp,
    body: &[u8],
    secret: &str,
    timestamp: i64,
) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url("/api/pay/notify"))
        .header("Content-Type", "application/json")
        .header("X-Pay-Timestamp", timestamp.to_string())
        .header(
            "X-Pay-Signature",
            weapp_order::payment::sign(secret, timestamp, body),
        )
        .body(body.to_vec())
        .send()
        .await
        .expect("app reachable");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `POST /api/orders/{id}/cancel` as the buyer: the status.
pub(crate) async fn cancel(app: &TestApp, token: &str, order_id: i64) -> StatusCode {
    app.client
        .post(app.url(&format!("/api/orders/{order_id}/cancel")))
        .bearer_auth(token)
        .send()
        .await
        .expect("app reachable")
        .status()
}

/// Polls `check` every 20 ms until it holds, failing after 10 s with `what`.
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Runs one SQL query returning a single BIGINT on the app's database.
pub(crate) async fn count(app: &TestApp, sql: &str) -> i64 {
    app.count(sql).await
}
