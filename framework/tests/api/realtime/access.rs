//! Who gets a socket, and when it is taken away.

use std::time::Duration;

use serde_json::json;

use super::{
    app, close_code, connect, join, login_with_refresh, next_json, post_authorized, refusal,
    request, try_connect,
};

#[tokio::test]
async fn upgrades_are_refused_without_a_live_token_and_with_a_stable_code() {
    let app = app().spawn().await;
    let (token, _) = app.login("ws-refused").await;

    let refused = refusal(&app, &[]).await;
    assert_eq!(refused, (401, "missing_token".to_owned()));

    let refused = refusal(&app, &[("authorization", "Bearer not.a.token")]).await;
    assert_eq!(refused, (401, "invalid_token".to_owned()));

    // A token in the URL is not read: URLs end up in access logs.
    let url = format!("{}?access_token={token}", super::ws_url(&app));
    let refused = tokio_tungstenite::connect_async(url).await;
    assert!(
        matches!(refused, Err(tokio_tungstenite::tungstenite::Error::Http(ref r)) if r.status() == 401),
        "a token in the query string is ignored"
    );

    // A session that ended: the token still verifies, the session does not.
    assert_eq!(post_authorized(&app, "/api/auth/logout", &token).await, 204);
    let bearer = format!("Bearer {token}");
    let refused = refusal(&app, &[("authorization", &bearer)]).await;
    assert_eq!(refused, (401, "revoked_session".to_owned()));

    // A plain GET with a good token is not an upgrade.
    let (token, _) = app.login("ws-plain-get").await;
    let plain = app
        .client
        .get(app.url("/ws"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 400);
    let body: serde_json::Value = plain.json().await.unwrap();
    assert_eq!(body["code"], "not_websocket");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_token_may_come_as_a_subprotocol_and_the_server_selects_weapp_v1() {
    let app = app().spawn().await;
    let (token, user_id) = app.login("ws-subprotocol").await;
    let offered = format!("weapp.v1, bearer.{token}");
    let (mut ws, selected) = try_connect(&app, &[("sec-websocket-protocol", &offered)])
        .await
        .expect("accepted");
    assert_eq!(
        selected.as_deref(),
        Some("weapp.v1"),
        "the token is never echoed"
    );
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["user_id"], user_id);
    assert!(welcome["expires_in"].as_u64().unwrap() > 3600);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn logout_closes_that_sessions_sockets_and_logout_all_closes_every_one() {
    let app = app().spawn().await;
    let (first, _, _) = login_with_refresh(&app, "ws-logout").await;
    let (second, _, _) = login_with_refresh(&app, "ws-logout").await;
    let mut on_first = connect(&app, &first).await;
    let mut on_second = connect(&app, &second).await;
    let mut also_second = connect(&app, &second).await;

    assert_eq!(post_authorized(&app, "/api/auth/logout", &first).await, 204);
    assert_eq!(
        close_code(&mut on_first, Duration::from_secs(5)).await,
        Some(4001)
    );
    let pong = request(&mut on_second, json!({"type": "ping", "id": 1})).await;
    assert_eq!(
        pong,
        json!({"type": "pong", "id": 1}),
        "the other session lives on"
    );

    assert_eq!(
        post_authorized(&app, "/api/auth/logout-all", &second).await,
        204
    );
    assert_eq!(
        close_code(&mut on_second, Duration::from_secs(5)).await,
        Some(4001)
    );
    assert_eq!(
        close_code(&mut also_second, Duration::from_secs(5)).await,
        Some(4001)
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn erasing_the_account_closes_its_sockets() {
    let app = app().spawn().await;
    let (token, _) = app.login("ws-erase").await;
    let mut ws = connect(&app, &token).await;
    let erased = app
        .client
        .delete(app.url("/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(erased.status().is_success(), "{}", erased.status());
    assert_eq!(
        close_code(&mut ws, Duration::from_secs(5)).await,
        Some(4001)
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_session_ended_behind_the_relays_back_is_noticed_by_the_periodic_check() {
    let app = app()
        .set("realtime.session_check_interval_ms", 200)
        .spawn()
        .await;
    let (token, _) = app.login("ws-expired-session").await;
    let mut ws = connect(&app, &token).await;
    // What a refresh-token reuse or the session's TTL does: the session is gone,
    // and nobody announced it.
    let auth = app.ctx.get::<weapp::auth::Auth>().unwrap();
    let sid = auth.jwt.verify(&token).unwrap().sid;
    let deleted = app.ctx.kv().delete(&format!("auth:session:{sid}")).await;
    assert!(deleted.unwrap(), "the session was stored under its id");
    assert_eq!(
        close_code(&mut ws, Duration::from_secs(5)).await,
        Some(4001)
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_socket_closes_when_its_token_expires_unless_an_auth_frame_renews_it() {
    let app = app()
        .set("auth.jwt.ttl_s", 4)
        .set("auth.jwt.leeway_s", 0)
        .spawn()
        .await;
    let (access, refresh, _) = login_with_refresh(&app, "ws-expiry").await;
    let mut renewed = connect(&app, &access).await;
    let mut lapsing = connect(&app, &access).await;
    // Expiry is in whole seconds: a token refreshed 2 s later outlives the first by
    // at least a second, time for the renewed socket to answer after the other closed.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let body: serde_json::Value = app
        .client
        .post(app.url("/api/auth/refresh"))
        .json(&json!({ "refresh_token": refresh }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fresh = body["access_token"].as_str().expect("refreshed").to_owned();
    let bad = request(
        &mut renewed,
        json!({"type": "auth", "token": "x.y.z", "id": "a"}),
    )
    .await;
    assert_eq!(bad["code"], "invalid_token", "{bad}");
    let ack = request(
        &mut renewed,
        json!({"type": "auth", "token": fresh, "id": "b"}),
    )
    .await;
    assert_eq!(ack, json!({"type": "ack", "id": "b"}));

    assert_eq!(
        close_code(&mut lapsing, Duration::from_secs(6)).await,
        Some(4002)
    );
    // Past the first token's expiry, the renewed socket still answers.
    let pong = request(&mut renewed, json!({"type": "ping"})).await;
    assert_eq!(pong, json!({"type": "pong"}));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn another_users_token_cannot_take_over_a_socket() {
    let app = app().spawn().await;
    let (mine, _) = app.login("ws-owner").await;
    let (theirs, _) = app.login("ws-other").await;
    let mut ws = connect(&app, &mine).await;
    let answer = request(&mut ws, json!({"type": "auth", "token": theirs, "id": 1})).await;
    assert_eq!(answer["code"], "token_mismatch", "{answer}");
    assert_eq!(answer["id"], 1);
    join(&mut ws, "live:owner").await;
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_expired_token_is_refused_at_the_upgrade() {
    let app = app()
        .set("auth.jwt.ttl_s", 1)
        .set("auth.jwt.leeway_s", 0)
        .spawn()
        .await;
    let (token, _) = app.login("ws-expired").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let bearer = format!("Bearer {token}");
    let refused = refusal(&app, &[("authorization", &bearer)]).await;
    assert_eq!(refused, (401, "expired_token".to_owned()));
    app.stop().await.unwrap();
}
