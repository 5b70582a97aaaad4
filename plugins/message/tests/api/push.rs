//! The push endpoint: verified pushes reach plugin handlers on the event bus, and
//! subscription events feed the quotas.

use std::sync::{Arc, Mutex};

use serde_json::json;
use weapp::db::Backend;
use weapp::testing::TestApp;
use weapp::wechat::PushCrypto;

use crate::support::*;

/// POSTs `message` (JSON) encrypted and signed as WeChat does in safe mode.
async fn push(app: &TestApp, message: serde_json::Value) -> reqwest::Response {
    let crypto = PushCrypto::new(PUSH_TOKEN, PUSH_AES_KEY, weapp::testing::SANDBOX_APPID).unwrap();
    let encrypted = crypto.encrypt(&message.to_string());
    // Now, and a nonce of its own: pushes are taken once, within a time window.
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let signature = crypto.sign(&timestamp, &nonce, &encrypted);
    app.client
        .post(app.url(&format!(
            "{}?msg_signature={signature}&timestamp={timestamp}&nonce={nonce}&encrypt_type=aes",
            weapp_message::PUSH_PATH
        )))
        .header("Content-Type", "application/json")
        .body(json!({"ToUserName": "gh_test", "Encrypt": encrypted}).to_string())
        .send()
        .await
        .unwrap()
}

async fn subscription_pushes(backend: Backend) {
    let app = builder(backend).spawn().await;
    let template = add_template(&app).await;
    let (_, user_id) = app.login("o_pushed").await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    app.ctx
        .events()
        .subscribe("push-test", "wechat.push.*", move |_, event| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(event.topic.clone());
                Ok(())
            }
        });
    let popup = |status: &str| {
        json!({
            "ToUserName": "gh_test", "FromUserName": "o_pushed", "CreateTime": 1764000000,
            "MsgType": "event", "Event": "subscribe_msg_popup_event",
            "List": [{"TemplateId": template, "SubscribeStatusString": status, "PopupScene": "0"}],
        })
    };
    let response = push(&app, popup("accept")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "success");
    push(&app, popup("accept")).await;
    push(&app, popup("reject")).await; // a popup rejection grants nothing
    assert_eq!(messages(&app).quota(user_id, &template).await.unwrap(), 2);

    let change = json!({
        "ToUserName": "gh_test", "FromUserName": "o_pushed", "CreateTime": 1764000001,
        "MsgType": "event", "Event": "subscribe_msg_change_event",
        "List": {"TemplateId": template, "SubscribeStatusString": "reject"},
    });
    push(&app, change).await;
    assert_eq!(messages(&app).quota(user_id, &template).await.unwrap(), 0);
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        [
            "wechat.push.subscribe_msg_popup_event",
            "wechat.push.subscribe_msg_popup_event",
            "wechat.push.subscribe_msg_popup_event",
            "wechat.push.subscribe_msg_change_event"
        ]
    );

    // A forged push is refused and changes nothing.
    let forged = app
        .client
        .post(app.url(&format!(
            "{}?msg_signature=bad&timestamp=1&nonce=n",
            weapp_message::PUSH_PATH
        )))
        .body(json!({"ToUserName": "gh_test", "Encrypt": "AAAA"}).to_string())
        .send()
        .await
        .unwrap();
    assert!(forged.status().is_client_error(), "{}", forged.status());
    assert_eq!(messages(&app).quota(user_id, &template).await.unwrap(), 0);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn subscription_pushes_feed_quotas_on_sqlite() {
    subscription_pushes(Backend::Sqlite).await;
}

#[tokio::test]
async fn subscription_pushes_feed_quotas_on_postgres() {
    subscription_pushes(Backend::Postgres).await;
}

/// A push whose handler failed is answered with an error, and WeChat's retry of
/// that same push (same timestamp, nonce and signature) is taken, not refused as a
/// replay; a push that was handled is not taken twice.
#[tokio::test]
async fn wechat_retries_a_push_whose_handler_failed_and_only_that() {
    let app = builder(Backend::Sqlite).spawn().await;
    let failures = Arc::new(Mutex::new(1));
    let left = failures.clone();
    app.ctx
        .events()
        .subscribe("flaky", "wechat.push.*", move |_, _event| {
            let left = left.clone();
            async move {
                let mut left = left.lock().unwrap();
                if *left > 0 {
                    *left -= 1;
                    return Err(weapp::Error::internal("down for a moment"));
                }
                Ok(())
            }
        });
    let crypto = PushCrypto::new(PUSH_TOKEN, PUSH_AES_KEY, weapp::testing::SANDBOX_APPID).unwrap();
    let encrypted = crypto.encrypt(&json!({"MsgType": "event", "Event": "x"}).to_string());
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let signature = crypto.sign(&timestamp, "retried", &encrypted);
    let send = || {
        app.client
            .post(app.url(&format!(
                "{}?msg_signature={signature}&timestamp={timestamp}&nonce=retried&encrypt_type=aes",
                weapp_message::PUSH_PATH
            )))
            .body(json!({"ToUserName": "gh_test", "Encrypt": encrypted}).to_string())
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 503, "the handler failed");
    assert_eq!(
        send().await.unwrap().status(),
        200,
        "WeChat's retry is taken"
    );
    assert_eq!(
        send().await.unwrap().status(),
        401,
        "a handled push is not taken twice"
    );
    assert_eq!(*failures.lock().unwrap(), 0);
}
