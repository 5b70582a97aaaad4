//! Payment notifications: authentication and anomalies.

use serde_json::json;
use weapp::db::Backend;
use weapp::testing::TestApp;

use crate::support::*;

async fn pending_order(app: &TestApp, total: i64) -> i64 {
    let item = product(app, total, 10).await;
    let (token, _) = app.login("o_pay").await;
    let (_, created, _) = place(app, &token, key(), json!([{"product_id": item, "qty": 1}])).await;
    created["order_id"].as_i64().unwrap()
}

#[tokio::test]
async fn forged_stale_or_malformed_notifications_are_refused() {
    let app = builder(Backend::Sqlite).spawn().await;
    let order_id = pending_order(&app, 800).await;
    let body = json!({"order_id": order_id, "transaction_id": "t1", "amount_fen": 800}).to_string();
    let now = chrono::Utc::now().timestamp();

    let (status, answer) = notify_raw(&app, body.as_bytes(), "not-the-secret", now).await;
    assert_eq!(
        (status.as_u16(), answer["code"].as_str()),
        (401, Some("invalid_signature"))
    );
    let (status, _) = notify_raw(&app, body.as_bytes(), PAY_SECRET, now - 3_600).await;
    assert_eq!(status, 401, "a stale timestamp is refused");
    let unsigned = app
        .client
        .post(app.url("/api/pay/notify"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);

    let (status, answer) = notify_raw(&app, b"{not json", PAY_SECRET, now).await;
    assert_eq!(
        (status.as_u16(), answer["code"].as_str()),
        (400, Some("invalid_body"))
    );
    let extra =
        json!({"order_id": order_id, "transaction_id": "t1", "amount_fen": 800, "coupon": 1});
    let (status, _) = notify(&app, &extra).await;
    assert_eq!(status, 400, "unknown fields are refused");
    let (status, answer) = notify(
        &app,
        &json!({"order_id": 999_999, "transaction_id": "t1", "amount_fen": 1}),
    )
    .await;
    assert_eq!(
        (status.as_u16(), answer["code"].as_str()),
        (404, Some("not_found"))
    );

    let pending = count(
        &app,
        "SELECT COUNT(*) AS n FROM orders WHERE status = 'pending'",
    )
    .await;
    assert_eq!(pending, 1, "nothing was paid");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn without_a_secret_notifications_are_unavailable() {
    let app = weapp::testing::TestApp::builder().spawn().await;
    let (status, answer) = notify(
        &app,
        &json!({"order_id": 1, "transaction_id": "t", "amount_fen": 1}),
    )
    .await;
    assert_eq!(
        (status.as_u16(), answer["code"].as_str()),
        (503, Some("payment_not_configured"))
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_wrong_amount_is_refused_and_recorded() {
    let app = builder(Backend::Postgres).spawn().await;
    let order_id = pending_order(&app, 1_500).await;
    let (status, answer) = notify(
        &app,
        &json!({"order_id": order_id, "transaction_id": "t9", "amount_fen": 1}),
    )
    .await;
    assert_eq!(
        (status.as_u16(), answer["code"].as_str()),
        (422, Some("amount_mismatch"))
    );
    let pending = count(
        &app,
        &format!("SELECT COUNT(*) AS n FROM orders WHERE id = {order_id} AND status = 'pending'"),
    )
    .await;
    assert_eq!(pending, 1);
    let anomalies = count(&app, "SELECT COUNT(*) AS n FROM order_outbox WHERE topic = 'payment.anomaly' AND payload LIKE '%amount_mismatch%'").await;
    assert_eq!(anomalies, 1, "the refusal is kept for the audit log");

    // Paid properly, then paid again by another transaction: refused and recorded.
    let (status, _) = notify(
        &app,
        &json!({"order_id": order_id, "transaction_id": "t10", "amount_fen": 1_500}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, answer) = notify(
        &app,
        &json!({"order_id": order_id, "transaction_id": "t11", "amount_fen": 1_500}),
    )
    .await;
    assert_eq!(
        (status.as_u16(), answer["code"].as_str()),
        (409, Some("already_paid"))
    );
    let anomalies = count(
        &app,
        "SELECT COUNT(*) AS n FROM order_outbox WHERE topic = 'payment.anomaly'",
    )
    .await;
    assert_eq!(anomalies, 2);
    app.stop().await.unwrap();
}
