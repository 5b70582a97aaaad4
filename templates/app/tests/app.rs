//! The app as its users see it: spawned on a free port with the WeChat sandbox and a
//! fresh {{database}} database, which is dropped afterwards.

use serde_json::{Value, json};
use weapp::db::Backend;
use weapp::testing::TestApp;

use {{crate_name}} as _;

async fn spawn_app() -> TestApp {
    let backend = Backend::{% if database == "postgres" %}Postgres{% elsif database == "mysql" %}Mysql{% else %}Sqlite{% endif %};
    TestApp::builder().database(backend).spawn().await
}

#[test]
fn every_plugin_of_the_app_is_registered() {
    let names: Vec<&str> = weapp::plugin::registered()
        .iter()
        .map(|p| p.name())
        .collect();
    let mut expected = vec!["feedback"];
{%- if with_order %}
    expected.push("order");
{%- endif %}
{%- if with_message %}
    expected.push("message");
{%- endif %}
{%- if with_audit %}
    expected.push("audit");
{%- endif %}
    for name in expected {
        assert!(names.contains(&name), "{name} is not registered: {names:?}");
    }
}

#[tokio::test]
async fn feedback_is_stored_and_read_back_by_its_author_only() {
    let app = spawn_app().await;
    let (alice, _) = app.login("openid-alice").await;
    let (bob, _) = app.login("openid-bob").await;

    let created = app
        .client
        .post(app.url("/api/feedback"))
        .bearer_auth(&alice)
        .json(&json!({ "body": "  发货很快，谢谢  " }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["body"], "发货很快，谢谢");

    let list = |token: String| {
        let request = app.client.get(app.url("/api/feedback")).bearer_auth(token);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let mine = list(alice.clone()).await;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(1), "{mine}");
    assert_eq!(mine["items"][0]["id"], created["id"]);
    let theirs = list(bob).await;
    assert_eq!(theirs["items"], json!([]));
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM feedback").await, 1);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn bad_feedback_gets_a_clear_error_and_stores_nothing() {
    let app = spawn_app().await;
    let (token, _) = app.login("openid-carol").await;
    let cases = [
        (json!({ "body": "   " }), 422, "invalid_feedback"),
        (json!({ "body": "长".repeat(501) }), 422, "invalid_feedback"),
        (json!({ "body": "hi", "extra": 1 }), 400, "unknown_field"),
        (json!({}), 400, "invalid_body"),
    ];
    for (body, status, code) in cases {
        let response = app
            .client
            .post(app.url("/api/feedback"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["code"], code, "{body}: {error}");
    }
    let anonymous = app
        .client
        .post(app.url("/api/feedback"))
        .json(&json!({ "body": "hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM feedback").await, 0);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_openapi_document_lists_the_feedback_routes() {
    let app = spawn_app().await;
    let doc: Value = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let feedback = &doc["paths"]["/api/feedback"];
    assert!(
        feedback["get"].is_object() && feedback["post"].is_object(),
        "{doc}"
    );
    app.stop().await.unwrap();
}

/// Every secret production needs, as a deployment sets them (deploy/k8s).
fn production_secrets() -> Vec<(&'static str, &'static str)> {
    vec![
        ("WEAPP__WECHAT__SECRET", "from-the-secret-store"),
        (
            "WEAPP__AUTH__JWT__KEYS__K1",
            "a-production-hs256-key-of-32-bytes-or-more",
        ),
        ("WEAPP__CRYPTO__KEYS__1", "AAECAwQFBgcICQoLDA0ODw=="),
        (
            "WEAPP__CRYPTO__BLIND_INDEX_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ),
{%- if with_order %}
        (
            "WEAPP__ORDER__PAYMENT__SECRET",
            "a-payment-secret-from-the-provider",
        ),
{%- endif %}
        ("WEAPP__DATABASE__URL", "postgres://app@db:5432/app"),
    ]
}

fn production_loader() -> weapp::config::ConfigLoader {
    weapp::config::ConfigLoader::isolated()
        .dir(concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
        .environment("production")
        .defaults_toml({{crate_name}}::DEFAULTS)
}

#[test]
fn the_production_config_loads_with_secrets_from_the_environment() {
    let config = production_loader()
        .vars(production_secrets())
        .load()
        .expect("production config loads");
    let wechat = config.get::<weapp::wechat::WechatConfig>().unwrap();
    assert!(!wechat.sandbox, "the sandbox is development-only");
    assert_eq!(config.server.host, "0.0.0.0");
    assert_eq!(wechat.appid, "{{appid}}");
}

#[test]
fn production_refuses_to_start_without_each_secret() {
    let secrets = production_secrets();
    for (missing, _) in secrets
        .iter()
        .filter(|(name, _)| !name.contains("DATABASE"))
    {
        let vars = secrets.iter().filter(|(name, _)| name != missing).copied();
        let err = production_loader()
            .vars(vars)
            .load()
            .expect_err(missing)
            .to_string();
        let key = missing
            .trim_start_matches("WEAPP__")
            .to_ascii_lowercase()
            .replace("__", ".");
        let key = key.trim_end_matches(".k1").trim_end_matches(".1");
        assert!(err.contains(key), "{missing}: {err}");
    }
}
