//! Orders paid with WeChat Pay through the pay sandbox: parameters, payment,
//! anomalies, reconciliation, expiry, cancellation and refunds.

use serde_json::{Value, json};
use weapp::db::Backend;
use weapp::testing::{TestApp, TestAppBuilder};

use crate::support::*;

const ADMIN: &str = "an-operator-token-long-enough-to-be-unguessable";

/// A pending order of one product at `total` fen for a new buyer: `(token, order id,
/// product id)`.
async fn pending_order(app: &TestApp, buyer: &str, total: i64) -> (String, i64, i64) {
    let item = product(app, total, 10).await;
    let (token, _) = app.login(buyer).await;
    let (_, created, _) = place(app, &token, key(), json!([{"product_id": item, "qty": 1}])).await;
    (token, created["order_id"].as_i64().unwrap(), item)
}

async fn sandbox(app: &TestApp, path: &str, body: Value) -> Value {
    let response = app
        .client
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    response.json().await.unwrap_or(Value::Null)
}

/// The sandbox's view of the order's trade (`trade_state` and all).
async fn trade(app: &TestApp, order_id: i64) -> Value {
    let trades: Value = app
        .client
        .get(app.url("/__sandbox/pay/trades"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    trades["trades"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["out_trade_no"] == out_trade_no(order_id))
        .cloned()
        .unwrap_or(Value::Null)
}

async fn topics(app: &TestApp, topic: &str) -> Vec<String> {
    app.texts(&format!(
        "SELECT payload AS t FROM order_outbox WHERE topic = '{topic}' ORDER BY id"
    ))
    .await
}

#[tokio::test]
async fn the_buyer_gets_one_prepay_until_the_order_is_paid() {
    let app = builder(Backend::Sqlite).spawn().await;
    let (token, order_id, _) = pending_order(&app, "o_pay_buyer", 800).await;
    let (stranger, _) = app.login("o_pay_stranger").await;
    let (status, body) = pay_params(&app, &stranger, order_id).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (404, Some("not_found"))
    );

    let (status, first) = pay_params(&app, &token, order_id).await;
    assert_eq!(status, 200, "{first}");
    let (_, second) = pay_params(&app, &token, order_id).await;
    assert_eq!(
        first["package"], second["package"],
        "the same prepay while it is valid"
    );
    assert_ne!(
        first["nonceStr"], second["nonceStr"],
        "signed afresh each time"
    );
    assert_eq!(
        trade(&app, order_id).await["payer"]["openid"],
        "o_pay_buyer"
    );
    assert_eq!(trade(&app, order_id).await["trade_state"], "NOTPAY");

    sandbox_pays(&app, order_id, Value::Null).await;
    eventually("paid", || async {
        status_of(&app, order_id).await == "paid"
    })
    .await;
    let (status, body) = pay_params(&app, &token, order_id).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (409, Some("already_paid"))
    );
    let paid = topics(&app, "order.paid").await;
    assert_eq!(paid.len(), 1, "{paid:?}");
    let payment_id = app
        .texts(&format!(
            "SELECT payment_id AS t FROM orders WHERE id = {order_id}"
        ))
        .await;
    assert!(
        payment_id[0].starts_with("42000"),
        "WeChat Pay's transaction id: {payment_id:?}"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_wrong_amount_or_payer_is_recorded_not_applied() {
    let app = builder(Backend::Postgres).spawn().await;
    let (token, short, _) = pending_order(&app, "o_pay_amount", 1_500).await;
    pay_params(&app, &token, short).await;
    sandbox_pays(&app, short, json!({"amount": 1})).await;
    let (token2, stranger_paid, _) = pending_order(&app, "o_pay_payer", 900).await;
    pay_params(&app, &token2, stranger_paid).await;
    sandbox_pays(&app, stranger_paid, json!({"openid": "o_someone_else"})).await;
    eventually("both anomalies recorded", || async {
        topics(&app, "payment.anomaly").await.len() == 2
    })
    .await;
    let anomalies = topics(&app, "payment.anomaly").await.join("\n");
    assert!(
        anomalies.contains("amount_mismatch") && anomalies.contains("payer_mismatch"),
        "{anomalies}"
    );
    assert_eq!(status_of(&app, short).await, "pending");
    assert_eq!(status_of(&app, stranger_paid).await, "pending");

    // Paid properly, then paid again by another transaction: recorded, not applied.
    let (status, _) = notify(&app, short, "4200000000000010", 1_500, "o_pay_amount").await;
    assert_eq!(status, 204);
    assert_eq!(status_of(&app, short).await, "paid");
    let (status, _) = notify(&app, short, "4200000000000011", 1_500, "o_pay_amount").await;
    assert_eq!(status, 204);
    let anomalies = topics(&app, "payment.anomaly").await;
    assert_eq!(anomalies.len(), 3);
    assert!(anomalies[2].contains("already_paid"), "{anomalies:?}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_lost_notification_is_found_by_reconciliation() {
    let app = builder(Backend::Sqlite)
        .set("order.pay.reconcile_after_s", 0)
        .set("order.pay.reconcile_interval_ms", 50)
        .spawn()
        .await;
    let (token, order_id, _) = pending_order(&app, "o_pay_lost", 300).await;
    pay_params(&app, &token, order_id).await;
    sandbox(&app, "/__sandbox/pay/faults", json!({"lost": true})).await;
    sandbox_pays(&app, order_id, Value::Null).await;
    eventually("reconciliation pays it", || async {
        status_of(&app, order_id).await == "paid"
    })
    .await;
    let delivered: Value = app
        .client
        .get(app.url("/__sandbox/pay/notifications"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        delivered["deliveries"][0]["status"].is_null(),
        "the notification was lost: {delivered}"
    );
    assert_eq!(topics(&app, "order.paid").await.len(), 1);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_expired_order_has_its_prepay_closed_unless_it_was_paid() {
    let app = builder(Backend::Sqlite)
        .set("order.unpaid_timeout_s", 1)
        .set("order.expiry_interval_ms", 50)
        .set("order.pay.reconcile_after_s", 3_600)
        .spawn()
        .await;
    let (token, unpaid, item) = pending_order(&app, "o_pay_expiry", 200).await;
    let (status, _) = pay_params(&app, &token, unpaid).await;
    assert_eq!(status, 200);
    let (_, created, _) = place(&app, &token, key(), json!([{"product_id": item, "qty": 1}])).await;
    let paid_unnotified = created["order_id"].as_i64().unwrap();
    pay_params(&app, &token, paid_unnotified).await;
    sandbox(&app, "/__sandbox/pay/faults", json!({"lost": true})).await;
    sandbox_pays(&app, paid_unnotified, Value::Null).await;

    eventually("the unpaid order is cancelled", || async {
        status_of(&app, unpaid).await == "cancelled"
    })
    .await;
    assert_eq!(
        trade(&app, unpaid).await["trade_state"],
        "CLOSED",
        "closed before cancelling"
    );
    let (status, _) = pay_params(&app, &token, unpaid).await;
    assert_eq!(status, 409);
    eventually("the paid one is settled, not cancelled", || async {
        status_of(&app, paid_unnotified).await == "paid"
    })
    .await;
    assert_eq!(
        stock(&app, item).await,
        9,
        "the cancelled unit is back, the paid one not"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn cancelling_closes_the_prepay_or_finds_the_payment() {
    let app = builder(Backend::Sqlite).spawn().await;
    let (token, order_id, _) = pending_order(&app, "o_pay_cancel", 400).await;
    pay_params(&app, &token, order_id).await;
    assert_eq!(cancel(&app, &token, order_id).await, 200);
    assert_eq!(trade(&app, order_id).await["trade_state"], "CLOSED");

    // Paid in the sandbox, the notification held back: the cancellation finds it.
    let (token, order_id, _) = pending_order(&app, "o_pay_cancel2", 400).await;
    pay_params(&app, &token, order_id).await;
    sandbox(&app, "/__sandbox/pay/faults", json!({"hold": true})).await;
    sandbox_pays(&app, order_id, Value::Null).await;
    assert_eq!(cancel(&app, &token, order_id).await, 409);
    assert_eq!(status_of(&app, order_id).await, "paid");
    // The held notification, arriving late, changes nothing.
    sandbox(&app, "/__sandbox/pay/release", json!({})).await;
    eventually("the late notification is answered", || async {
        let delivered: Value = app
            .client
            .get(app.url("/__sandbox/pay/notifications"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        delivered["deliveries"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["status"] == 204))
    })
    .await;
    assert_eq!(topics(&app, "order.paid").await.len(), 1);
    assert!(topics(&app, "payment.anomaly").await.is_empty());
    app.stop().await.unwrap();
}

fn with_admin(builder: TestAppBuilder) -> TestAppBuilder {
    builder.set("auth.admin_tokens.ops", ADMIN)
}

async fn refund(app: &TestApp, order_id: i64, token: Option<&str>) -> (u16, Value) {
    let mut request = app
        .client
        .post(app.url(&format!("/api/admin/orders/{order_id}/refund")))
        .json(&json!({"reason": "out of stock"}));
    if let Some(token) = token {
        request = request.header("X-Admin-Token", token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn refunds(backend: Backend, restock: bool) {
    let app = with_admin(builder(backend))
        .set("order.pay.restock_on_refund", restock)
        .spawn()
        .await;
    let (token, order_id, item) = pending_order(&app, "o_pay_refund", 650).await;
    let (status, body) = refund(&app, order_id, Some(ADMIN)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("order_not_paid"))
    );
    pay(&app, &token, order_id).await;
    let (status, _) = refund(&app, order_id, None).await;
    assert_eq!(status, 401, "admins only");
    let (status, _) = refund(&app, order_id, Some("not-the-token")).await;
    assert_eq!(status, 401);

    let (status, body) = refund(&app, order_id, Some(ADMIN)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["amount_fen"].as_i64()),
        (Some("PROCESSING"), Some(650))
    );
    eventually("refunded", || async {
        status_of(&app, order_id).await == "refunded"
    })
    .await;
    let (_, view) = get(&app, &format!("/api/orders/{order_id}"), Some(&token)).await;
    assert_eq!(view["status"], "refunded");
    assert_eq!(stock(&app, item).await, if restock { 10 } else { 9 });
    let requested = topics(&app, "order.refund_requested").await;
    assert!(requested[0].contains("\"admin\":\"ops\""), "{requested:?}");
    let refunded = topics(&app, "order.refunded").await;
    assert!(
        refunded[0].contains(&format!("\"restocked\":{restock}")),
        "{refunded:?}"
    );

    let (status, body) = refund(&app, order_id, Some(ADMIN)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("already_refunded"))
    );
    assert_eq!(topics(&app, "order.refund_requested").await.len(), 1);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_refund_leaves_stock_alone_by_default_on_sqlite() {
    refunds(Backend::Sqlite, false).await;
}

#[tokio::test]
async fn a_refund_restocks_when_configured_on_postgres() {
    refunds(Backend::Postgres, true).await;
}

#[tokio::test]
async fn a_refund_on_mariadb() {
    refunds(Backend::Mysql, false).await;
}

#[tokio::test]
async fn without_a_merchant_orders_cannot_be_paid() {
    let app = TestApp::builder().database(Backend::Sqlite).spawn().await;
    let (token, order_id, _) = pending_order(&app, "o_pay_none", 100).await;
    let (status, body) = pay_params(&app, &token, order_id).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (503, Some("pay_not_configured"))
    );
    app.stop().await.unwrap();
}
