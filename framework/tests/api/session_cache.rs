//! Sessions trusted for `auth.session_cache_ms` once checked (off by default): a
//! session ended through the app is refused at once, on this instance and, with
//! Redis, on the others; one ended behind the app's back only after the ttl.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use weapp::auth::{Claims, TokenResponse};
use weapp::testing::TestApp;

use crate::auth::{post, refresh};

/// `GET /api/me`: the status and the error code, if any.
async fn me(app: &TestApp, token: &str) -> (u16, Option<String>) {
    let response = crate::auth::me(app, token).await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["code"].as_str().map(str::to_owned))
}

fn revoked() -> (u16, Option<String>) {
    (401, Some("revoked_session".to_owned()))
}

/// Logs `openid` in: both tokens.
async fn login(app: &TestApp, openid: &str) -> TokenResponse {
    crate::auth::login(app, openid, None).await.0
}

/// Deletes the token's session from the store, as an operator or a lost Redis
/// would: the app is not told.
async fn end_behind_the_apps_back(app: &TestApp, token: &str) {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let key = format!("auth:session:{}", claims.sid);
    assert!(app.ctx.kv().delete(&key).await.unwrap(), "{key} was stored");
}

/// Logs out (`path`: logout or logout-all) with `token`.
async fn end_through_the_app(app: &TestApp, path: &str, token: &str) {
    let ended = post(app, path, Some(token), json!({})).await;
    assert!(ended.status().is_success(), "{path}: {}", ended.status());
}

#[tokio::test]
async fn off_by_default_every_request_checks_the_session() {
    let app = TestApp::builder().spawn().await;
    let tokens = login(&app, "o_sessions_unchecked").await;
    assert_eq!(me(&app, &tokens.access_token).await.0, 200);
    end_behind_the_apps_back(&app, &tokens.access_token).await;
    assert_eq!(me(&app, &tokens.access_token).await, revoked());
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_checked_session_is_trusted_but_every_end_through_the_app_counts_at_once() {
    let app = TestApp::builder()
        .set("auth.session_cache_ms", 60_000)
        .spawn()
        .await;
    // Trusted: only the record explains an answer once the session is gone.
    let trusted = login(&app, "o_sessions_cached").await.access_token;
    assert_eq!(me(&app, &trusted).await.0, 200);
    end_behind_the_apps_back(&app, &trusted).await;
    assert_eq!(me(&app, &trusted).await.0, 200, "the check is reused");

    // Logout.
    let tokens = login(&app, "o_sessions_cached").await;
    assert_eq!(me(&app, &tokens.access_token).await.0, 200);
    end_through_the_app(&app, "/api/auth/logout", &tokens.access_token).await;
    assert_eq!(me(&app, &tokens.access_token).await, revoked());

    // A refresh token used twice ends its session.
    let tokens = login(&app, "o_sessions_cached").await;
    let rotated: TokenResponse = refresh(&app, &tokens.refresh_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me(&app, &rotated.access_token).await.0, 200);
    let reused = refresh(&app, &tokens.refresh_token).await;
    assert_eq!(reused.status(), 401);
    assert_eq!(me(&app, &rotated.access_token).await, revoked());

    // Logout-all ends the other sessions too.
    let one = login(&app, "o_sessions_cached").await.access_token;
    let other = login(&app, "o_sessions_cached").await.access_token;
    assert_eq!(me(&app, &other).await.0, 200);
    end_through_the_app(&app, "/api/auth/logout-all", &one).await;
    assert_eq!(me(&app, &other).await, revoked());
    app.stop().await.unwrap();
}

/// Asks `app` until it refuses `token`, for at most five seconds.
async fn refused_soon(app: &TestApp, token: &str) -> (u16, Option<String>) {
    let mut answer = me(app, token).await;
    for _ in 0..50 {
        if answer.0 != 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = me(app, token).await;
    }
    answer
}

#[tokio::test]
async fn a_session_ended_on_one_instance_is_refused_at_once_on_another() {
    // A minute: only the broadcast can explain a refusal within the test.
    let (first, second) = crate::two_instances("auth.session_cache_ms", 60_000).await;
    let trusted = login(&first, "o_sessions_two").await.access_token;
    assert_eq!(me(&second, &trusted).await.0, 200);
    end_behind_the_apps_back(&first, &trusted).await;
    assert_eq!(
        me(&second, &trusted).await.0,
        200,
        "the second one trusts it"
    );

    let tokens = login(&first, "o_sessions_two").await;
    assert_eq!(me(&second, &tokens.access_token).await.0, 200);
    end_through_the_app(&first, "/api/auth/logout", &tokens.access_token).await;
    assert_eq!(refused_soon(&second, &tokens.access_token).await, revoked());

    let one = login(&first, "o_sessions_two").await.access_token;
    let other = login(&first, "o_sessions_two").await.access_token;
    assert_eq!(me(&second, &other).await.0, 200);
    end_through_the_app(&first, "/api/auth/logout-all", &one).await;
    assert_eq!(refused_soon(&second, &other).await, revoked());
    second.stop().await.unwrap();
    first.stop().await.unwrap();
}

#[tokio::test]
async fn a_session_record_that_cannot_work_is_refused_at_start() {
    for (key, value, named) in [
        (
            "auth.session_cache_entries",
            0,
            "auth.session_cache_entries",
        ),
        ("auth.session_cache_ms", 60_001, "auth.session_cache_ms"),
    ] {
        let app = TestApp::builder()
            .set("auth.session_cache_ms", 1_000)
            .set(key, value);
        crate::refused_at_start(app, named).await;
    }
}
