//! Helpers shared by the order tests.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use weapp::db::Backend;
use weapp::testing::{TestApp, TestAppBuilder};
use weapp_order::{NewProduct, Orders};

/// The WeChat Pay merchant id in these tests (on the pay sandbox's sample keys).
pub(crate) const MCHID: &str = "1900000109";

/// A test app with the order plugin paid through the pay sandbox. One test user may
/// hold any number of unpaid orders (the cap has its own test).
pub(crate) fn builder(backend: Backend) -> TestAppBuilder {
    TestApp::builder()
        .database(backend)
        .set("order.max_pending_orders", 0)
        .set("order.max_pending_units", 0)
        .set("pay.merchants.shop.mchid", MCHID)
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

/// Writes `n` pending outbox events of `topic` due at `due_at` (ms) as no
/// transaction of the app did: nobody hints them to the worker.
pub(crate) async fn insert_outbox_events(app: &TestApp, topic: &str, n: usize, due_at: i64) {
    let rows = vec![format!("('{topic}', '{{}}', 'pending', 0, {due_at}, {due_at})"); n];
    let inserted = app
        .execute(&format!(
            "INSERT INTO order_outbox (topic, payload, state, attempts, next_attempt_at, created_at) \
             VALUES {}",
            rows.join(", ")
        ))
        .await;
    assert_eq!(inserted, n);
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

/// `POST /api/orders`, the response as it came (for tests that read headers).
pub(crate) async fn place_raw(
    app: &TestApp,
    token: &str,
    key: impl AsRef<str>,
    items: Value,
) -> reqwest::Response {
    app.client
        .post(app.url("/api/orders"))
        .bearer_auth(token)
        .header("Idempotency-Key", key.as_ref())
        .json(&serde_json::json!({ "items": items }))
        .send()
        .await
        .expect("app reachable")
}

/// `POST /api/orders`: `(status, body, replayed)`.
pub(crate) async fn place(
    app: &TestApp,
    token: &str,
    key: impl AsRef<str>,
    items: Value,
) -> (StatusCode, Value, bool) {
    let response = place_raw(app, token, key, items).await;
    let status = response.status();
    let replayed = response.headers().get("Idempotent-Replayed").is_some();
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        replayed,
    )
}

/// The admin token of tests that use the admin API (`auth.admin_tokens.ops`).
pub(crate) const ADMIN: &str = "test-admin-token-for-the-catalogue";

/// An admin request: `(status, JSON body)`.
pub(crate) async fn admin(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .request(method, app.url(path))
        .header("X-Admin-Token", ADMIN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("app reachable");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A fresh key.
pub(crate) fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The order's `out_trade_no` (default prefix).
pub(crate) fn out_trade_no(order_id: i64) -> String {
    format!("wa{order_id:010}")
}

/// `POST /api/orders/{id}/pay` as the buyer: `(status, body)`.
pub(crate) async fn pay_params(app: &TestApp, token: &str, order_id: i64) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(&format!("/api/orders/{order_id}/pay")))
        .bearer_auth(token)
        .send()
        .await
        .expect("app reachable");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The pay sandbox's user pays the order's prepay (`extra` may set `amount` or
/// `openid`); the sandbox then notifies the app.
pub(crate) async fn sandbox_pays(app: &TestApp, order_id: i64, extra: Value) {
    let mut body = serde_json::json!({"out_trade_no": out_trade_no(order_id)});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let response = app
        .client
        .post(app.url("/__sandbox/pay/pay"))
        .json(&body)
        .send()
        .await
        .expect("app reachable");
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

/// The order's status, read from the database.
pub(crate) async fn status_of(app: &TestApp, order_id: i64) -> String {
    app.texts(&format!(
        "SELECT status AS t FROM orders WHERE id = {order_id}"
    ))
    .await
    .pop()
    .unwrap_or_default()
}

/// The whole payment as the mini program makes it: pay parameters, the user pays
/// in the sandbox, the notification arrives; waits until the order is paid.
pub(crate) async fn pay(app: &TestApp, token: &str, order_id: i64) -> Value {
    let (status, params) = pay_params(app, token, order_id).await;
    assert_eq!(status, 200, "{params}");
    sandbox_pays(app, order_id, Value::Null).await;
    eventually("the order is paid", || async {
        status_of(app, order_id).await == "paid"
    })
    .await;
    params
}

/// A payment notification for the order as WeChat Pay sends it, posted by the
/// test: `(status, body)` of the answer.
pub(crate) async fn notify(
    app: &TestApp,
    order_id: i64,
    transaction_id: &str,
    amount_fen: i64,
    openid: &str,
) -> (StatusCode, Value) {
    let payments = app.ctx.get::<weapp_pay::Payments>().expect("pay plugin");
    let merchant = payments.merchant("shop").expect("merchant shop");
    let resource = serde_json::json!({
        "appid": weapp::testing::SANDBOX_APPID,
        "mchid": MCHID,
        "out_trade_no": out_trade_no(order_id),
        "transaction_id": transaction_id,
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "success_time": "2026-11-30T10:00:00+08:00",
        "payer": {"openid": openid},
        "amount": {"total": amount_fen, "payer_total": amount_fen, "currency": "CNY"}
    });
    let (headers, body) =
        weapp_pay::sandbox::signed_notification(merchant, "TRANSACTION.SUCCESS", &resource);
    let mut request = app
        .client
        .post(app.url("/api/pay/notify/shop"))
        .header("Content-Type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("app reachable");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
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

/// A sample of `/metrics` without labels (process-wide: every app of the test's
/// process adds to it).
pub(crate) async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.metrics().await;
    weapp::testing::metric_sample(&text, &format!("{name} "))
        .unwrap_or_else(|| panic!("{name} in /metrics:\n{text}"))
}

/// Runs one SQL query returning a single BIGINT on the app's database.
pub(crate) async fn count(app: &TestApp, sql: &str) -> i64 {
    app.count(sql).await
}
