//! PIPL rights on the composed app: export everything held about the caller, then
//! erase it, keeping orders anonymised and the erasure in the audit log.

use serde_json::{Value, json};
use weapp::db::Backend;
use weapp::testing::TestApp;
use weapp_order::{NewProduct, Orders};

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn export_then_erase(app: TestApp) {
    let openid = "o_privacy_subject";
    app.sandbox_post(
        "/__sandbox/login",
        json!({"openid": openid, "phone": "13812348000"}),
    )
    .await;
    let (token, user_id) = app.login(openid).await;
    let phone_code = app
        .sandbox_post("/__sandbox/phone-code", json!({"openid": openid}))
        .await;
    let response = post(
        &app,
        "/api/auth/phone",
        &token,
        json!({"code": phone_code["code"]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let orders = app.ctx.get::<Orders>().unwrap();
    let tea = orders
        .add_product(
            &NewProduct {
                name: "tea".into(),
                description: String::new(),
                price_fen: 100,
                stock: 5,
                active: true,
            },
            "test",
        )
        .await
        .unwrap()
        .id;
    let placed = app
        .client
        .post(app.url("/api/orders"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "privacy-1")
        .json(&json!({"items": [{"product_id": tea, "qty": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 201);

    let export: Value = app
        .client
        .get(app.url("/api/me/export"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(export["user_id"], user_id);
    assert_eq!(export["data"]["auth"]["openid"], openid);
    assert_eq!(
        export["data"]["auth"]["phone"], "13812348000",
        "decrypted for its owner"
    );
    assert_eq!(
        export["data"]["order"]["orders"].as_array().unwrap().len(),
        1
    );
    let actions: Vec<&str> = export["data"]["audit"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"auth.login") && actions.contains(&"auth.phone"),
        "{actions:?}"
    );

    let erased = app
        .client
        .delete(app.url("/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), 204);
    let after = app
        .client
        .get(app.url("/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401, "every session ended");

    let personal = app
        .count(&format!(
            "SELECT COUNT(*) AS n FROM users WHERE id = {user_id} AND (phone IS NOT NULL \
             OR phone_index IS NOT NULL OR unionid IS NOT NULL OR nickname IS NOT NULL)"
        ))
        .await;
    assert_eq!(personal, 0, "sealed values and blind indexes removed");
    let orders_kept = app
        .count("SELECT COUNT(*) AS n FROM orders WHERE user_id IS NULL")
        .await;
    assert_eq!(orders_kept, 1, "the order stays, anonymised");
    weapp_audit::flush(&app.ctx).await.unwrap();
    let recorded = app.count(
        &format!("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'privacy.erase' AND actor = 'user:{user_id}'"),
    )
    .await;
    assert_eq!(recorded, 1);
    let report = weapp_audit::verify::verify(app.ctx.db()).await.unwrap();
    assert_eq!(report.tampering, None);

    // The same WeChat user logging in again is a new user: the old row is no longer theirs.
    let (_, new_id) = app.login(openid).await;
    assert_ne!(new_id, user_id);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn export_and_erase_on_sqlite() {
    export_then_erase(TestApp::builder().spawn().await).await;
}

#[tokio::test]
async fn export_and_erase_on_postgres_and_redis() {
    export_then_erase(
        TestApp::builder()
            .database(Backend::Postgres)
            .redis()
            .spawn()
            .await,
    )
    .await;
}
