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
    // What it takes and answers, from the handlers' types.
    let body = &feedback["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["$ref"], "#/components/schemas/NewFeedback", "{doc}");
    let new_feedback = &doc["components"]["schemas"]["NewFeedback"];
    assert_eq!(new_feedback["properties"]["body"]["minLength"], 1, "{doc}");
    let answer = &feedback["post"]["responses"]["201"]["content"]["application/json"]["schema"];
    assert_eq!(answer["$ref"], "#/components/schemas/Feedback", "{doc}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_mini_program_sdk_matches_the_routes() {
    // `cargo run -- sdk miniprogram/weapp-sdk` writes it; the first run writes it too.
    let app = spawn_app().await;
    let sdk = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("miniprogram/weapp-sdk");
    app.assert_sdk_current(&sdk).await;
    let types = std::fs::read_to_string(sdk.join("types/api.d.ts")).unwrap();
    assert!(types.contains("'POST /api/feedback'"), "{types}");
    app.stop().await.unwrap();
}

{%- if with_order %}
/// A merchant API key made for this test alone (not one of the pay sandbox's
/// published samples, which production refuses); never a real merchant's.
const TEST_MERCHANT_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCXrssnu6jOh8O2
u7C1CtFrhDIZbBL2QwJBD/QHe4UijWLRtpIwSauuojrmxavKBYjrMGwM5OoDtMpd
0MnYKA8qVnG3xsaw9hHIJp2LONoZMvJY3PVhy1j79K9hn4ZyLGW91CdjkWcHKSTY
lHINtAukNVUKRRt+knMhljI9WVdk2BvlhPu4AgGTro3V6WD4uvWtIEmFgxKqwt7A
MYVnM22GTS/QFPq8JHCwvQfAqcEuKy8f38Luo8KoGdWgapE1RIZ+13Eaz0jLuDs4
ZFK+rIwyDAV4je53UL9rXuaaaw2IDQt3ksRk02TZ5rgEh4qPYoPut6SxhZmeDbMr
BRMaU9glAgMBAAECggEAJH6RsoWcH9TaaeTOp0BrEotD4on2JfoJWM4V0JcPeTi7
Rem/Uo7nF6VAtrVol7qtLqj/1jpdc3bUGa5aYf+BZpZV1fmlZH5P2PAxh4WuM9Hm
LSs8fsMGLdi5OavAFUhJUlrw/yvEthxYGSPeLR3cjy2lwErQSqvBt5sDi28rb7+Q
NGqO/RD9cpScHwuxIRNSKBBM0SFjInORZ3Wl7gS8RAV9iwRvULAevXljDoPVQwDr
nCh/jS+059W4drnZu2JRMboPr62gN3uHOZYc69xCLbLpQ3mVc4myQMKYQ6rL2H1q
BxjfhajZ5gFCPfuoJRzq1V0eQv92HIiTy8CXaYxoAQKBgQDRxxLnQmbFLVLmFfkp
F0KlhJ7hJS6CByDBllxvcFq9ra05ZdNfkZGwiXLQUlZAFH6q9x52OQLhcEYe6m/s
rJLUq4FmLWTIKWBTjbmoKFgLvRZOmIdgppvu9JJppC1GfoCLvLeF9O2Ob/okGeUX
pxu3j4m6gJ27TSt9a5WmUSItwQKBgQC5GsOXY0sOn3ko7J8J0xxNoq+RIuy4D7ec
qN+mEz9jM+eAu4f3Cl8Q+t4lHndKcDSoDe6y1dn+lELjlAq9pXZkvTP9hWxSkpET
GDOWbFvOnWaZjDRjQqC34FCxVUQmUXvVP/CRMlO526aREkh4WZUea8dgxcn6LQ6f
7As7yQCLZQKBgEUVyYztmkjPb2Ck1eSJa4J1FZnSE+nwjQIUEacFmmyjGMwxU5ZC
q3c3HN+sbgk2dqy5K4gFqIQz5HPkAy4vez+cp8XNp0YgEkASCZVui+h5wjHqG5Nh
6zKbyugNkHeJy625Xbs4+U8SY4+mE4NhnkgqdlI8bzWy6WKpnqQiTh5BAoGBAJDe
3Y2ybJ/5N/5Lkv1BeLlaRkY1K0ezJWU61i9IiSe/C8S5AOTb/SNw9EPg4EQmJVAR
92uH66FPsDolN3LN+SdG3VXiArFtfJWRL27fR8shbZdnH+k/0EGZEg54SWokA+MW
s9Uvqk+gFXEc+hMXKZoxiE24/ycJ9JQ9TV1xJzfxAoGBAI1ZZk1gJid+Qa+/cLP3
5Nqgpjz7It1DM5QUozLkWDRHQ7mvmHurwEK7qcJVc7GEICSkB7Xmg3dU0xwytCRF
YGGgVv6M0hat4uUIImL8LfHAQfleG9LR/e95qWk1kpHEnN3cytCHh/pxcsRu6/pf
Rp0E36faT9dt26rx2TxDDY4O
-----END PRIVATE KEY-----";

{%- endif %}
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
            "WEAPP__PAY__MERCHANTS__SHOP__SERIAL_NO",
            "7A1B2C3D4E5F60718293A4B5C6D7E8F901234567",
        ),
        (
            "WEAPP__PAY__MERCHANTS__SHOP__PRIVATE_KEY",
            TEST_MERCHANT_KEY,
        ),
        (
            "WEAPP__PAY__MERCHANTS__SHOP__APIV3_KEY",
            "an-apiv3-key-from-the-merchant-0",
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
