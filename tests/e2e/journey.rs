//! The shop end to end: wx.login → login → phone → browse → subscribe → order → pay
//! notification → paid → subscribe message at (sandbox) WeChat → audit trail.

use std::time::Duration;

use serde_json::{Value, json};
use weapp::db::Backend;
use weapp::testing::{SANDBOX_APPID, TestApp, TestAppBuilder};
use weapp::wechat::PushCrypto;

const ADMIN: &str = "journey-admin-token-0123456789";
const PAY_SECRET: &str = "journey-payment-secret";
const PUSH_TOKEN: &str = "journeytoken";
const PUSH_AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const PAID_TITLE: &str = "订单支付成功通知";

fn shop(builder: TestAppBuilder) -> TestAppBuilder {
    builder
        .set("auth.admin_tokens.ops", ADMIN)
        .set("order.payment.secret", PAY_SECRET)
        .set("order.outbox.poll_interval_ms", 20)
        .set("message.poll_interval_ms", 20)
        .set("wechat.push.token", PUSH_TOKEN)
        .set("wechat.push.encoding_aes_key", PUSH_AES_KEY)
        .set("shop.seed_demo_products", true)
        .set("shop.paid_template_title", PAID_TITLE)
}

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "{body}");
    body
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..250 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
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
    let crypto = PushCrypto::new(PUSH_TOKEN, PUSH_AES_KEY, SANDBOX_APPID).unwrap();
    let push = json!({
        "ToUserName": "gh_shop", "FromUserName": openid, "CreateTime": 1764000000,
        "MsgType": "event", "Event": "subscribe_msg_popup_event",
        "List": [{"TemplateId": template, "SubscribeStatusString": "accept", "PopupScene": "0"}],
    });
    let encrypted = crypto.encrypt(&push.to_string());
    let timestamp = chrono::Utc::now().timestamp();
    let signature = crypto.sign(&timestamp.to_string(), "nonce", &encrypted);
    let pushed = client
        .post(app.url(&format!(
            "/wechat/push?msg_signature={signature}&timestamp={timestamp}&nonce=nonce&encrypt_type=aes"
        )))
        .body(json!({"ToUserName": "gh_shop", "Encrypt": encrypted}).to_string())
        .send()
        .await
        .unwrap();
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

    // The payment provider notifies.
    let body =
        json!({"order_id": order_id, "transaction_id": "4200000123", "amount_fen": 2 * price})
            .to_string();
    let timestamp = chrono::Utc::now().timestamp();
    let paid = client
        .post(app.url("/api/pay/notify"))
        .header("X-Pay-Timestamp", timestamp.to_string())
        .header(
            "X-Pay-Signature",
            weapp_order::payment::sign(PAY_SECRET, timestamp, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(paid, 200).await["code"], "SUCCESS");
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
        ["auth.login", "auth.phone", "order.created", "order.paid"]
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
