//! `GET /api/me` answers reused for `auth.me_cache_ms` on one instance: a change
//! made outside the app shows once the answer is that old, one made through the app
//! at once (on another instance too, with Redis), and the session is checked on
//! every call all the same.

use std::time::Duration;

use serde_json::{Value, json};
use weapp::testing::TestApp;

async fn me(app: &TestApp, token: &str) -> (u16, Value) {
    let response = crate::auth::me(app, token).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

/// What another instance would do: change the row behind this one's back.
async fn rename_elsewhere(app: &TestApp, user_id: i64, nickname: &str) {
    let sql = format!("UPDATE users SET nickname = '{nickname}' WHERE id = {user_id}");
    assert_eq!(app.execute(&sql).await, 1);
}

#[tokio::test]
async fn answers_are_reused_briefly_but_changes_made_here_and_logouts_show_at_once() {
    let app = TestApp::builder()
        .set("auth.me_cache_ms", 500)
        .spawn()
        .await;
    let (token, user_id) = app
        .login_with(json!({"openid": "o_me_cache", "phone": "13812348000"}))
        .await;
    let (status, first) = me(&app, &token).await;
    assert_eq!((status, &first["nickname"]), (200, &Value::Null), "{first}");

    rename_elsewhere(&app, user_id, "elsewhere").await;
    let (_, cached) = me(&app, &token).await;
    assert_eq!(cached, first, "the answer is reused");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, fresh) = me(&app, &token).await;
    assert_eq!(fresh["nickname"], "elsewhere", "{fresh}");

    // A phone number shared through this instance shows in the very next answer.
    share_phone(&app, &token, "o_me_cache").await;
    let (_, with_phone) = me(&app, &token).await;
    assert!(with_phone["phone"].is_string(), "{with_phone}");

    // Logged out: refused at once, cached answer or not.
    let logout = app
        .client
        .post(app.url("/api/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(logout.status().is_success());
    let (status, refused) = me(&app, &token).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (401, Some("revoked_session"))
    );
    app.stop().await.unwrap();
}

async fn share_phone(app: &TestApp, token: &str, openid: &str) {
    let phone_code = app
        .sandbox_post("/__sandbox/phone-code", json!({"openid": openid}))
        .await;
    let shared = app
        .client
        .post(app.url("/api/auth/phone"))
        .bearer_auth(token)
        .json(&json!({"code": phone_code["code"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(shared.status(), 200);
}

#[tokio::test]
async fn a_change_made_on_one_instance_shows_at_once_on_another() {
    // A minute: only the broadcast can explain a fresh answer within the test.
    let (first, second) = crate::two_instances("auth.me_cache_ms", 60_000).await;
    let (token, user_id) = first
        .login_with(json!({"openid": "o_me_two", "phone": "13812348001"}))
        .await;
    let (status, before) = me(&second, &token).await;
    assert_eq!((status, &before["phone"]), (200, &Value::Null), "{before}");
    // The second instance does cache: a change outside the app does not show.
    rename_elsewhere(&first, user_id, "outside").await;
    let (_, cached) = me(&second, &token).await;
    assert_eq!(cached, before);

    share_phone(&first, &token, "o_me_two").await;
    let mut seen = Value::Null;
    for _ in 0..50 {
        seen = me(&second, &token).await.1;
        if seen["phone"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen["phone"].is_string(), "never shown there: {seen}");
    assert_eq!(seen["nickname"], "outside", "read afresh: {seen}");
    second.stop().await.unwrap();
    first.stop().await.unwrap();
}

#[tokio::test]
async fn with_the_cache_off_every_answer_is_read_afresh() {
    let app = TestApp::builder().set("auth.me_cache_ms", 0).spawn().await;
    let (token, user_id) = app.login("o_me_uncached").await;
    let (_, first) = me(&app, &token).await;
    assert_eq!(first["nickname"], Value::Null);
    rename_elsewhere(&app, user_id, "at-once").await;
    let (_, fresh) = me(&app, &token).await;
    assert_eq!(fresh["nickname"], "at-once", "{fresh}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_cache_with_room_for_nobody_is_refused_at_start() {
    let app = TestApp::builder().set("auth.me_cache_entries", 0);
    crate::refused_at_start(app, "auth.me_cache_entries").await;
}
