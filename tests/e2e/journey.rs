//! The shop end to end: wx.login → login → phone → browse → subscribe → order →
//! WeChat Pay (parameters, the sandbox pays, signed notification) → paid → subscribe
//! message at (sandbox) WeChat → refund → audit trail; and the payment faults a
//! real WeChat Pay has (lost and duplicated notifications).
use serde_json::{Value, json};
use weapp::db::Backend;
use weapp::testing::{SANDBOX_APPID, TestApp, TestAppBuilder};

use crate::support::{eventually, json_of};

const ADMIN: &str = "journey-admin-token-0123456789";
const MCHID: &str = "1900000109";
const PUSH_TOKEN: &str = "journeytoken";
const PUSH_AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const PAID_TITLE: &str = "订单支付成功通知";

fn shop(builder: TestAppBuilder) -> TestAppBuilder {
    builder
        .set("auth.admin_tokens.ops", ADMIN)
        .set("pay.merchants.shop.mchid", MCHID)
        .set("order.pay.reconcile_after_s", 0)
        .set("order.pay.reconcile_interval_ms", 100)
        .set("order.outbox.poll_interval_ms", 20)
        .set("message.poll_interval_ms", 20)
        .set("wechat.push.token", PUSH_TOKEN)
        .set("wechat.push.encoding_aes_key", PUSH_AES_KEY)
        .set("shop.seed_demo_products", true)
        .set("shop.paid_template_title", PAID_TITLE)
}

async fn journey(app: TestApp) {
    let client = &app.client;
    let openid = "o_journey_shopper";

    // An operator adds the paid-notification template from WeChat's library.
    let added = client
        .post(app.url("/api/admin/message-templates"))
        .header("X-Admin-Token", ADMIN)
        .json(&json!({"tid": "1002", "kid_list": [1, 2, 3, 4], "scene_desc": "paid"}))
        .send()
        .await
        .unwrap();
    let template = json_of(added, 201).await["template_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // wx.login, login, getPhoneNumber.
    app.sandbox_post(
        "/__sandbox/login",
        json!({"openid": openid, "phone": "13912345678"}),
    )
    .await;
    let (token, user_id) = app.login(openid).await;
    let phone_code = app
        .sandbox_post("/__sandbox/phone-code", json!({"openid": openid}))
        .await;
    let me = client
        .post(app.url("/api/auth/phone"))
        .bearer_auth(&token)
        .json(&json!({"code": phone_code["code"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(me, 200).await["phone"], "139****5678");

    // Browse the seeded catalogue.
    let products = json_of(
        client.get(app.url("/api/products")).send().await.unwrap(),
        200,
    )
    .await;
    let product = &products["items"][0];
    let (product_id, price) = (
        product["id"].as_i64().unwrap(),
        product["price_fen"].as_i64().unwrap(),
    );

    // The buyer accepts the subscription prompt: WeChat pushes the choice.
    app.sandbox_post(
        "/__sandbox/subscriptions",
        json!({"openid": openid, "template_id": template, "count": 1}),
    )
    .await;
    let (path, body) = crate::push::subscription_accepted(
        (PUSH_TOKEN, PUSH_AES_KEY, SANDBOX_APPID),
        openid,
        &template,
    );
    let pushed = client.post(app.url(&path)).body(body).send().await.unwrap();
    assert_eq!(pushed.status(), 200);

    // Order two units.
    let placed = client
        .post(app.url("/api/orders"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "journey-order-1")
        .json(&json!({"items": [{"product_id": product_id, "qty": 2}]}))
        .send()
        .await
        .unwrap();
    let order = json_of(placed, 201).await;
    let order_id = order["order_id"].as_i64().unwrap();
    assert_eq!(order["total_fen"], 2 * price);

    // The mini program asks for wx.requestPayment's parameters; the buyer pays in
    // (sandbox) WeChat, which notifies the app, signed and encrypted.
    let params = client
        .post(app.url(&format!("/api/orders/{order_id}/pay")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let params = json_of(params, 200).await;
    assert!(
        params["package"]
            .as_str()
            .unwrap()
            .starts_with("prepay_id=wx"),
        "{params}"
    );
    assert_eq!(params["signType"], "RSA");
    sandbox_pays(&app, order_id).await;
    eventually("the notification is applied", async || {
        order_status(&app, &token, order_id).await == "paid"
    })
    .await;
    let view = client
        .get(app.url(&format!("/api/orders/{order_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(view, 200).await["status"], "paid");

    // The subscribe message reaches (sandbox) WeChat, addressed to the buyer.
    let mut sent = Value::Null;
    eventually("the paid message is sent", async || {
        let answer: Value = client
            .get(app.url("/__sandbox/messages"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        sent = answer["messages"][0].clone();
        !sent.is_null()
    })
    .await;
    assert_eq!(sent["touser"], openid);
    assert_eq!(sent["template_id"], template.as_str());
    assert_eq!(
        sent["data"]["character_string1"]["value"],
        order_id.to_string()
    );
    assert_eq!(
        sent["data"]["amount2"]["value"],
        format!("{}.{:02}元", 2 * price / 100, 2 * price % 100)
    );

    // An operator refunds it; WeChat Pay confirms with a refund notification.
    let refund = client
        .post(app.url(&format!("/api/admin/orders/{order_id}/refund")))
        .header("X-Admin-Token", ADMIN)
        .json(&json!({"reason": "the buyer changed their mind"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(refund, 202).await["status"], "PROCESSING");
    eventually("the refund is confirmed", async || {
        order_status(&app, &token, order_id).await == "refunded"
    })
    .await;

    // The audit trail holds every step and verifies.
    let about_user = format!("user:{user_id}");
    let order_target = format!("order:{order_id}");
    let db = app.ctx.db();
    eventually("the audit trail is complete", async || {
        let mut actions: Vec<String> = weapp_audit::verify::rows_about(db, &about_user)
            .await
            .unwrap()
            .into_iter()
            .chain(
                weapp_audit::verify::rows_about(db, &order_target)
                    .await
                    .unwrap(),
            )
            .filter_map(|e| e["action"].as_str().map(str::to_owned))
            .collect();
        actions.sort();
        actions.dedup();
        [
            "auth.login",
            "auth.phone",
            "order.created",
            "order.paid",
            "order.refund_requested",
            "order.refunded",
        ]
        .iter()
        .all(|a| actions.iter().any(|x| x == a))
    })
    .await;
    weapp_audit::flush(&app.ctx).await.unwrap();
    let report = weapp_audit::verify::verify(db).await.unwrap();
    assert_eq!(report.tampering, None);
    assert!(report.rows >= 6, "{report:?}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_shop_journey_on_the_embedded_default() {
    journey(shop(TestApp::builder()).spawn().await).await;
}

#[tokio::test]
async fn the_shop_journey_on_postgres_and_redis() {
    journey(
        shop(TestApp::builder().database(Backend::Postgres).redis())
            .spawn()
            .await,
    )
    .await;
}

/// The sandbox's buyer pays the order's prepay.
async fn sandbox_pays(app: &TestApp, order_id: i64) {
    app.sandbox_post(
        "/__sandbox/pay/pay",
        json!({"out_trade_no": format!("wa{order_id:010}")}),
    )
    .await;
}

async fn order_status(app: &TestApp, token: &str, order_id: i64) -> String {
    let view: Value = app
        .client
        .get(app.url(&format!("/api/orders/{order_id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    view["status"].as_str().unwrap_or_default().to_owned()
}

/// A lost notification is found by reconciliation; twenty copies of one pay once.
async fn payment_faults(app: TestApp) {
    let client = &app.client;
    let (token, _) = app.login("o_journey_faults").await;
    let products = json_of(
        client.get(app.url("/api/products")).send().await.unwrap(),
        200,
    )
    .await;
    let product_id = products["items"][0]["id"].as_i64().unwrap();
    let mut orders = Vec::new();
    for key in ["faults-1", "faults-2"] {
        let placed = client
            .post(app.url("/api/orders"))
            .bearer_auth(&token)
            .header("Idempotency-Key", key)
            .json(&json!({"items": [{"product_id": product_id, "qty": 1}]}))
            .send()
            .await
            .unwrap();
        let order_id = json_of(placed, 201).await["order_id"].as_i64().unwrap();
        let params = client
            .post(app.url(&format!("/api/orders/{order_id}/pay")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        json_of(params, 200).await;
        orders.push(order_id);
    }
    app.sandbox_post("/__sandbox/pay/faults", json!({"lost": true}))
        .await;
    sandbox_pays(&app, orders[0]).await;
    eventually(
        "reconciliation pays the order whose notification was lost",
        async || order_status(&app, &token, orders[0]).await == "paid",
    )
    .await;

    app.sandbox_post("/__sandbox/pay/faults", json!({"copies": 20}))
        .await;
    sandbox_pays(&app, orders[1]).await;
    eventually("all twenty copies are answered", async || {
        let answer: Value = client
            .get(app.url("/__sandbox/pay/notifications"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let deliveries = answer["deliveries"].as_array().cloned().unwrap_or_default();
        deliveries.iter().filter(|d| d["status"] == 204).count() == 20
    })
    .await;
    assert_eq!(order_status(&app, &token, orders[1]).await, "paid");
    let paid_events = app
        .count("SELECT COUNT(*) AS n FROM order_outbox WHERE topic = 'order.paid'")
        .await;
    assert_eq!(paid_events, 2, "one transition per order");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn payment_faults_on_the_embedded_default() {
    payment_faults(shop(TestApp::builder()).spawn().await).await;
}

#[tokio::test]
async fn payment_faults_on_postgres_and_redis() {
    payment_faults(
        shop(TestApp::builder().database(Backend::Postgres).redis())
            .spawn()
            .await,
    )
    .await;
}
