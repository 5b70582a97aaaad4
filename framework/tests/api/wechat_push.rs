use weapp::actix_web::{HttpResponse, web};
use weapp::testing::TestApp;
use weapp::wechat::{PushCrypto, PushError, PushMessage, PushQuery, parse_push_body};

// WeChat's WXBizMsgCrypt sample (Sample.py): a safe-mode push to decrypt.
const TOKEN: &str = "spamtest";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APPID: &str = "wx2c2769f8efd9abc2";
const TIMESTAMP: &str = "1409735669";
const NONCE: &str = "1320562132";
const MSG_SIGNATURE: &str = "5d197aaffba7e9b25a30732f161a50dee96bd5fa";
const SAMPLE_XML: &str = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728</MsgId><Encrypt><![CDATA[hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=]]></Encrypt></xml>";

fn sample() -> PushCrypto {
    PushCrypto::new(TOKEN, AES_KEY, APPID).unwrap()
}

fn query(msg_signature: &str) -> PushQuery {
    PushQuery {
        msg_signature: Some(msg_signature.to_owned()),
        timestamp: TIMESTAMP.into(),
        nonce: NONCE.into(),
        encrypt_type: Some("aes".into()),
        ..Default::default()
    }
}

#[test]
fn the_official_sample_push_decrypts() {
    let message = sample()
        .open_push(&query(MSG_SIGNATURE), SAMPLE_XML.as_bytes())
        .unwrap();
    assert_eq!(message["ToUserName"], "gh_10f6c3c3ac5a");
    assert_eq!(message["MsgType"], "text");
    assert!(
        message.get("Encrypt").is_none(),
        "the inner message, not the envelope: {message}"
    );
}

#[test]
fn encryption_matches_the_official_java_sample() {
    // WXBizMsgCryptTest.java: fixed random bytes make the output deterministic.
    let crypto = PushCrypto::new("pamtest", AES_KEY, "wxb11529c136998cb6").unwrap();
    let encrypted = crypto.encrypt_with_random("我是中文abcd123", *b"aaaabbbbccccdddd");
    assert_eq!(
        encrypted,
        "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
    );
}

#[test]
fn json_and_xml_pushes_round_trip() {
    let crypto = sample();
    let json = r#"{"ToUserName":"gh_1","FromUserName":"o_user","MsgType":"event","Event":"subscribe_msg_popup_event","List":[{"TemplateId":"t1","SubscribeStatusString":"accept"}]}"#;
    let xml = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe_msg_popup_event]]></Event><SubscribeMsgPopupEvent><List><TemplateId><![CDATA[t1]]></TemplateId><SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString></List><List><TemplateId><![CDATA[t2]]></TemplateId><SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString></List></SubscribeMsgPopupEvent></xml>";
    for plain in [json, xml] {
        let encrypted = crypto.encrypt(plain);
        let signature = crypto.sign(TIMESTAMP, NONCE, &encrypted);
        assert_eq!(
            crypto
                .decrypt(&signature, TIMESTAMP, NONCE, &encrypted)
                .unwrap(),
            plain
        );
        let body = if plain.starts_with('{') {
            serde_json::json!({"ToUserName": "gh_1", "Encrypt": encrypted}).to_string()
        } else {
            format!(
                "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
            )
        };
        let message = crypto
            .open_push(&query(&signature), body.as_bytes())
            .unwrap();
        assert_eq!(message["Event"], "subscribe_msg_popup_event");
    }
    let parsed = parse_push_body(xml.as_bytes()).unwrap();
    let list = &parsed["SubscribeMsgPopupEvent"]["List"];
    assert_eq!(
        list[1]["TemplateId"], "t2",
        "repeated elements become an array: {parsed}"
    );
}

/// Text outside CDATA keeps its escaped characters: the five predefined entities
/// and character references, decimal and hex (WeChat escapes user text that way).
#[test]
fn xml_entities_and_character_references_are_decoded() {
    let xml = "<xml><Content>Tea &amp; cake &lt;3 &quot;hi&quot; &apos;x&apos; &gt; &#20320;&#x597D;</Content><Mixed>a<![CDATA[ & ]]>b&amp;c</Mixed></xml>";
    let parsed = parse_push_body(xml.as_bytes()).unwrap();
    assert_eq!(parsed["Content"], "Tea & cake <3 \"hi\" 'x' > 你好");
    assert_eq!(parsed["Mixed"], "a & b&c");
    for bad in [
        "<xml><A>&unknown;</A></xml>",
        "<xml><A>&#xFFFFFFFF;</A></xml>",
    ] {
        assert!(
            matches!(parse_push_body(bad.as_bytes()), Err(PushError::Parse(_))),
            "{bad} is refused"
        );
    }
}

#[test]
fn bad_pushes_are_refused_with_wechat_codes() {
    let crypto = sample();
    let encrypted = crypto.encrypt("<xml><A>1</A></xml>");
    let signature = crypto.sign(TIMESTAMP, NONCE, &encrypted);

    let err = crypto
        .decrypt("0000", TIMESTAMP, NONCE, &encrypted)
        .unwrap_err();
    assert_eq!(
        (err.clone(), err.wechat_code()),
        (PushError::InvalidSignature, -40001)
    );

    let other_app = PushCrypto::new(TOKEN, AES_KEY, "wx0000000000000000").unwrap();
    let err = other_app
        .decrypt(&signature, TIMESTAMP, NONCE, &encrypted)
        .unwrap_err();
    assert_eq!(err.wechat_code(), -40005);

    let truncated = &encrypted[..encrypted.len() - 8];
    let err = crypto
        .decrypt(
            &crypto.sign(TIMESTAMP, NONCE, truncated),
            TIMESTAMP,
            NONCE,
            truncated,
        )
        .unwrap_err();
    assert!(
        matches!(err, PushError::Decrypt | PushError::Base64),
        "{err:?}"
    );

    let other_key =
        PushCrypto::new(TOKEN, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq", APPID).unwrap();
    assert!(
        other_key
            .decrypt(&signature, TIMESTAMP, NONCE, &encrypted)
            .is_err()
    );

    assert_eq!(
        PushCrypto::new(TOKEN, "short", APPID)
            .unwrap_err()
            .wechat_code(),
        -40004
    );

    // A plain-mode push is refused by default, since a key is configured; where
    // plain mode is allowed it must carry a valid signature.
    let plain_query = PushQuery {
        signature: Some(weapp::wechat::push::signature(&[TOKEN, "1", "2"])),
        timestamp: "1".into(),
        nonce: "2".into(),
        ..Default::default()
    };
    let plain = br#"{"MsgType":"event"}"#;
    assert_eq!(
        crypto.open_push(&plain_query, plain).unwrap_err(),
        PushError::PlainRefused
    );
    let lenient = sample().allow_plain(true);
    assert!(lenient.open_push(&plain_query, plain).is_ok());
    let forged = PushQuery {
        signature: Some("bad".into()),
        ..plain_query
    };
    let err = lenient.open_push(&forged, plain).unwrap_err();
    assert_eq!(err, PushError::InvalidSignature);
    assert!(matches!(
        crypto.open_push(&query(MSG_SIGNATURE), b"hello"),
        Err(PushError::Parse(_))
    ));
    assert!(matches!(
        crypto.open_push(&query(MSG_SIGNATURE), b"<xml><a>"),
        Err(PushError::Parse(_))
    ));
}

proptest::proptest! {
    #[test]
    fn random_push_input_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..300), enc in ".{0,120}") {
        let crypto = sample();
        let _ = crypto.open_push(&query(MSG_SIGNATURE), &body);
        let signature = crypto.sign(TIMESTAMP, NONCE, &enc);
        let _ = crypto.decrypt(&signature, TIMESTAMP, NONCE, &enc);
    }
}

/// A plugin receiving pushes with the framework's helpers.
struct PushPlugin;

async fn on_push(ctx: weapp::AppContext, push: PushMessage) -> HttpResponse {
    ctx.insert(push.clone());
    weapp::wechat::push_ack()
}

impl weapp::Plugin for PushPlugin {
    fn name(&self) -> &'static str {
        "push-test"
    }
    fn routes(&self, cfg: &mut web::ServiceConfig) {
        cfg.route("/wechat/push", web::get().to(weapp::wechat::verify_url))
            .route("/wechat/push", web::post().to(on_push));
    }
}

#[tokio::test]
async fn pushes_reach_a_plugin_handler_over_http() {
    let app = TestApp::builder()
        .set("wechat.appid", APPID)
        .set("wechat.push.token", TOKEN)
        .set("wechat.push.encoding_aes_key", AES_KEY)
        .plugin(&PushPlugin)
        .spawn()
        .await;
    let crypto = sample();

    // URL verification, plain and safe mode.
    let signature = weapp::wechat::push::signature(&[TOKEN, "1700000000", "n1"]);
    let echo = app
        .client
        .get(app.url(&format!(
            "/wechat/push?signature={signature}&timestamp=1700000000&nonce=n1&echostr=hello123"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(echo.status(), 200);
    assert_eq!(echo.text().await.unwrap(), "hello123");
    let bad = app
        .client
        .get(app.url("/wechat/push?signature=00&timestamp=1700000000&nonce=n1&echostr=hello123"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert_eq!(
        bad.json::<serde_json::Value>().await.unwrap()["code"],
        "invalid_signature"
    );

    // An encrypted JSON event.
    let now = chrono::Utc::now().timestamp().to_string();
    let event = r#"{"ToUserName":"gh_1","FromUserName":"o_user_1","MsgType":"event","Event":"subscribe_msg_change_event"}"#;
    let encrypted = crypto.encrypt(event);
    let body = serde_json::json!({"ToUserName": "gh_1", "Encrypt": encrypted}).to_string();
    let push = |timestamp: &str, nonce: &str, body: String| {
        let msg_signature = crypto.sign(timestamp, nonce, &encrypted);
        app.client
            .post(app.url(&format!(
                "/wechat/push?msg_signature={msg_signature}&timestamp={timestamp}&nonce={nonce}&encrypt_type=aes"
            )))
            .body(body)
            .send()
    };
    let response = push(&now, "n2", body.clone()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "success");
    let seen = app.ctx.get::<PushMessage>().expect("handler ran");
    assert_eq!(seen.event(), Some("subscribe_msg_change_event"));
    assert_eq!(seen.from_openid(), Some("o_user_1"));

    // The same push captured and sent again is refused, as is an old one signed
    // correctly.
    let replayed = push(&now, "n2", body.clone()).await.unwrap();
    assert_eq!(replayed.status(), 401);
    assert_eq!(
        replayed.json::<serde_json::Value>().await.unwrap()["code"],
        "replayed_nonce"
    );
    let old = push("1700000001", "n3", body.clone()).await.unwrap();
    assert_eq!(old.status(), 401);
    assert_eq!(
        old.json::<serde_json::Value>().await.unwrap()["code"],
        "stale_timestamp"
    );

    let msg_signature = crypto.sign(&now, "n4", &encrypted);
    let tampered = app
        .client
        .post(app.url(&format!(
            "/wechat/push?msg_signature={msg_signature}&timestamp=1700000002&nonce=n4"
        )))
        .body(serde_json::json!({"Encrypt": encrypted}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 401);

    // A plain-mode body (no Encrypt) with a valid plain signature: refused, since
    // a key is configured.
    let signature = weapp::wechat::push::signature(&[TOKEN, &now, "n5"]);
    let plain = app
        .client
        .post(app.url(&format!(
            "/wechat/push?signature={signature}&timestamp={now}&nonce=n5"
        )))
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 400);
    assert_eq!(
        plain.json::<serde_json::Value>().await.unwrap()["code"],
        "encrypted_push_required"
    );
}

#[tokio::test]
async fn push_endpoints_without_configuration_answer_503() {
    let app = TestApp::builder().plugin(&PushPlugin).spawn().await;
    let response = app
        .client
        .post(app.url("/wechat/push"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["code"],
        "push_not_configured"
    );
}
