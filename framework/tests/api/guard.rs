use reqwest::StatusCode;
use serde_json::{Value, json};
use weapp::actix_web::{HttpResponse, web};
use weapp::guard::{canonical_request, sign};
use weapp::testing::TestApp;

/// Echo routes behind the guards.
struct GuardedPlugin;

async fn echo(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok().body(body)
}

impl weapp::Plugin for GuardedPlugin {
    fn name(&self) -> &'static str {
        "guarded"
    }
    fn routes(&self, cfg: &mut web::ServiceConfig) {
        cfg.route("/api/pay/echo", web::post().to(echo))
            .route("/callbacks/tcb", web::post().to(echo))
            .route(
                "/api/open",
                web::get().to(|| async { HttpResponse::Ok().body("open") }),
            );
    }
}

const SECRET: &str = "mini-program-signing-secret";

async fn spawn() -> TestApp {
    TestApp::builder()
        .set("guard.signing.prefixes", ["/api/pay"])
        .set("guard.signing.secrets.wxsigner", SECRET)
        .set("guard.tcb.prefixes", ["/callbacks/tcb"])
        .set("guard.tcb.secret", "tcb-secret")
        .set("guard.cors.allowed_origins", ["https://admin.example.com"])
        .set(
            "guard.rate_limits",
            json!([
                {"prefix": "/api/open", "per_ip": {"burst": 3, "per_second": 1.0}},
                {"prefix": "/api/me", "per_user": {"burst": 2, "per_second": 1.0}}
            ]),
        )
        .plugin(&GuardedPlugin)
        .spawn()
        .await
}

fn now() -> String {
    chrono::Utc::now().timestamp().to_string()
}

fn signed(
    app: &TestApp,
    body: &str,
    ts: &str,
    nonce: &str,
    signature: Option<String>,
) -> reqwest::RequestBuilder {
    let canonical = canonical_request(
        "POST",
        "/api/pay/echo",
        "b=2&a=1",
        ts,
        nonce,
        body.as_bytes(),
    );
    let signature = signature.unwrap_or_else(|| sign(SECRET.as_bytes(), canonical.as_bytes()));
    app.client
        .post(app.url("/api/pay/echo?b=2&a=1"))
        .header("X-WX-APPID", "wxsigner")
        .header("X-WX-TIMESTAMP", ts)
        .header("X-WX-NONCE", nonce)
        .header("X-WX-SIGN", signature)
        .body(body.to_owned())
}

async fn code(response: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["request_id"], request_id,
        "rejections carry the request id"
    );
    body["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn signed_requests_pass_and_forgeries_and_replays_do_not() {
    let app = spawn().await;
    let ok = signed(&app, r#"{"amount":100}"#, &now(), "nonce-1", None)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.text().await.unwrap(),
        r#"{"amount":100}"#,
        "the body reaches the handler intact"
    );

    let replay = signed(&app, r#"{"amount":100}"#, &now(), "nonce-1", None)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(replay, StatusCode::UNAUTHORIZED).await,
        "replayed_nonce"
    );

    let stale = signed(
        &app,
        "{}",
        &(chrono::Utc::now().timestamp() - 301).to_string(),
        "nonce-2",
        None,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(
        code(stale, StatusCode::UNAUTHORIZED).await,
        "stale_timestamp"
    );

    let forged = signed(&app, "{}", &now(), "nonce-3", Some("00".repeat(32)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(forged, StatusCode::UNAUTHORIZED).await,
        "invalid_signature"
    );

    // The signature covers the body: tampering is caught.
    let ts = now();
    let canonical = canonical_request(
        "POST",
        "/api/pay/echo",
        "a=1&b=2",
        &ts,
        "nonce-4",
        b"{\"amount\":1}",
    );
    let tampered = signed(
        &app,
        r#"{"amount":9999}"#,
        &ts,
        "nonce-4",
        Some(sign(SECRET.as_bytes(), canonical.as_bytes())),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(
        code(tampered, StatusCode::UNAUTHORIZED).await,
        "invalid_signature"
    );

    let unsigned = app
        .client
        .post(app.url("/api/pay/echo"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(unsigned, StatusCode::UNAUTHORIZED).await,
        "missing_signature"
    );

    // Routes outside the signed prefixes need nothing.
    assert_eq!(
        app.client
            .get(app.url("/api/open"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn cloud_callbacks_are_verified() {
    let app = spawn().await;
    let body = r#"{"event":"pay"}"#;
    let ts = now();
    let good = sign(b"tcb-secret", format!("{ts}{body}").as_bytes());
    let post = |signature: String, ts: String| {
        app.client
            .post(app.url("/callbacks/tcb"))
            .header("X-Tcb-Timestamp", ts)
            .header("X-Tcb-Signature", signature)
            .body(body)
            .send()
    };
    assert_eq!(post(good.clone(), ts.clone()).await.unwrap().status(), 200);
    assert_eq!(
        code(
            post(good, ts.clone()).await.unwrap(),
            StatusCode::UNAUTHORIZED
        )
        .await,
        "replayed_nonce"
    );
    let bad = sign(b"wrong", format!("{ts}{body}").as_bytes());
    assert_eq!(
        code(post(bad, ts).await.unwrap(), StatusCode::UNAUTHORIZED).await,
        "invalid_signature"
    );
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let app = spawn().await;
    for _ in 0..3 {
        assert_eq!(
            app.client
                .get(app.url("/api/open"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let limited = app.client.get(app.url("/api/open")).send().await.unwrap();
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(
        code(limited, StatusCode::TOO_MANY_REQUESTS).await,
        "rate_limited"
    );

    // Per user: each user has a budget of their own.
    let mut tokens = Vec::new();
    for openid in ["o_rl_1", "o_rl_2"] {
        let fixture = app
            .sandbox_post("/__sandbox/login", json!({"openid": openid}))
            .await;
        let login: Value = app
            .client
            .post(app.url("/api/auth/login"))
            .json(&json!({"code": fixture["code"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens.push(login["access_token"].as_str().unwrap().to_owned());
    }
    let me = |token: &str| app.client.get(app.url("/api/me")).bearer_auth(token).send();
    assert_eq!(me(&tokens[0]).await.unwrap().status(), 200);
    assert_eq!(me(&tokens[0]).await.unwrap().status(), 200);
    assert_eq!(me(&tokens[0]).await.unwrap().status(), 429);
    assert_eq!(
        me(&tokens[1]).await.unwrap().status(),
        200,
        "another user is not limited"
    );
}

#[tokio::test]
async fn cors_allows_configured_origins_only() {
    let app = spawn().await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/open"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .send()
    };
    let allowed = preflight("https://admin.example.com").await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://admin.example.com"
    );
    let denied = preflight("https://evil.example.com").await.unwrap();
    assert!(
        denied
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert!(denied.status().is_client_error());
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let limited = |trusted: bool| {
        let mut builder = TestApp::builder()
            .set(
                "guard.rate_limits",
                json!([{"prefix": "/api/open", "per_ip": {"burst": 1, "per_second": 0.1}}]),
            )
            .plugin(&GuardedPlugin);
        if trusted {
            builder = builder.set("guard.trusted_proxies", ["127.0.0.1"]);
        }
        builder.spawn()
    };
    let get = |app: &TestApp, forwarded: &'static str| {
        app.client
            .get(app.url("/api/open"))
            .header("X-Forwarded-For", forwarded)
            .send()
    };

    // Untrusted peer: the header is ignored, so a client cannot dodge its limit.
    let app = limited(false).await;
    assert_eq!(get(&app, "10.0.0.1").await.unwrap().status(), 200);
    assert_eq!(get(&app, "10.0.0.2").await.unwrap().status(), 429);

    // Behind a trusted proxy each forwarded client has its own budget.
    let app = limited(true).await;
    assert_eq!(
        get(&app, "203.0.113.9, 10.0.0.1").await.unwrap().status(),
        200
    );
    assert_eq!(get(&app, "10.0.0.2").await.unwrap().status(), 200);
    assert_eq!(get(&app, "10.0.0.2").await.unwrap().status(), 429);
}

/// Guards see the path the router matches: a percent-encoded spelling of a guarded
/// route reaches the same handler, so it must meet the same guard.
#[tokio::test]
async fn guards_apply_to_encoded_spellings_of_their_routes() {
    let app = spawn().await;
    // Rate limit: /api/ope%6e is /api/open to the router, and spends its budget.
    for _ in 0..3 {
        let open = app.client.get(app.url("/api/ope%6e")).send().await.unwrap();
        assert_eq!(open.status(), 200, "the encoded path routes to /api/open");
    }
    let limited = app.client.get(app.url("/api/open")).send().await.unwrap();
    assert_eq!(
        code(limited, StatusCode::TOO_MANY_REQUESTS).await,
        "rate_limited"
    );
    // Signing: an unsigned request to an encoded signed path is refused.
    let unsigned = app
        .client
        .post(app.url("/api/pa%79/echo"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    // Tcb callbacks likewise.
    let unsigned = app
        .client
        .post(app.url("/callbacks/tc%62"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
}

/// A Tcb signature is one nonce however its hex is spelt.
#[tokio::test]
async fn a_tcb_callback_does_not_replay_with_its_signature_in_upper_case() {
    let app = spawn().await;
    let body = r#"{"event":"pay"}"#;
    let ts = now();
    let signature = sign(b"tcb-secret", format!("{ts}{body}").as_bytes());
    let post = |signature: String| {
        app.client
            .post(app.url("/callbacks/tcb"))
            .header("X-Tcb-Timestamp", ts.clone())
            .header("X-Tcb-Signature", signature)
            .body(body)
            .send()
    };
    assert_eq!(
        post(signature.to_ascii_lowercase()).await.unwrap().status(),
        200
    );
    assert_eq!(
        code(
            post(signature.to_ascii_uppercase()).await.unwrap(),
            StatusCode::UNAUTHORIZED
        )
        .await,
        "replayed_nonce"
    );
}

/// Rate limits are on by default for the routes that spend WeChat quota, decrypt
/// under a session key, hold stock or administer.
#[tokio::test]
async fn default_rate_limits_cover_the_costly_routes() {
    let config = weapp::config::ConfigLoader::isolated().load().unwrap();
    let guard = config.get::<weapp::guard::GuardConfig>().unwrap();
    let prefixes: Vec<&str> = guard
        .rate_limits
        .iter()
        .map(|r| r.prefix.as_str())
        .collect();
    for prefix in [
        "/api/auth/login",
        "/api/auth/refresh",
        "/api/auth/profile",
        "/api/auth/phone",
        "/api/orders",
        "/api/admin",
    ] {
        assert!(prefixes.contains(&prefix), "{prefix} in {prefixes:?}");
    }
    // In force: a user's sixth profile decrypt in a row waits.
    let app = TestApp::builder()
        .set(
            "guard.rate_limits",
            serde_json::to_value(weapp::guard::default_rate_limits()).unwrap(),
        )
        .spawn()
        .await;
    let (token, _) = app.login("o_default_limits").await;
    let profile = || {
        app.client
            .post(app.url("/api/auth/profile"))
            .bearer_auth(&token)
            .json(&json!({"encryptedData": "AAAA", "iv": "AAAA"}))
            .send()
    };
    for _ in 0..5 {
        assert_eq!(profile().await.unwrap().status(), StatusCode::BAD_REQUEST);
    }
    assert_eq!(
        code(profile().await.unwrap(), StatusCode::TOO_MANY_REQUESTS).await,
        "rate_limited"
    );
}
