use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeEncrypt, KeyIvInit};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use serde_json::{Value, json};
use weapp::auth::{Claims, Me, TokenResponse};
use weapp::db::Backend;
use weapp::testing::{SANDBOX_APPID, TestApp};

/// Encrypts a profile as WeChat does for `getUserProfile`.
fn encrypted_profile(session_key: &str, appid: &str) -> (String, String) {
    let plain = json!({
        "nickName": "Band",
        "avatarUrl": "https://thirdwx.qlogo.cn/avatar.png",
        "watermark": {"appid": appid, "timestamp": 1_700_000_000},
    })
    .to_string();
    encrypted(session_key, plain.as_bytes())
}

/// `plain` encrypted as WeChat encrypts `encryptedData` (AES-128-CBC, PKCS#7).
fn encrypted(session_key: &str, plain: &[u8]) -> (String, String) {
    let key: [u8; 16] = STANDARD.decode(session_key).unwrap().try_into().unwrap();
    let iv = [7u8; 16];
    let ct = cbc::Encryptor::<aes::Aes128>::new(&key.into(), &iv.into())
        .encrypt_padded_vec::<Pkcs7>(plain);
    (STANDARD.encode(ct), STANDARD.encode(iv))
}

/// POSTs `body` to `path`, with `token` as the bearer if given.
pub(crate) async fn post(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut request = app.client.post(app.url(path)).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// `POST /api/auth/refresh` with `refresh_token`.
pub(crate) async fn refresh(app: &TestApp, refresh_token: &str) -> reqwest::Response {
    post(
        app,
        "/api/auth/refresh",
        None,
        json!({ "refresh_token": refresh_token }),
    )
    .await
}

/// `GET /api/me` with `token`.
pub(crate) async fn me(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn code_of(response: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    if status == StatusCode::UNAUTHORIZED {
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
    }
    response.json::<Value>().await.unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Logs `openid` in through the sandbox: its tokens, and the session_key the
/// sandbox issued (checked never to reach the client).
pub(crate) async fn login(
    app: &TestApp,
    openid: &str,
    phone: Option<&str>,
) -> (TokenResponse, String) {
    let fixture = app
        .sandbox_post(
            "/__sandbox/login",
            json!({"openid": openid, "phone": phone}),
        )
        .await;
    let response = post(
        app,
        "/api/auth/login",
        None,
        json!({"code": fixture["code"]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let session_key = fixture["session_key"].as_str().unwrap().to_owned();
    assert!(
        !text.contains(&session_key),
        "session_key must never reach the client"
    );
    (serde_json::from_str(&text).unwrap(), session_key)
}

async fn journey(app: TestApp) {
    let (tokens, session_key) = login(&app, "o_journey", Some("13812348000")).await;
    assert_eq!(tokens.expires_in, 7200);
    let profile: Me = me(&app, &tokens.access_token).await.json().await.unwrap();
    assert_eq!(
        (
            profile.id,
            profile.nickname.as_deref(),
            profile.phone.as_deref()
        ),
        (tokens.user_id, None, None)
    );

    // Same openid logs in again: same user.
    let (again, _) = login(&app, "o_journey", None).await;
    assert_eq!(again.user_id, tokens.user_id);

    // Profile from encryptedData under the session's own session_key.
    let (data, iv) = encrypted_profile(&session_key, SANDBOX_APPID);
    let stale = post(
        &app,
        "/api/auth/profile",
        Some(&again.access_token),
        json!({"encryptedData": data, "iv": iv}),
    )
    .await;
    assert_eq!(
        code_of(stale, StatusCode::BAD_REQUEST).await,
        "stale_session_key",
        "another session's key"
    );
    let updated = post(
        &app,
        "/api/auth/profile",
        Some(&tokens.access_token),
        json!({"encryptedData": data, "iv": iv}),
    )
    .await;
    assert_eq!(updated.status(), 200);
    let (other_app_data, other_iv) = encrypted_profile(&session_key, "wx_other_app");
    let foreign = post(
        &app,
        "/api/auth/profile",
        Some(&tokens.access_token),
        json!({"encryptedData": other_app_data, "iv": other_iv}),
    )
    .await;
    assert_eq!(
        code_of(foreign, StatusCode::BAD_REQUEST).await,
        "stale_session_key",
        "data for another appid answers like any other decrypt failure"
    );

    // Phone from a getPhoneNumber code.
    let code = app
        .sandbox_post("/__sandbox/phone-code", json!({"openid": "o_journey"}))
        .await;
    let phone = post(
        &app,
        "/api/auth/phone",
        Some(&tokens.access_token),
        json!({"code": code["code"]}),
    )
    .await;
    assert_eq!(phone.status(), 200);
    let used = post(
        &app,
        "/api/auth/phone",
        Some(&tokens.access_token),
        json!({"code": code["code"]}),
    )
    .await;
    assert_eq!(
        code_of(used, StatusCode::BAD_REQUEST).await,
        "invalid_phone_code"
    );

    let profile: Me = me(&app, &tokens.access_token).await.json().await.unwrap();
    assert_eq!(profile.nickname.as_deref(), Some("Band"));
    assert_eq!(
        profile.avatar_url.as_deref(),
        Some("https://thirdwx.qlogo.cn/avatar.png")
    );
    assert_eq!(profile.phone.as_deref(), Some("138****8000"));

    // Refresh rotates; reusing the old refresh token revokes the session.
    let rotated: TokenResponse = refresh(&app, &tokens.refresh_token)
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(rotated.refresh_token, tokens.refresh_token);
    assert_eq!(me(&app, &rotated.access_token).await.status(), 200);
    let reuse = refresh(&app, &tokens.refresh_token).await;
    assert_eq!(
        code_of(reuse, StatusCode::UNAUTHORIZED).await,
        "refresh_token_reused"
    );
    assert_eq!(
        code_of(
            me(&app, &rotated.access_token).await,
            StatusCode::UNAUTHORIZED
        )
        .await,
        "revoked_session"
    );
    let after = refresh(&app, &rotated.refresh_token).await;
    assert_eq!(
        code_of(after, StatusCode::UNAUTHORIZED).await,
        "revoked_session"
    );
    let unknown = refresh(&app, "nope").await;
    assert_eq!(
        code_of(unknown, StatusCode::UNAUTHORIZED).await,
        "invalid_refresh_token"
    );

    // Logout ends this session only; logout-all ends every session.
    let (a, _) = login(&app, "o_journey", None).await;
    let (b, _) = login(&app, "o_journey", None).await;
    assert_eq!(
        post(&app, "/api/auth/logout", Some(&a.access_token), json!({}))
            .await
            .status(),
        204
    );
    assert_eq!(
        code_of(me(&app, &a.access_token).await, StatusCode::UNAUTHORIZED).await,
        "revoked_session"
    );
    assert_eq!(me(&app, &b.access_token).await.status(), 200);
    let (c, _) = login(&app, "o_journey", None).await;
    assert_eq!(
        post(
            &app,
            "/api/auth/logout-all",
            Some(&b.access_token),
            json!({})
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        code_of(me(&app, &b.access_token).await, StatusCode::UNAUTHORIZED).await,
        "revoked_session"
    );
    assert_eq!(
        code_of(me(&app, &c.access_token).await, StatusCode::UNAUTHORIZED).await,
        "revoked_session"
    );
    let refresh_c = refresh(&app, &c.refresh_token).await;
    assert_eq!(
        code_of(refresh_c, StatusCode::UNAUTHORIZED).await,
        "revoked_session"
    );
    let (d, _) = login(&app, "o_journey", None).await;
    assert_eq!(
        me(&app, &d.access_token).await.status(),
        200,
        "new logins work after logout-all"
    );
}

#[tokio::test]
async fn the_login_journey_on_the_embedded_defaults() {
    journey(TestApp::builder().spawn().await).await;
}

#[tokio::test]
async fn the_login_journey_on_postgres_and_redis() {
    journey(
        TestApp::builder()
            .database(Backend::Postgres)
            .redis()
            .spawn()
            .await,
    )
    .await;
}

#[tokio::test]
async fn the_login_journey_on_mariadb() {
    journey(TestApp::builder().database(Backend::Mysql).spawn().await).await;
}

#[tokio::test]
async fn login_rejects_bad_codes_and_bodies() {
    let app = TestApp::builder().spawn().await;
    let fixture = app.sandbox_post("/__sandbox/login", json!({})).await;
    assert_eq!(
        post(
            &app,
            "/api/auth/login",
            None,
            json!({"code": fixture["code"]})
        )
        .await
        .status(),
        200
    );
    let reused = post(
        &app,
        "/api/auth/login",
        None,
        json!({"code": fixture["code"]}),
    )
    .await;
    assert_eq!(code_of(reused, StatusCode::UNAUTHORIZED).await, "code_used");
    let unknown = post(&app, "/api/auth/login", None, json!({"code": "bogus"})).await;
    assert_eq!(
        code_of(unknown, StatusCode::UNAUTHORIZED).await,
        "invalid_code"
    );
    let missing = post(&app, "/api/auth/login", None, json!({})).await;
    assert_eq!(
        code_of(missing, StatusCode::BAD_REQUEST).await,
        "invalid_body"
    );
    let extra = post(
        &app,
        "/api/auth/login",
        None,
        json!({"code": "x", "admin": true}),
    )
    .await;
    assert_eq!(
        code_of(extra, StatusCode::BAD_REQUEST).await,
        "unknown_field"
    );
}

fn forge(header: Value, claims: &Claims, key: &[u8]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let head = URL_SAFE_NO_PAD.encode(header.to_string());
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_string(claims).unwrap());
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(format!("{head}.{body}").as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{head}.{body}.{sig}")
}

#[tokio::test]
async fn every_bad_token_is_a_401_with_its_code() {
    let app = TestApp::builder().spawn().await;
    let (tokens, _) = login(&app, "o_tokens", None).await;
    let key = app
        .ctx
        .config()
        .get::<weapp::auth::AuthConfig>()
        .unwrap()
        .jwt
        .keys["test"]
        .expose()
        .as_bytes()
        .to_vec();
    let now = jsonwebtoken::get_current_timestamp();
    let parts: Vec<&str> = tokens.access_token.split('.').collect();
    let good: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let hs = json!({"alg": "HS256", "typ": "JWT", "kid": "test"});

    assert_eq!(
        forge(hs.clone(), &good, &key).split('.').nth(1),
        Some(parts[1]),
        "forge matches the real encoding"
    );
    assert_eq!(
        me(&app, &forge(hs.clone(), &good, &key)).await.status(),
        200
    );

    let missing = app.client.get(app.url("/api/me")).send().await.unwrap();
    assert_eq!(
        code_of(missing, StatusCode::UNAUTHORIZED).await,
        "missing_token"
    );
    let cases = [
        ("garbage".to_owned(), "invalid_token"),
        (
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"test"}"#),
                parts[1]
            ),
            "invalid_token",
        ),
        (
            forge(
                json!({"alg": "RS256", "typ": "JWT", "kid": "test"}),
                &good,
                &key,
            ),
            "invalid_token",
        ),
        (
            forge(hs.clone(), &good, b"some-other-key-some-other-key-123456"),
            "invalid_token",
        ),
        (
            forge(
                json!({"alg": "HS256", "typ": "JWT", "kid": "unknown"}),
                &good,
                &key,
            ),
            "invalid_token",
        ),
        (
            forge(
                hs.clone(),
                &Claims {
                    aud: "someone-else".into(),
                    ..good.clone()
                },
                &key,
            ),
            "invalid_token",
        ),
        (
            forge(
                hs.clone(),
                &Claims {
                    iss: "evil".into(),
                    ..good.clone()
                },
                &key,
            ),
            "invalid_token",
        ),
        (
            forge(
                hs.clone(),
                &Claims {
                    nbf: now + 3600,
                    ..good.clone()
                },
                &key,
            ),
            "invalid_token",
        ),
        (
            forge(
                hs.clone(),
                &Claims {
                    exp: now - 120,
                    iat: now - 7400,
                    nbf: now - 7400,
                    ..good.clone()
                },
                &key,
            ),
            "expired_token",
        ),
        (
            forge(
                hs.clone(),
                &Claims {
                    sid: "forged-session".into(),
                    ..good.clone()
                },
                &key,
            ),
            "revoked_session",
        ),
        (
            forge(
                hs.clone(),
                &Claims {
                    sub: "999999".into(),
                    ..good.clone()
                },
                &key,
            ),
            "revoked_session",
        ),
        (format!("{}x", tokens.access_token), "invalid_token"),
    ];
    for (token, code) in cases {
        assert_eq!(
            code_of(me(&app, &token).await, StatusCode::UNAUTHORIZED).await,
            code,
            "token {token}"
        );
    }
    // Within the leeway an expired token still passes.
    let just_expired = forge(
        hs,
        &Claims {
            exp: now - 5,
            ..good
        },
        &key,
    );
    assert_eq!(me(&app, &just_expired).await.status(), 200);
}

#[tokio::test]
async fn login_with_redis_down_is_a_503() {
    let app = TestApp::builder()
        .set("redis.url", "redis://127.0.0.1:1")
        .set("redis.connect_timeout_ms", 200)
        .set("redis.response_timeout_ms", 200)
        .spawn()
        .await;
    let fixture = app.sandbox_post("/__sandbox/login", json!({})).await;
    let response = post(
        &app,
        "/api/auth/login",
        None,
        json!({"code": fixture["code"]}),
    )
    .await;
    assert_eq!(
        code_of(response, StatusCode::SERVICE_UNAVAILABLE).await,
        "kv_unavailable"
    );
}

/// A private redis-server on a free port, so the test can stop and restart it.
struct OwnRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    fn start(port: u16) -> OwnRedis {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed (the machine's Redis package)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        OwnRedis {
            port,
            child: Some(child),
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn login_survives_a_redis_outage_without_restart() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut redis = OwnRedis::start(port);
    let app = TestApp::builder()
        .set("redis.url", format!("redis://127.0.0.1:{}", redis.port))
        .set("redis.connect_timeout_ms", 300)
        .set("redis.response_timeout_ms", 300)
        .spawn()
        .await;
    let (tokens, _) = login(&app, "o_outage", None).await;
    assert_eq!(me(&app, &tokens.access_token).await.status(), 200);

    redis.stop();
    let fixture = app
        .sandbox_post("/__sandbox/login", json!({"openid": "o_outage"}))
        .await;
    let down = post(
        &app,
        "/api/auth/login",
        None,
        json!({"code": fixture["code"]}),
    )
    .await;
    assert_eq!(
        code_of(down, StatusCode::SERVICE_UNAVAILABLE).await,
        "kv_unavailable"
    );
    let me_down = me(&app, &tokens.access_token).await;
    assert_eq!(
        code_of(me_down, StatusCode::SERVICE_UNAVAILABLE).await,
        "kv_unavailable"
    );

    let _redis = OwnRedis::start(port);
    let mut recovered = false;
    for _ in 0..40 {
        let fixture = app
            .sandbox_post("/__sandbox/login", json!({"openid": "o_outage"}))
            .await;
        if post(
            &app,
            "/api/auth/login",
            None,
            json!({"code": fixture["code"]}),
        )
        .await
        .status()
            == 200
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(
        recovered,
        "login works again once Redis is back, without a restart"
    );
}

#[tokio::test]
async fn eddsa_tokens_work_and_resist_algorithm_confusion() {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let private_pem = pair.serialize_pem();
    let public_pem = pair.public_key_pem();
    let app = TestApp::builder()
        .set("auth.jwt.algorithm", "EdDSA")
        .set("auth.jwt.keys", json!({"ed1": private_pem}))
        .set("auth.jwt.public_keys", json!({"ed1": public_pem}))
        .spawn()
        .await;
    let (tokens, _) = login(&app, "o_eddsa", None).await;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(tokens.access_token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (header["alg"].as_str(), header["kid"].as_str()),
        (Some("EdDSA"), Some("ed1"))
    );
    assert_eq!(me(&app, &tokens.access_token).await.status(), 200);

    // The public key used as an HMAC secret: the classic confusion attack.
    let claims: Claims = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(tokens.access_token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let confused = forge(
        json!({"alg": "HS256", "typ": "JWT", "kid": "ed1"}),
        &claims,
        public_pem.as_bytes(),
    );
    assert_eq!(
        code_of(me(&app, &confused).await, StatusCode::UNAUTHORIZED).await,
        "invalid_token"
    );
}

#[test]
fn tokens_survive_a_key_rotation() {
    use weapp::auth::{JwtConfig, JwtKeys};
    use weapp::config::Secret;
    let old = JwtConfig {
        keys: [(
            "k1".to_owned(),
            Secret::new("k1-secret-0123456789-0123456789-xx"),
        )]
        .into(),
        ..Default::default()
    };
    let mut rotated = old.clone();
    rotated.keys.insert(
        "k2".into(),
        Secret::new("k2-secret-0123456789-0123456789-xx"),
    );
    rotated.active_kid = Some("k2".into());
    let old_keys = JwtKeys::new(&old).unwrap().unwrap();
    let new_keys = JwtKeys::new(&rotated).unwrap().unwrap();
    let (before, _) = old_keys.issue(7, "s1").unwrap();
    assert_eq!(
        new_keys.verify(&before).unwrap().sub,
        "7",
        "old tokens still verify after rotation"
    );
    let (after, _) = new_keys.issue(7, "s2").unwrap();
    assert!(
        old_keys.verify(&after).is_err(),
        "instances without k2 refuse k2 tokens"
    );
    let retired = JwtConfig {
        keys: [(
            "k2".to_owned(),
            Secret::new("k2-secret-0123456789-0123456789-xx"),
        )]
        .into(),
        ..Default::default()
    };
    assert!(
        JwtKeys::new(&retired)
            .unwrap()
            .unwrap()
            .verify(&before)
            .is_err(),
        "a retired kid is refused"
    );
}

/// Kept tokens (`auth.jwt.verified_cache_entries`) answer as verification does:
/// the same claims, a changed byte refused, expiry on time; and so with it off.
#[test]
fn verified_tokens_kept_expire_on_time_and_a_changed_byte_is_refused() {
    use weapp::auth::{AuthError, JwtConfig, JwtKeys};
    use weapp::config::Secret;
    let issued = [20_000, 0].map(|entries| {
        let keys = JwtKeys::new(&JwtConfig {
            keys: [(
                "k1".to_owned(),
                Secret::new("k1-secret-0123456789-0123456789-xx"),
            )]
            .into(),
            ttl_s: 1,
            leeway_s: 0,
            verified_cache_entries: entries,
            ..Default::default()
        })
        .unwrap()
        .unwrap();
        let (token, _) = keys.issue(7, "s1").unwrap();
        let first = keys.verify(&token).unwrap();
        assert_eq!((first.sub.as_str(), first.sid.as_str()), ("7", "s1"));
        assert_eq!(keys.verify(&token), Ok(first.clone()), "{entries}: again");
        // Every byte of the token, changed in turn, after it was kept.
        for at in 0..token.len() {
            let mut changed = token.clone().into_bytes();
            changed[at] = if changed[at] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(changed).unwrap();
            if let Ok(claims) = keys.verify(&changed) {
                // Base64's last character may carry unused bits: the same bytes.
                assert_eq!(claims, first, "{entries}: byte {at} changed");
            }
        }
        assert!(keys.verify(&format!("{token}A")).is_err());
        assert!(keys.verify(&token[..token.len() - 1]).is_err());
        (keys, token)
    });
    // exp is a second after issue: two seconds later it has passed.
    std::thread::sleep(std::time::Duration::from_millis(2_050));
    for (keys, token) in issued {
        assert_eq!(keys.verify(&token), Err(AuthError::ExpiredToken));
    }
}

#[tokio::test]
async fn login_without_field_keys_is_a_clear_503() {
    // No field keys (and none generated): personal data cannot be stored, so say so.
    let app = TestApp::builder()
        .set("crypto.keys", json!({}))
        .set("crypto.dev_key_file", "")
        .spawn()
        .await;
    assert!(app.ctx.crypto().is_err(), "this app has no field keys");
    let fixture = app.sandbox_post("/__sandbox/login", json!({})).await;
    let response = post(
        &app,
        "/api/auth/login",
        None,
        json!({"code": fixture["code"]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "crypto_not_configured");
    // The operator learns what to set, not just that something failed.
    assert_eq!(
        body["message"],
        "field encryption is not configured (crypto.keys)"
    );
}

/// Logs `openid` in on `app`, shares the phone 13812348000, and returns the
/// access token.
async fn login_with_phone(app: &TestApp, openid: &str) -> String {
    let (tokens, _) = login(app, openid, Some("13812348000")).await;
    let code = app
        .sandbox_post("/__sandbox/phone-code", json!({"openid": openid}))
        .await;
    let phone = post(
        app,
        "/api/auth/phone",
        Some(&tokens.access_token),
        json!({"code": code["code"]}),
    )
    .await;
    assert_eq!(phone.status(), 200);
    tokens.access_token
}

async fn masked_phone(app: &TestApp, token: &str) -> Option<String> {
    let response = me(app, token).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    response.json::<Me>().await.unwrap().phone
}

/// Each app's key ring lives in its context: a second app with other keys in the
/// same process neither breaks the first app's sealed columns nor opens them.
#[tokio::test]
async fn two_apps_in_one_process_keep_their_own_field_keys() {
    let first = TestApp::builder().spawn().await;
    let first_token = login_with_phone(&first, "o_two_rings").await;
    assert_eq!(
        masked_phone(&first, &first_token).await.as_deref(),
        Some("138****8000")
    );

    let second = TestApp::builder()
        .set("crypto.keys.1", STANDARD.encode([0x5a; 16]))
        .set("crypto.blind_index_key", STANDARD.encode([0x6b; 32]))
        .spawn()
        .await;
    let second_token = login_with_phone(&second, "o_two_rings").await;
    assert_eq!(
        masked_phone(&second, &second_token).await.as_deref(),
        Some("138****8000")
    );
    // The first app still opens what it sealed, after the second one started.
    assert_eq!(
        masked_phone(&first, &first_token).await.as_deref(),
        Some("138****8000")
    );

    // And the rings really differ: the first app's keys open none of the second's.
    let user_id = weapp::auth::users::id_by_openid(
        second.ctx.db(),
        second.ctx.crypto().unwrap(),
        "o_two_rings",
    )
    .await
    .unwrap()
    .expect("the user exists in the second app");
    let row = weapp::auth::users::export(second.ctx.db(), user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.openid.open(second.ctx.crypto().unwrap()).unwrap(),
        "o_two_rings"
    );
    assert!(row.openid.open(first.ctx.crypto().unwrap()).is_err());
    first.stop().await.unwrap();
    second.stop().await.unwrap();
}

/// After the base64 and length checks, every way `encryptedData` can fail answers
/// the same: otherwise bad padding vs a bad plaintext is a padding oracle on the
/// caller's session key.
#[tokio::test]
async fn profile_decrypt_failures_all_answer_alike() {
    let app = TestApp::builder().spawn().await;
    let (tokens, session_key) = login(&app, "o_oracle", None).await;
    let (good, iv) = encrypted_profile(&session_key, SANDBOX_APPID);
    let mut bad_padding = STANDARD.decode(&good).unwrap();
    let last = bad_padding.len() - 1;
    bad_padding[last] ^= 0x5a;
    let foreign_appid =
        json!({"nickName": "x", "watermark": {"appid": "wx_other", "timestamp": 1}});
    let cases = [
        ("bad padding", STANDARD.encode(&bad_padding)),
        ("not UTF-8", encrypted(&session_key, &[0xff, 0xfe, 0xfd]).0),
        ("not JSON", encrypted(&session_key, b"hello").0),
        (
            "no watermark",
            encrypted(&session_key, br#"{"nickName":"x"}"#).0,
        ),
        (
            "another appid",
            encrypted(&session_key, foreign_appid.to_string().as_bytes()).0,
        ),
    ];
    let mut answers = Vec::new();
    for (case, data) in cases {
        let response = post(
            &app,
            "/api/auth/profile",
            Some(&tokens.access_token),
            json!({"encryptedData": data, "iv": iv}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        let body: Value = response.json().await.unwrap();
        answers.push((case, body["code"].clone(), body["message"].clone()));
    }
    for (case, code, message) in &answers {
        assert_eq!(code, "stale_session_key", "{case}");
        assert_eq!(message, &answers[0].2, "{case}");
    }
    // What is wrong with the input's shape is still named.
    let short_iv = post(
        &app,
        "/api/auth/profile",
        Some(&tokens.access_token),
        json!({"encryptedData": good, "iv": STANDARD.encode([1u8; 8])}),
    )
    .await;
    assert_eq!(
        code_of(short_iv, StatusCode::BAD_REQUEST).await,
        "invalid_iv"
    );
}

/// Ends the session (as a logout would) right after the rotation read it: the
/// interleaving a racing logout or reuse detection produces.
struct LogoutDuringRotation {
    sid: std::sync::Mutex<Option<String>>,
}

#[weapp::async_trait::async_trait]
impl crate::interleaved_store::Interleave for LogoutDuringRotation {
    async fn after_get(&self, store: &weapp::kv::MemoryStore, key: &str) {
        let target = self.sid.lock().unwrap().clone();
        if let Some(sid) = target
            && key == format!("auth:session:{sid}")
        {
            use weapp::kv::KvStore;
            store.delete(key).await.unwrap();
        }
    }
}

/// A refresh racing a logout: the logout wins, and the ended session stays ended.
#[tokio::test]
async fn a_refresh_racing_a_logout_does_not_bring_the_session_back() {
    use weapp::auth::sessions::{RotateOutcome, SessionStore};
    let kv = crate::interleaved_store::InterleavedStore {
        inner: std::sync::Arc::new(weapp::kv::MemoryStore::new()),
        hooks: LogoutDuringRotation {
            sid: std::sync::Mutex::new(None),
        },
    };
    let sessions = SessionStore::new(&kv, std::time::Duration::from_secs(600));
    let (sid, refresh) = sessions.create(7, "sealed".into()).await.unwrap();
    assert!(sessions.active(&sid, 7).await.unwrap().is_some());
    *kv.hooks.sid.lock().unwrap() = Some(sid.clone());
    let outcome = sessions.rotate(&refresh).await.unwrap();
    *kv.hooks.sid.lock().unwrap() = None;
    assert!(
        matches!(outcome, RotateOutcome::Ended),
        "the rotation lost to the logout"
    );
    assert!(
        sessions.active(&sid, 7).await.unwrap().is_none(),
        "the ended session was written back"
    );
}

/// Logout-all deletes the user's sessions, not only moves the epoch: if the epoch
/// counter is lost (evicted, a failover that missed it), the ended sessions stay
/// ended.
#[tokio::test]
async fn logout_all_survives_the_loss_of_the_epoch_counter() {
    use weapp::auth::sessions::SessionStore;
    use weapp::kv::KvStore;
    for kv in [
        std::sync::Arc::new(weapp::kv::MemoryStore::new()) as std::sync::Arc<dyn KvStore>,
        weapp::testing::redis_store().await,
    ] {
        let sessions = SessionStore::new(kv.as_ref(), std::time::Duration::from_secs(600));
        let (first, _) = sessions.create(9, "a".into()).await.unwrap();
        let (second, _) = sessions.create(9, "b".into()).await.unwrap();
        let (other_user, _) = sessions.create(10, "c".into()).await.unwrap();
        sessions.end_all(9).await.unwrap();
        assert!(
            kv.delete("auth:epoch:9").await.unwrap(),
            "the counter existed"
        );
        // A session created after logout-all is live.
        let (after, _) = sessions.create(9, "d".into()).await.unwrap();
        assert!(sessions.active(&after, 9).await.unwrap().is_some());
        assert!(sessions.active(&first, 9).await.unwrap().is_none());
        assert!(sessions.active(&second, 9).await.unwrap().is_none());
        assert!(sessions.active(&other_user, 10).await.unwrap().is_some());
    }
}
