//! Template administration and the checks before a send.

use serde_json::json;
use weapp::db::Backend;

use crate::support::*;

#[tokio::test]
async fn admin_routes_need_the_admin_token_not_a_user_token() {
    let app = builder(Backend::Sqlite).spawn().await;
    let (user_token, _) = app.login("o_not_admin").await;
    let list = |header: Option<(&'static str, String)>| {
        let mut request = app.client.get(app.url("/api/admin/message-templates"));
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(list(None).await, 401);
    assert_eq!(
        list(Some(("Authorization", format!("Bearer {user_token}")))).await,
        401
    );
    assert_eq!(list(Some(("X-Admin-Token", user_token.clone()))).await, 401);
    assert_eq!(list(Some(("X-Admin-Token", ADMIN.to_owned()))).await, 200);

    let id = add_template(&app).await;
    let listed: serde_json::Value = app
        .client
        .get(app.url("/api/admin/message-templates"))
        .header("X-Admin-Token", ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["templates"][0]["template_id"], id.as_str());
    assert_eq!(listed["templates"][0]["kind"], 2);

    let bad = app
        .client
        .post(app.url("/api/admin/message-templates"))
        .header("X-Admin-Token", ADMIN)
        .json(&json!({"tid": "1001", "kid_list": [1]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let unknown = app
        .client
        .post(app.url("/api/admin/message-templates"))
        .header("X-Admin-Token", ADMIN)
        .json(&json!({"tid": "999999", "kid_list": [1, 2]}))
        .send()
        .await
        .unwrap();
    assert!(unknown.status().is_client_error() || unknown.status().is_server_error());

    let deleted = app
        .client
        .delete(app.url(&format!("/api/admin/message-templates/{id}")))
        .header("X-Admin-Token", ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(messages(&app).templates().await.unwrap().is_empty());
    app.stop().await.unwrap();
}

async fn data_checks(backend: Backend) {
    let app = builder(backend).spawn().await;
    let template = add_template(&app).await;
    let (_, user_id) = app.login("o_rules").await;
    messages(&app)
        .grant_quota(user_id, &template, 5)
        .await
        .unwrap();
    app.client
        .delete(app.url("/__sandbox/stats"))
        .send()
        .await
        .unwrap();
    let cases = [
        (
            "thing1",
            json!("这个商品名称实在是太长了已经超过二十个字的限制了吧"),
        ),
        ("amount4", json!("forty")),
        ("character_string2", json!("有中文")),
        ("time3", json!("")),
    ];
    for (key, value) in cases {
        let mut request = request(user_id, &template);
        request.data.insert(key.to_owned(), value);
        let refused = messages(&app).send(&app.ctx, request).await.unwrap_err();
        let error = weapp::Error::from(refused);
        assert_eq!(error.code(), "invalid_message_data", "{key}");
        assert!(error.to_string().contains(key), "{error}");
    }
    let mut missing = request(user_id, &template);
    missing.data.remove("time3");
    assert_eq!(
        weapp::Error::from(messages(&app).send(&app.ctx, missing).await.unwrap_err()).code(),
        "invalid_message_data"
    );
    let mut extra = request(user_id, &template);
    extra.data.insert("thing9".into(), json!("x"));
    assert_eq!(
        weapp::Error::from(messages(&app).send(&app.ctx, extra).await.unwrap_err()).code(),
        "invalid_message_data"
    );
    let unknown = request(user_id, "no-such-template");
    assert_eq!(
        weapp::Error::from(messages(&app).send(&app.ctx, unknown).await.unwrap_err()).code(),
        "unknown_template"
    );

    assert_eq!(
        messages(&app).quota(user_id, &template).await.unwrap(),
        5,
        "no quota used"
    );
    let stats = app.sandbox_stats().await;
    assert_eq!(
        stats.get("/cgi-bin/message/subscribe/send"),
        None,
        "WeChat was never called: {stats:?}"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn risky_user_text_is_refused() {
    let app = builder(Backend::Sqlite).spawn().await;
    let (_, user_id) = app.login("o_writer").await;
    let messages = messages(&app);
    messages
        .check_text(&app.ctx, user_id, "包装很好，茶很香")
        .await
        .unwrap();
    let refused = messages
        .check_text(&app.ctx, user_id, "来赌博吧")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "risky_content");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn data_is_checked_before_any_call_on_sqlite() {
    data_checks(Backend::Sqlite).await;
}

#[tokio::test]
async fn data_is_checked_before_any_call_on_postgres() {
    data_checks(Backend::Postgres).await;
}

/// The profile's nickname is user text: the installed content check runs before it
/// is stored, and a risky one is refused with nothing stored.
#[tokio::test]
async fn a_risky_nickname_is_refused_before_it_is_stored() {
    use aes::cipher::block_padding::Pkcs7;
    use aes::cipher::{BlockModeEncrypt, KeyIvInit};
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    let app = builder(Backend::Sqlite).spawn().await;
    let fixture = app
        .sandbox_post("/__sandbox/login", json!({"openid": "o_nick"}))
        .await;
    let login: serde_json::Value = app
        .client
        .post(app.url("/api/auth/login"))
        .json(&json!({"code": fixture["code"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    let session_key = fixture["session_key"].as_str().unwrap();
    let profile = |nickname: &str| {
        let key: [u8; 16] = STANDARD.decode(session_key).unwrap().try_into().unwrap();
        let iv = [3u8; 16];
        let plain = json!({
            "nickName": nickname,
            "watermark": {"appid": weapp::testing::SANDBOX_APPID, "timestamp": 1_700_000_000},
        })
        .to_string();
        let ct = cbc::Encryptor::<aes::Aes128>::new(&key.into(), &iv.into())
            .encrypt_padded_vec::<Pkcs7>(plain.as_bytes());
        json!({"encryptedData": STANDARD.encode(ct), "iv": STANDARD.encode(iv)})
    };
    let send = |body: serde_json::Value| {
        let request = app
            .client
            .post(app.url("/api/auth/profile"))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, me) = send(profile("茶友")).await;
    assert_eq!((status, me["nickname"].as_str()), (200, Some("茶友")));
    let (status, refused) = send(profile("赌博大王")).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("risky_content"))
    );
    let me: serde_json::Value = app
        .client
        .get(app.url("/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        me["nickname"], "茶友",
        "the refused nickname was not stored"
    );
    app.stop().await.unwrap();
}
