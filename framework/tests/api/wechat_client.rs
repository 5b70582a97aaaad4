use std::sync::Arc;

use serde_json::json;
use weapp::testing::{SANDBOX_APPID, SANDBOX_SECRET, TestApp};
use weapp::wechat::types::{SubscribeMessage, WxaCodeRequest};
use weapp::wechat::{WechatClient, WechatConfig, WechatContext, WechatError, errcode};

async fn spawn() -> TestApp {
    TestApp::builder()
        .set("wechat.retry.base_delay_ms", 10)
        .set("wechat.retry.max_delay_ms", 50)
        .spawn()
        .await
}

fn api_error(result: Result<impl std::fmt::Debug, WechatError>) -> i64 {
    match result {
        Err(WechatError::Api { errcode, .. }) => errcode,
        other => panic!("expected a WeChat errcode, got {other:?}"),
    }
}

async fn fault(app: &TestApp, fault: serde_json::Value) {
    let answer = app.sandbox_post("/__sandbox/faults", fault).await;
    assert_eq!(answer["ok"], true, "{answer}");
}

#[tokio::test]
async fn code2session_follows_wechat_rules() {
    let app = spawn().await;
    let client = app.ctx.wechat().unwrap();
    let (code, openid, session_key) = app.sandbox_login(Some("o_alice")).await;
    let session = client.code2session(&code).await.unwrap();
    assert_eq!(session.openid, "o_alice");
    assert_eq!(openid, "o_alice");
    assert_eq!(session.session_key, session_key);
    assert!(session.unionid.is_some());

    assert_eq!(
        api_error(client.code2session(&code).await),
        errcode::CODE_USED
    );
    assert_eq!(
        api_error(client.code2session("no-such-code").await),
        errcode::INVALID_CODE
    );

    let (late, _, _) = app.sandbox_login(None).await;
    app.sandbox_post("/__sandbox/clock", json!({"advance_s": 301}))
        .await;
    assert_eq!(
        api_error(client.code2session(&late).await),
        errcode::INVALID_CODE
    );

    // An answer without openid is an error even with errcode 0.
    fault(
        &app,
        json!({"endpoint": "/sns/jscode2session", "errcode": 0, "errmsg": "ok", "count": 1}),
    )
    .await;
    let (code, _, _) = app.sandbox_login(None).await;
    assert!(matches!(
        client.code2session(&code).await,
        Err(WechatError::Unexpected(_))
    ));
}

#[tokio::test]
async fn a_wrong_secret_is_40125() {
    let app = spawn().await;
    let config = WechatConfig {
        appid: SANDBOX_APPID.into(),
        secret: weapp::config::Secret::new("wrong"),
        ..Default::default()
    };
    let client = WechatClient::new(&config, &app.address, app.ctx.kv_handle()).unwrap();
    let (code, _, _) = app.sandbox_login(None).await;
    assert_eq!(
        api_error(client.code2session(&code).await),
        errcode::INVALID_SECRET
    );
    assert_eq!(
        api_error(client.fetch_token().await),
        errcode::INVALID_SECRET
    );
    assert_eq!(
        api_error(client.fetch_stable_token(false).await),
        errcode::INVALID_SECRET
    );
}

#[tokio::test]
async fn stable_and_classic_tokens() {
    let app = spawn().await;
    let client = app.ctx.wechat().unwrap();
    let a = client.fetch_stable_token(false).await.unwrap();
    let b = client.fetch_stable_token(false).await.unwrap();
    assert_eq!(a.access_token, b.access_token, "stable until near expiry");
    assert!(a.expires_in > 7000 && a.expires_in <= 7200);
    let forced = client.fetch_stable_token(true).await.unwrap();
    assert_ne!(forced.access_token, a.access_token);
    let c1 = client.fetch_token().await.unwrap();
    let c2 = client.fetch_token().await.unwrap();
    assert_ne!(c1.access_token, c2.access_token);
    assert_eq!(c1.expires_in, 7200);

    // Near expiry, stable_token hands out a new token.
    app.sandbox_post("/__sandbox/clock", json!({"advance_s": 7000}))
        .await;
    let later = client.fetch_stable_token(false).await.unwrap();
    assert_ne!(later.access_token, forced.access_token);
}

#[tokio::test]
async fn tokens_are_checked_and_refreshed_after_expiry() {
    let app = spawn().await;
    let client = app.ctx.wechat().unwrap();
    let direct = app
        .client
        .post(app.url("/wxa/msg_sec_check?access_token=forged"))
        .body(r#"{"content":"hi","version":2,"scene":1,"openid":"x"}"#)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(direct["errcode"], errcode::INVALID_CREDENTIAL);

    let (_, openid, _) = app.sandbox_login(Some("o_bob")).await;
    let first = client.msg_sec_check(&openid, 2, "hello").await.unwrap();
    assert_eq!(first.result.suggest, "pass");
    // Past expiry the cached token gets 42001; the client refreshes and retries once.
    app.sandbox_post("/__sandbox/clock", json!({"advance_s": 7300}))
        .await;
    let second = client.msg_sec_check(&openid, 2, "hello").await.unwrap();
    assert_eq!(second.result.suggest, "pass");
    let stats = app.sandbox_stats().await;
    assert_eq!(stats["/cgi-bin/stable_token"], 2, "{stats:?}");
    assert_eq!(stats["/wxa/msg_sec_check"], 3 + 1, "{stats:?}");
}

#[tokio::test]
async fn transient_failures_are_retried_with_backoff_and_others_are_not() {
    let app = spawn().await;
    let client = app.ctx.wechat().unwrap();
    let path = "/sns/jscode2session";
    let calls =
        |stats: std::collections::BTreeMap<String, u64>| stats.get(path).copied().unwrap_or(0);

    for injected in [
        json!({"endpoint": path, "errcode": -1, "errmsg": "system error", "count": 2}),
        json!({"endpoint": path, "status": 503, "count": 2}),
        json!({"endpoint": path, "drop": true, "count": 2}),
    ] {
        app.client
            .delete(app.url("/__sandbox/stats"))
            .send()
            .await
            .unwrap();
        fault(&app, injected.clone()).await;
        let (code, _, _) = app.sandbox_login(None).await;
        client
            .code2session(&code)
            .await
            .unwrap_or_else(|e| panic!("{injected}: {e}"));
        assert_eq!(calls(app.sandbox_stats().await), 3, "{injected}");
    }

    // Persistent busy: gives up after max_attempts (3) with the last error.
    app.client
        .delete(app.url("/__sandbox/stats"))
        .send()
        .await
        .unwrap();
    fault(&app, json!({"endpoint": path, "errcode": -1, "count": 10})).await;
    let (code, _, _) = app.sandbox_login(None).await;
    assert_eq!(api_error(client.code2session(&code).await), errcode::BUSY);
    assert_eq!(calls(app.sandbox_stats().await), 3);
    app.client
        .delete(app.url("/__sandbox/faults"))
        .send()
        .await
        .unwrap();

    // Not transient: one call only.
    app.client
        .delete(app.url("/__sandbox/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        api_error(client.code2session("bogus").await),
        errcode::INVALID_CODE
    );
    assert_eq!(calls(app.sandbox_stats().await), 1);
}

#[tokio::test]
async fn timeouts_are_retried() {
    let app = TestApp::builder()
        .set("wechat.timeout_ms", 300)
        .set("wechat.retry.base_delay_ms", 10)
        .spawn()
        .await;
    let client = app.ctx.wechat().unwrap();
    fault(
        &app,
        json!({"endpoint": "/sns/jscode2session", "latency_ms": 1000, "count": 1}),
    )
    .await;
    let (code, _, _) = app.sandbox_login(None).await;
    client.code2session(&code).await.unwrap();
    assert_eq!(app.sandbox_stats().await["/sns/jscode2session"], 2);
}

#[tokio::test]
async fn a_rejected_token_is_refreshed_once() {
    let app = spawn().await;
    let client = app.ctx.wechat().unwrap();
    let (_, openid, _) = app.sandbox_login(Some("o_carol")).await;
    client
        .msg_sec_check(&openid, 1, "warm up the token")
        .await
        .unwrap();
    fault(
        &app,
        json!({"endpoint": "/wxa/msg_sec_check", "errcode": 40001, "count": 1}),
    )
    .await;
    client.msg_sec_check(&openid, 1, "hello").await.unwrap();
    // Rejected twice in a row: the second rejection is returned, not looped on.
    fault(
        &app,
        json!({"endpoint": "/wxa/msg_sec_check", "errcode": 42001, "count": 2}),
    )
    .await;
    assert_eq!(
        api_error(client.msg_sec_check(&openid, 1, "hello").await),
        errcode::TOKEN_EXPIRED
    );
}

#[tokio::test]
async fn phone_numbers_content_checks_and_codes() {
    let app = spawn().await;
    let client = app.ctx.wechat().unwrap();
    let login = app
        .sandbox_post(
            "/__sandbox/login",
            json!({"openid": "o_dave", "phone": "13812348000"}),
        )
        .await;
    assert_eq!(login["openid"], "o_dave");
    let code = app
        .sandbox_post("/__sandbox/phone-code", json!({"openid": "o_dave"}))
        .await;
    let phone = client
        .get_phone_number(code["code"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(phone.pure_phone_number, "13812348000");
    assert_eq!(phone.country_code, "86");
    assert_eq!(phone.watermark.appid, SANDBOX_APPID);
    assert_eq!(
        api_error(
            client
                .get_phone_number(code["code"].as_str().unwrap())
                .await
        ),
        errcode::CODE_USED
    );

    let risky = client
        .msg_sec_check("o_dave", 2, "一起来赌博吧")
        .await
        .unwrap();
    assert_eq!(
        (risky.result.suggest.as_str(), risky.result.label),
        ("risky", 20006)
    );
    assert!(!risky.trace_id.is_empty());

    let png = client
        .get_wxa_code_unlimited(&WxaCodeRequest {
            scene: "order=42".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let too_long = WxaCodeRequest {
        scene: "x".repeat(33),
        ..Default::default()
    };
    assert_eq!(
        api_error(client.get_wxa_code_unlimited(&too_long).await),
        40169
    );
}

#[tokio::test]
async fn subscribe_templates_and_messages() {
    let app = spawn().await;
    let client = app.ctx.wechat().unwrap();
    assert_eq!(client.get_category().await.unwrap()[0].id, 616);
    let titles = client.get_pub_template_titles(&[616], 0, 10).await.unwrap();
    assert_eq!(titles.count, 2);
    let keywords = client.get_pub_template_keywords("1001").await.unwrap();
    assert_eq!(keywords[0].rule, "thing");

    let id = client
        .add_template("1001", &[1, 2], "发货提醒")
        .await
        .unwrap();
    let templates = client.get_templates().await.unwrap();
    assert_eq!(templates.len(), 1);
    assert!(
        templates[0].content.contains("{{thing1.DATA}}"),
        "{}",
        templates[0].content
    );

    let (_, openid, _) = app.sandbox_login(Some("o_erin")).await;
    let message = |thing: &str, template: &str| SubscribeMessage {
        touser: openid.clone(),
        template_id: template.to_owned(),
        page: Some("pages/order/detail?id=42".into()),
        data: json!({"thing1": {"value": thing}, "character_string2": {"value": "SF1234567890"}})
            .as_object()
            .unwrap()
            .clone(),
        miniprogram_state: Some("developer".into()),
        lang: Some("zh_CN".into()),
    };
    assert_eq!(
        api_error(client.send_subscribe_message(&message("连衣裙", &id)).await),
        errcode::NO_SUBSCRIPTION
    );
    app.sandbox_post(
        "/__sandbox/subscriptions",
        json!({"openid": openid, "template_id": id, "count": 1}),
    )
    .await;
    assert_eq!(
        api_error(
            client
                .send_subscribe_message(&message(&"长".repeat(21), &id))
                .await
        ),
        errcode::BAD_TEMPLATE_DATA
    );
    assert_eq!(
        api_error(
            client
                .send_subscribe_message(&message("连衣裙", "no-such-template"))
                .await
        ),
        errcode::INVALID_TEMPLATE_ID
    );
    let msgid = client
        .send_subscribe_message(&message("连衣裙", &id))
        .await
        .unwrap();
    assert!(msgid > 0);
    let sent: serde_json::Value = app
        .client
        .get(app.url("/__sandbox/messages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sent["messages"][0]["data"]["thing1"]["value"], "连衣裙");
    assert_eq!(
        api_error(client.send_subscribe_message(&message("连衣裙", &id)).await),
        errcode::NO_SUBSCRIPTION,
        "the one-time quota was used"
    );
    client.delete_template(&id).await.unwrap();
    assert!(client.get_templates().await.unwrap().is_empty());
}

#[tokio::test]
async fn fifty_callers_on_two_instances_share_one_token_fetch() {
    let app = spawn().await;
    let shared_redis = weapp::testing::redis_store().await;
    let config = WechatConfig {
        appid: SANDBOX_APPID.into(),
        secret: weapp::config::Secret::new(SANDBOX_SECRET),
        ..Default::default()
    };
    let instances = [
        WechatClient::new(&config, &app.address, shared_redis.clone()).unwrap(),
        WechatClient::new(&config, &app.address, shared_redis.clone()).unwrap(),
    ];
    app.client
        .delete(app.url("/__sandbox/stats"))
        .send()
        .await
        .unwrap();
    let calls = (0..50).map(|i| {
        let client = instances[i % 2].clone();
        tokio::spawn(async move { client.access_token().await.unwrap() })
    });
    let tokens: Vec<String> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(
        tokens.iter().all(|t| *t == tokens[0]),
        "every caller got the same token"
    );
    let stats = app.sandbox_stats().await;
    assert_eq!(stats.get("/cgi-bin/stable_token"), Some(&1), "{stats:?}");
    let _keep: Arc<dyn weapp::kv::KvStore> = shared_redis;
}

#[test]
fn wechat_errors_map_to_clear_client_errors() {
    use weapp::actix_web::ResponseError;
    let api = |errcode| WechatError::Api {
        errcode,
        errmsg: String::new(),
    };
    let cases = [
        (api(errcode::CODE_USED), 401, "code_used"),
        (api(errcode::INVALID_CODE), 401, "invalid_code"),
        (api(errcode::HIGH_RISK_USER), 403, "high_risk_user"),
        (api(errcode::BUSY), 502, "wechat_unavailable"),
        (WechatError::Timeout, 502, "wechat_unavailable"),
        (api(errcode::INVALID_SECRET), 502, "wechat_error"),
        (api(errcode::NO_SUBSCRIPTION), 409, "no_subscription"),
    ];
    for (err, status, code) in cases {
        let http = weapp::Error::from(err);
        assert_eq!((http.status_code().as_u16(), http.code()), (status, code));
    }
}

#[tokio::test]
async fn final_errors_are_not_retried_and_probabilistic_faults_apply() {
    let app = spawn().await;
    let client = app.ctx.wechat().unwrap();
    fault(&app, json!({"endpoint": "/wxa/msg_sec_check", "errcode": errcode::QUOTA_REACHED, "errmsg": "reach max api daily quota limit"})).await;
    let (_, openid, _) = app.sandbox_login(None).await;
    app.client
        .delete(app.url("/__sandbox/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        api_error(client.msg_sec_check(&openid, 1, "hi").await),
        errcode::QUOTA_REACHED
    );
    assert_eq!(
        app.sandbox_stats().await["/wxa/msg_sec_check"],
        1,
        "45011 is not retried"
    );

    fault(
        &app,
        json!({"endpoint": "/sns/jscode2session", "errcode": errcode::HIGH_RISK_USER}),
    )
    .await;
    let (code, _, _) = app.sandbox_login(None).await;
    let err = client.code2session(&code).await.unwrap_err();
    assert_eq!(weapp::Error::from(err).code(), "high_risk_user");

    // Probability 0 never fires; probability 1 always does.
    fault(
        &app,
        json!({"endpoint": "/sns/jscode2session", "errcode": 40226, "probability": 0.0}),
    )
    .await;
    let (code, _, _) = app.sandbox_login(None).await;
    client.code2session(&code).await.unwrap();
    fault(
        &app,
        json!({"endpoint": "/sns/jscode2session", "errcode": 40226, "probability": 1.0}),
    )
    .await;
    let (code, _, _) = app.sandbox_login(None).await;
    assert_eq!(
        api_error(client.code2session(&code).await),
        errcode::HIGH_RISK_USER
    );

    // A bad fault description is a clear 400, not a panic.
    let bad = app
        .client
        .post(app.url("/__sandbox/faults"))
        .body(r#"{"endpoint": "/x", "bogus": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_fixture_user_keeps_its_session_key() {
    let app = spawn().await;
    let client = app.ctx.wechat().unwrap();
    let fixed = "tiihtNczf5v6AKRyjwEUhQ==";
    let login = app
        .sandbox_post(
            "/__sandbox/login",
            json!({"openid": "o_fixture", "session_key": fixed, "unionid": "u_fixture"}),
        )
        .await;
    let session = client
        .code2session(login["code"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(session.session_key, fixed);
    assert_eq!(session.unionid.as_deref(), Some("u_fixture"));
}

/// Holds one instance at a gate before it takes the refresh lock (after it read the
/// shared token: a miss).
struct Gate {
    reached: tokio::sync::Notify,
    open: tokio::sync::Semaphore,
}

#[weapp::async_trait::async_trait]
impl crate::interleaved_store::Interleave for Gate {
    async fn before_set_if_absent(&self, _key: &str) {
        self.reached.notify_one();
        drop(self.open.acquire().await);
    }
}

/// Instance B misses the shared token, instance A then refreshes it and releases
/// the lock, and only then does B take the lock: B must find A's token instead of
/// fetching another (seen with 50 callers on three instances: two fetches).
#[tokio::test]
async fn an_instance_taking_the_lock_after_another_refreshed_reuses_its_token() {
    use weapp::wechat::AccessTokenCache;
    use weapp::wechat::types::AccessToken;
    let shared = Arc::new(weapp::kv::MemoryStore::new());
    let gated = Arc::new(crate::interleaved_store::InterleavedStore {
        inner: shared.clone(),
        hooks: Gate {
            reached: tokio::sync::Notify::new(),
            open: tokio::sync::Semaphore::new(0),
        },
    });
    let config = weapp::wechat::TokenConfig::default();
    let a = AccessTokenCache::new(shared, "wx_app", &config);
    let b = Arc::new(AccessTokenCache::new(gated.clone(), "wx_app", &config));
    let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let fetch = |fetches: Arc<std::sync::atomic::AtomicUsize>| {
        move || {
            let n = fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            async move {
                Ok(AccessToken {
                    access_token: format!("token-{n}"),
                    expires_in: 7200,
                })
            }
        }
    };
    let waiting = {
        let (b, fetch) = (b.clone(), fetch(fetches.clone()));
        tokio::spawn(async move { b.get(fetch).await })
    };
    gated.hooks.reached.notified().await;
    assert_eq!(a.get(fetch(fetches.clone())).await.unwrap(), "token-1");
    gated.hooks.open.add_permits(100);
    assert_eq!(waiting.await.unwrap().unwrap(), "token-1");
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
}
