//! Notifications: delivered by the sandbox, refused when they should be.

use serde_json::json;
use weapp_pay::samples;

use crate::support::*;

type Headers = Vec<(&'static str, String)>;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn a_payment_reaches_the_sink_once_verified_and_decrypted() {
    let app = builder().spawn().await;
    let sink = record(&app);
    let client = payments(&app).client().clone();
    client
        .jsapi(&shop(&app), &jsapi_order("order000100", 880, "o_buyer"))
        .await
        .unwrap();
    control(
        &app,
        "/__sandbox/pay/pay",
        json!({"out_trade_no": "order000100"}),
    )
    .await;

    let delivered = wait_for_deliveries(&app, 1).await;
    assert_eq!(delivered[0]["status"], 204, "{delivered:?}");
    assert_eq!(delivered[0]["event_type"], "TRANSACTION.SUCCESS");
    let seen = sink.seen.lock().unwrap().clone();
    let [Seen::Paid(merchant, transaction)] = seen.as_slice() else {
        panic!("one payment: {seen:?}");
    };
    assert_eq!(merchant, "shop");
    assert_eq!(transaction.out_trade_no, "order000100");
    assert_eq!(transaction.amount.as_ref().unwrap().total, 880);
    assert_eq!(transaction.payer.as_ref().unwrap().openid, "o_buyer");
    assert!(transaction.transaction_id.is_some());
}

#[tokio::test]
async fn a_refund_outcome_reaches_the_sink() {
    let app = builder().spawn().await;
    let sink = record(&app);
    let client = payments(&app).client().clone();
    let shop = shop(&app);
    client
        .jsapi(&shop, &jsapi_order("order000101", 500, "o_buyer"))
        .await
        .unwrap();
    control(
        &app,
        "/__sandbox/pay/pay",
        json!({"out_trade_no": "order000101"}),
    )
    .await;
    wait_for_deliveries(&app, 1).await;
    let request = weapp_pay::types::RefundRequest {
        out_trade_no: "order000101".into(),
        out_refund_no: "refund000101".into(),
        reason: None,
        amount: weapp_pay::types::RefundRequestAmount {
            refund: 200,
            total: 500,
            currency: "CNY".into(),
        },
    };
    client.refund(&shop, &request).await.unwrap();
    let delivered = wait_for_deliveries(&app, 2).await;
    assert_eq!(
        (
            delivered[1]["event_type"].as_str(),
            delivered[1]["status"].as_u64()
        ),
        (Some("REFUND.SUCCESS"), Some(204))
    );
    let seen = sink.seen.lock().unwrap().clone();
    let Some(Seen::Refund(merchant, refund)) = seen.last() else {
        panic!("a refund: {seen:?}");
    };
    assert_eq!(merchant, "shop");
    assert_eq!(
        (
            refund.refund_status.as_str(),
            refund.amount.refund,
            refund.amount.total
        ),
        ("SUCCESS", 200, 500)
    );
    assert_eq!(refund.out_refund_no, "refund000101");
}

#[tokio::test]
async fn forged_stale_misdirected_or_undecryptable_notifications_get_fail() {
    let app = builder()
        .set("pay.merchants.outlet.mchid", "1900000200")
        .spawn()
        .await;
    let sink = record(&app);
    let resource = paid_transaction("order000102", 300);
    let key_id = samples::PUBLIC_KEY_ID;
    let apiv3 = samples::APIV3_KEY;

    let (headers, body) = notification("TRANSACTION.SUCCESS", &resource, apiv3, key_id, now());
    let tampered = body.replacen("encrypt-resource", "encrypt-resourcE", 1);
    let stale = sign(&body, key_id, now() - 301);
    let future = sign(&body, key_id, now() + 301);
    let unknown_serial = sign(
        &body,
        "PUB_KEY_ID_0000000000000000000000000000000001",
        now(),
    );
    let (wrong_key_headers, wrong_key_body) = notification(
        "TRANSACTION.SUCCESS",
        &resource,
        "another-merchants-apiv3-key-0000",
        key_id,
        now(),
    );
    let mut missing = headers.clone();
    missing.retain(|(name, _)| *name != "Wechatpay-Nonce");
    type Case = (
        &'static str,
        &'static str,
        Headers,
        String,
        u16,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "tampered body",
            "shop",
            headers.clone(),
            tampered,
            401,
            "invalid_signature",
        ),
        (
            "stale timestamp",
            "shop",
            stale,
            body.clone(),
            401,
            "stale_timestamp",
        ),
        (
            "future timestamp",
            "shop",
            future,
            body.clone(),
            401,
            "stale_timestamp",
        ),
        (
            "unknown serial",
            "shop",
            unknown_serial,
            body.clone(),
            401,
            "unknown_serial",
        ),
        (
            "missing header",
            "shop",
            missing,
            body.clone(),
            401,
            "missing_signature",
        ),
        (
            "wrong APIv3 key",
            "shop",
            wrong_key_headers,
            wrong_key_body,
            400,
            "undecryptable",
        ),
        (
            "another merchant's",
            "outlet",
            headers.clone(),
            body.clone(),
            400,
            "other_merchant",
        ),
        (
            "unknown merchant",
            "nobody",
            headers.clone(),
            body.clone(),
            404,
            "unknown_merchant",
        ),
        (
            "not a notification",
            "shop",
            sign("{}", key_id, now()),
            "{}".into(),
            400,
            "invalid_body",
        ),
    ];
    for (case, merchant, headers, body, status, reason) in cases {
        let (got, answer) = post_notification(&app, merchant, &headers, &body).await;
        assert_eq!(
            (got, answer["reason"].as_str()),
            (status, Some(reason)),
            "{case}: {answer}"
        );
        assert_eq!(answer["code"], "FAIL", "{case}: WeChat Pay's failure body");
        assert!(answer["message"].is_string(), "{case}");
    }
    assert_eq!(sink.count(), 0, "nothing refused reached the sink");

    // The same notification, intact, is applied.
    let (status, _) = post_notification(&app, "shop", &headers, &body).await;
    assert_eq!(status, 204);
    assert_eq!(sink.count(), 1);
}

#[tokio::test]
async fn the_sandboxs_faults_are_refused_and_duplicates_all_answered() {
    let app = builder().spawn().await;
    let sink = record(&app);
    let client = payments(&app).client().clone();
    let shop = shop(&app);
    let faults = [
        (json!({"bad_signature": true}), 401, "invalid_signature"),
        (json!({"wrong_apiv3_key": true}), 400, "undecryptable"),
        (json!({"other_mchid": "1900000999"}), 400, "other_merchant"),
        (json!({"timestamp_offset_s": -400}), 401, "stale_timestamp"),
    ];
    for (i, (fault, status, reason)) in faults.iter().enumerate() {
        let no = format!("order00020{i}");
        client
            .jsapi(&shop, &jsapi_order(&no, 100, "o_buyer"))
            .await
            .unwrap();
        control(&app, "/__sandbox/pay/faults", fault.clone()).await;
        control(&app, "/__sandbox/pay/pay", json!({"out_trade_no": no})).await;
        let delivered = wait_for_deliveries(&app, i + 1).await;
        assert_eq!(delivered[i]["status"], *status, "{fault}: {delivered:?}");
        assert!(
            delivered[i]["answer"].as_str().unwrap().contains(reason),
            "{fault}"
        );
    }
    assert_eq!(sink.count(), 0);

    control(&app, "/__sandbox/pay/faults", json!({"copies": 20})).await;
    client
        .jsapi(&shop, &jsapi_order("order000300", 100, "o_buyer"))
        .await
        .unwrap();
    control(
        &app,
        "/__sandbox/pay/pay",
        json!({"out_trade_no": "order000300"}),
    )
    .await;
    let delivered = wait_for_deliveries(&app, 24).await;
    assert!(
        delivered[4..].iter().all(|d| d["status"] == 204),
        "{delivered:?}"
    );
    assert_eq!(
        sink.count(),
        20,
        "each copy reaches the sink; applying once is its job"
    );
}

#[tokio::test]
async fn lost_and_held_notifications_and_a_failing_sink() {
    let app = builder().spawn().await;
    let sink = record(&app);
    let client = payments(&app).client().clone();
    let shop = shop(&app);
    control(&app, "/__sandbox/pay/faults", json!({"lost": true})).await;
    client
        .jsapi(&shop, &jsapi_order("order000400", 100, "o_buyer"))
        .await
        .unwrap();
    control(
        &app,
        "/__sandbox/pay/pay",
        json!({"out_trade_no": "order000400"}),
    )
    .await;
    let delivered = wait_for_deliveries(&app, 1).await;
    assert!(delivered[0]["status"].is_null(), "lost: {delivered:?}");
    assert_eq!(sink.count(), 0);
    assert!(
        client
            .transaction(&shop, "order000400")
            .await
            .unwrap()
            .is_paid(),
        "a query still finds it paid"
    );

    control(&app, "/__sandbox/pay/faults", json!({"hold": true})).await;
    for no in ["order000401", "order000402"] {
        client
            .jsapi(&shop, &jsapi_order(no, 100, "o_buyer"))
            .await
            .unwrap();
        control(&app, "/__sandbox/pay/pay", json!({"out_trade_no": no})).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(deliveries(&app).await.len(), 1, "held");
    let (_, released) = control(&app, "/__sandbox/pay/release", json!({})).await;
    assert_eq!(released["released"], 2);
    let delivered = wait_for_deliveries(&app, 3).await;
    let order: Vec<_> = delivered[1..]
        .iter()
        .map(|d| d["out_trade_no"].clone())
        .collect();
    assert_eq!(
        order,
        [json!("order000402"), json!("order000401")],
        "last first"
    );

    // A sink that cannot apply makes the notification fail, so WeChat Pay retries.
    *sink.fail.lock().unwrap() = true;
    client
        .jsapi(&shop, &jsapi_order("order000403", 100, "o_buyer"))
        .await
        .unwrap();
    control(
        &app,
        "/__sandbox/pay/pay",
        json!({"out_trade_no": "order000403"}),
    )
    .await;
    let delivered = wait_for_deliveries(&app, 4).await;
    assert_eq!(delivered[3]["status"], 503, "{delivered:?}");
    assert!(
        delivered[3]["answer"]
            .as_str()
            .unwrap()
            .contains("\"FAIL\"")
    );
}

#[tokio::test]
async fn a_rotated_certificate_is_fetched_when_a_notification_names_it() {
    let app = builder()
        .set("pay.merchants.shop.platform_certificates", true)
        .spawn()
        .await;
    let sink = record(&app);
    let client = payments(&app).client().clone();
    let shop = shop(&app);
    control(
        &app,
        "/__sandbox/pay/signer",
        json!({"signer": "certificate_a"}),
    )
    .await;
    client
        .jsapi(&shop, &jsapi_order("order000500", 100, "o_buyer"))
        .await
        .unwrap();
    control(
        &app,
        "/__sandbox/pay/signer",
        json!({"signer": "certificate_b"}),
    )
    .await;
    control(
        &app,
        "/__sandbox/pay/pay",
        json!({"out_trade_no": "order000500"}),
    )
    .await;
    let delivered = wait_for_deliveries(&app, 1).await;
    assert_eq!(delivered[0]["status"], 204, "{delivered:?}");
    assert_eq!(sink.count(), 1);
    assert_eq!(shop.platform.certificate_serials().len(), 2);
}

#[tokio::test]
async fn the_sandbox_is_not_mounted_without_the_embedded_wechat_sandbox() {
    let app = builder()
        .set("wechat.sandbox", false)
        .set("pay.base_url", "http://127.0.0.1:9")
        .set("pay.merchants.shop.private_key", samples::MERCHANT_KEY_PEM)
        .set("pay.merchants.shop.public_key_id", samples::PUBLIC_KEY_ID)
        .set(
            "pay.merchants.shop.public_key",
            samples::PLATFORM_A_PUBLIC_KEY_PEM,
        )
        .set("pay.merchants.shop.apiv3_key", samples::APIV3_KEY)
        .spawn()
        .await;
    for path in ["/__sandbox/pay/notifications", "/v3/certificates"] {
        let status = app.client.get(app.url(path)).send().await.unwrap().status();
        assert_eq!(status, 404, "{path}");
    }
    assert!(app.ctx.get::<weapp_pay::sandbox::PaySandbox>().is_none());
}
