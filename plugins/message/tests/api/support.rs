//! Helpers shared by the message tests.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use weapp::db::Backend;
use weapp::testing::{TestApp, TestAppBuilder};
use weapp_message::{Messages, SendRequest};

/// The admin token of these tests.
pub(crate) const ADMIN: &str = "test-admin-token-0123456789";
/// Push settings of these tests (a 43-character EncodingAESKey).
pub(crate) const PUSH_TOKEN: &str = "pushtoken";
pub(crate) const PUSH_AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

/// An app with the message plugin, an admin token and push settings; the worker
/// polls quickly and WeChat calls are not retried by the client (the queue retries).
pub(crate) fn builder(backend: Backend) -> TestAppBuilder {
    TestApp::builder()
        .database(backend)
        .set("auth.admin_tokens.ops", ADMIN)
        .set("wechat.push.token", PUSH_TOKEN)
        .set("wechat.push.encoding_aes_key", PUSH_AES_KEY)
        .set("wechat.retry.max_attempts", 1)
        .set("message.poll_interval_ms", 20)
        .set("message.base_backoff_ms", 10)
}

/// The plugin's service.
pub(crate) fn messages(app: &TestApp) -> Arc<Messages> {
    app.ctx
        .get::<Messages>()
        .expect("the message plugin started")
}

/// Adds library template 1001 (thing1, character_string2, time3, amount4) through
/// the admin route; returns its id.
pub(crate) async fn add_template(app: &TestApp) -> String {
    let response = app
        .client
        .post(app.url("/api/admin/message-templates"))
        .header("X-Admin-Token", ADMIN)
        .json(&json!({"tid": "1001", "kid_list": [1, 2, 3, 4], "scene_desc": "shipping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["template_id"].as_str().unwrap().to_owned()
}

/// Valid data for template 1001.
pub(crate) fn shipping_data() -> serde_json::Map<String, Value> {
    json!({
        "thing1": "茉莉绿茶",
        "character_string2": "SF1234567890",
        "time3": "2026年11月25日 12:00",
        "amount4": "48.00元",
    })
    .as_object()
    .cloned()
    .unwrap()
}

/// A send request to `user_id` with template `template`.
pub(crate) fn request(user_id: i64, template: &str) -> SendRequest {
    SendRequest {
        touser: user_id,
        template_id: template.to_owned(),
        page: Some("pages/order/detail?id=1".into()),
        data: shipping_data(),
        ..Default::default()
    }
}

/// Grants quota both at WeChat (the sandbox) and in the plugin, as a user accepting
/// the prompt would.
pub(crate) async fn subscribe(
    app: &TestApp,
    openid: &str,
    user_id: i64,
    template: &str,
    count: i32,
) {
    app.sandbox_post(
        "/__sandbox/subscriptions",
        json!({"openid": openid, "template_id": template, "count": count}),
    )
    .await;
    messages(app)
        .grant_quota(user_id, template, count)
        .await
        .unwrap();
}

/// Messages the sandbox accepted.
pub(crate) async fn sandbox_messages(app: &TestApp) -> Vec<Value> {
    let answer: Value = app
        .client
        .get(app.url("/__sandbox/messages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["messages"].as_array().cloned().unwrap_or_default()
}

/// Polls until the queued message reaches a final state; returns it.
pub(crate) async fn settled(app: &TestApp, id: i64) -> weapp_message::QueuedMessage {
    for _ in 0..500 {
        let message = messages(app).queued(id).await.unwrap().expect("queued");
        if message.state == "sent" || message.state == "failed" {
            return message;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("message {id} never settled");
}
