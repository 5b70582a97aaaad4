//! The signed client against the sandbox: prepay, query, close, refund, keys.

use std::time::Duration;

use serde_json::json;
use weapp::crypto::wechatpay;
use weapp_pay::types::{RefundRequest, RefundRequestAmount};
use weapp_pay::{PayError, samples};

use crate::support::*;

fn api_code(result: Result<impl std::fmt::Debug, PayError>) -> String {
    match result {
        Err(PayError::Api { code, .. }) => code,
        other => panic!("expected WeChat Pay's error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_prepay_is_paid_queried_refunded_and_cannot_be_closed_after() {
    let app = builder().spawn().await;
    let client = payments(&app).client().clone();
    let shop = shop(&app);

    let prepay = client
        .jsapi(&shop, &jsapi_order("order000001", 1_250, "o_buyer"))
        .await
        .unwrap();
    assert!(prepay.starts_with("wx"), "{prepay}");
    let again = client
        .jsapi(&shop, &jsapi_order("order000001", 1_250, "o_buyer"))
        .await
        .unwrap();
    assert_eq!(again, prepay, "the same order gets the same prepay");
    let other = client
        .jsapi(&shop, &jsapi_order("order000001", 999, "o_buyer"))
        .await;
    assert_eq!(api_code(other), "OUT_TRADE_NO_USED");

    let unpaid = client.transaction(&shop, "order000001").await.unwrap();
    assert_eq!(unpaid.trade_state, "NOTPAY");
    assert!(unpaid.transaction_id.is_none() && !unpaid.is_paid());
    assert_eq!(
        api_code(client.transaction(&shop, "order404404").await),
        "ORDER_NOT_EXIST"
    );

    let (status, _) = control(
        &app,
        "/__sandbox/pay/pay",
        json!({"out_trade_no": "order000001"}),
    )
    .await;
    assert_eq!(status, 200);
    let paid = client.transaction(&shop, "order000001").await.unwrap();
    assert_eq!(paid.trade_state, "SUCCESS");
    assert_eq!(paid.amount.as_ref().map(|a| a.total), Some(1_250));
    assert_eq!(
        paid.payer.as_ref().map(|p| p.openid.as_str()),
        Some("o_buyer")
    );
    assert_eq!(
        api_code(client.close(&shop, "order000001").await),
        "ORDERPAID"
    );
    let paid_again = client
        .jsapi(&shop, &jsapi_order("order000001", 1_250, "o_buyer"))
        .await;
    assert_eq!(api_code(paid_again), "ORDERPAID");

    let request = RefundRequest {
        out_trade_no: "order000001".into(),
        out_refund_no: "refund000001".into(),
        reason: Some("out of stock".into()),
        amount: RefundRequestAmount {
            refund: 1_250,
            total: 1_250,
            currency: "CNY".into(),
        },
    };
    let refund = client.refund(&shop, &request).await.unwrap();
    assert_eq!(
        (refund.status.as_str(), refund.amount.refund),
        ("PROCESSING", 1_250)
    );
    let too_much = RefundRequest {
        out_refund_no: "refund000002".into(),
        ..request.clone()
    };
    assert_eq!(
        api_code(client.refund(&shop, &too_much).await),
        "INVALID_REQUEST"
    );
    let mut status = String::new();
    for _ in 0..100 {
        status = client
            .refund_status(&shop, "refund000001")
            .await
            .unwrap()
            .status;
        if status == "SUCCESS" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, "SUCCESS");
    assert_eq!(
        api_code(client.refund_status(&shop, "refund404404").await),
        "RESOURCE_NOT_EXISTS"
    );
}

#[tokio::test]
async fn closed_prepays_cannot_be_paid_and_bad_parameters_are_param_errors() {
    let app = builder().spawn().await;
    let client = payments(&app).client().clone();
    let shop = shop(&app);
    client
        .jsapi(&shop, &jsapi_order("order000002", 100, "o_buyer"))
        .await
        .unwrap();
    client.close(&shop, "order000002").await.unwrap();
    assert_eq!(
        client
            .transaction(&shop, "order000002")
            .await
            .unwrap()
            .trade_state,
        "CLOSED"
    );
    let (status, _) = control(
        &app,
        "/__sandbox/pay/pay",
        json!({"out_trade_no": "order000002"}),
    )
    .await;
    assert_eq!(status, 409, "a closed prepay cannot be paid");
    let reopened = client
        .jsapi(&shop, &jsapi_order("order000002", 100, "o_buyer"))
        .await;
    assert_eq!(api_code(reopened), "ORDER_CLOSED");

    for order in [
        jsapi_order("short", 100, "o_buyer"),
        jsapi_order("order000003", 0, "o_buyer"),
        jsapi_order("order000003", 100, ""),
    ] {
        assert_eq!(
            api_code(client.jsapi(&shop, &order).await),
            "PARAM_ERROR",
            "{order:?}"
        );
    }
    // A number outside WeChat Pay's alphabet never reaches the path.
    let err = client
        .transaction(&shop, "../certificates")
        .await
        .unwrap_err();
    assert!(matches!(err, PayError::Unexpected(_)), "{err:?}");
}

#[tokio::test]
async fn the_sandbox_refuses_requests_not_signed_by_the_merchant() {
    let app = builder().spawn().await;
    let url = app.url("/v3/pay/transactions/out-trade-no/order000001?mchid=1900000109");
    let unsigned = app.client.get(&url).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    let body: serde_json::Value = unsigned.json().await.unwrap();
    assert_eq!(body["code"], "SIGN_ERROR");

    // Signed for another path: the signature covers the path and query.
    let shop = shop(&app);
    let authorization = shop.authorization(
        "GET",
        "/v3/pay/transactions/out-trade-no/order000009?mchid=1900000109",
        "",
    );
    let replayed = app
        .client
        .get(&url)
        .header("Authorization", authorization)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 401);

    let authorization = shop.authorization(
        "GET",
        "/v3/pay/transactions/out-trade-no/order000001?mchid=1900000109",
        "",
    );
    let signed = app
        .client
        .get(&url)
        .header("Authorization", authorization)
        .send()
        .await
        .unwrap();
    assert_eq!(
        signed.status(),
        404,
        "signed right, and the order does not exist"
    );
    assert!(
        signed.headers().contains_key("Wechatpay-Signature"),
        "answers are signed"
    );
}

#[tokio::test]
async fn request_payment_parameters_verify_as_the_mini_program_checks_them() {
    let app = builder().spawn().await;
    let shop = shop(&app);
    let params = shop.request_payment("wx201410272009395522657a690389285100");
    assert_eq!(
        params.package,
        "prepay_id=wx201410272009395522657a690389285100"
    );
    assert_eq!(params.sign_type, "RSA");
    assert_eq!(params.nonce_str.len(), 32);
    let message = wechatpay::pay_sign_message(
        weapp::testing::SANDBOX_APPID,
        &params.time_stamp,
        &params.nonce_str,
        &params.package,
    );
    shop.public_key()
        .verify(message.as_bytes(), &params.pay_sign)
        .unwrap();
    let json = serde_json::to_value(&params).unwrap();
    for key in ["timeStamp", "nonceStr", "package", "signType", "paySign"] {
        assert!(
            json.get(key).is_some(),
            "wx.requestPayment takes {key}: {json}"
        );
    }
}

#[tokio::test]
async fn answers_signed_by_a_key_we_do_not_trust_are_not_believed() {
    // Certificates only: the sandbox signs with certificate A, downloaded on demand;
    // after it rotates to B, the next call fetches B and goes on.
    let app = builder()
        .set("pay.merchants.shop.platform_certificates", true)
        .spawn()
        .await;
    let client = payments(&app).client().clone();
    let shop = shop(&app);
    control(
        &app,
        "/__sandbox/pay/signer",
        json!({"signer": "certificate_a"}),
    )
    .await;
    client
        .jsapi(&shop, &jsapi_order("order000010", 100, "o_buyer"))
        .await
        .unwrap();
    let serials = shop.platform.certificate_serials();
    assert_eq!(serials.len(), 1, "{serials:?}");

    control(
        &app,
        "/__sandbox/pay/signer",
        json!({"signer": "certificate_b"}),
    )
    .await;
    client.transaction(&shop, "order000010").await.unwrap();
    assert_eq!(
        shop.platform.certificate_serials().len(),
        2,
        "rotated without a restart"
    );

    // Public key signatures are not trusted by a certificates-only merchant.
    control(
        &app,
        "/__sandbox/pay/signer",
        json!({"signer": "public_key"}),
    )
    .await;
    let err = client.transaction(&shop, "order000010").await.unwrap_err();
    assert!(
        matches!(err, PayError::Unverified("unknown_serial")),
        "{err:?}"
    );
}

#[tokio::test]
async fn during_a_migration_both_the_public_key_and_certificates_verify() {
    let app = builder()
        .set("pay.merchants.shop.platform_certificates", true)
        .set("pay.merchants.shop.public_key_id", samples::PUBLIC_KEY_ID)
        .set(
            "pay.merchants.shop.public_key",
            samples::PLATFORM_A_PUBLIC_KEY_PEM,
        )
        .spawn()
        .await;
    let client = payments(&app).client().clone();
    let shop = shop(&app);
    for signer in ["public_key", "certificate_a", "public_key", "certificate_b"] {
        control(&app, "/__sandbox/pay/signer", json!({"signer": signer})).await;
        client
            .transaction(&shop, "order000404")
            .await
            .map(|_| ())
            .or_else(|e| match e {
                PayError::Api { code, .. } if code == "ORDER_NOT_EXIST" => Ok(()),
                e => Err(e),
            })
            .unwrap_or_else(|e| panic!("{signer}: {e}"));
    }
}

#[tokio::test]
async fn the_mini_programs_payment_sheet_names_its_prepay_by_prepay_id() {
    let app = builder().spawn().await;
    let client = payments(&app).client().clone();
    let shop = shop(&app);
    let prepay = client
        .jsapi(&shop, &jsapi_order("order000010", 300, "o_buyer"))
        .await
        .unwrap();
    // What `wx.requestPayment` holds: `package: "prepay_id=…"`.
    let package = format!("prepay_id={prepay}");

    let (status, closed) =
        control(&app, "/__sandbox/pay/cancel", json!({"prepay_id": package})).await;
    assert_eq!(
        (status, closed["errMsg"].as_str()),
        (200, Some("requestPayment:fail cancel"))
    );
    let unpaid = client.transaction(&shop, "order000010").await.unwrap();
    assert_eq!(unpaid.trade_state, "NOTPAY");

    for body in [
        json!({}),
        json!({"out_trade_no": "order000010", "prepay_id": prepay}),
    ] {
        let (status, answer) = control(&app, "/__sandbox/pay/pay", body).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some("invalid_body"))
        );
    }
    let (status, _) = control(&app, "/__sandbox/pay/pay", json!({"prepay_id": "wx404"})).await;
    assert_eq!(status, 404);

    let (status, _) = control(&app, "/__sandbox/pay/pay", json!({"prepay_id": package})).await;
    assert_eq!(status, 200);
    let paid = client.transaction(&shop, "order000010").await.unwrap();
    assert_eq!(paid.trade_state, "SUCCESS");
    app.stop().await.unwrap();
}
