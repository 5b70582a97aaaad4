//! Helpers shared by the pay tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use weapp::crypto::wechatpay::{self, ApiV3Key, MerchantKey};
use weapp::testing::{TestApp, TestAppBuilder};
use weapp_pay::types::{JsapiOrder, OrderAmount, Payer, RefundNotice, Transaction};
use weapp_pay::{Merchant, PaymentSink, Payments, samples};

/// The test merchant's id.
pub(crate) const MCHID: &str = "1900000109";

/// A test app with one merchant, `shop`, on the sandbox's sample keys.
pub(crate) fn builder() -> TestAppBuilder {
    TestApp::builder().set("pay.merchants.shop.mchid", MCHID)
}

/// The plugin's service inside the app.
pub(crate) fn payments(app: &TestApp) -> Arc<Payments> {
    app.ctx.get::<Payments>().expect("the pay plugin started")
}

/// The `shop` merchant.
pub(crate) fn shop(app: &TestApp) -> Arc<Merchant> {
    payments(app)
        .merchant("shop")
        .expect("merchant shop")
        .clone()
}

/// A JSAPI order of `total` fen for `openid`.
pub(crate) fn jsapi_order(out_trade_no: &str, total: i64, openid: &str) -> JsapiOrder {
    JsapiOrder {
        description: "weapp test".into(),
        out_trade_no: out_trade_no.into(),
        time_expire: None,
        attach: None,
        amount: OrderAmount {
            total,
            currency: "CNY".into(),
        },
        payer: Payer {
            openid: openid.into(),
        },
    }
}

/// What a [`RecordingSink`] was given.
#[derive(Debug, Clone)]
pub(crate) enum Seen {
    Paid(String, Transaction),
    Refund(String, RefundNotice),
}

/// A sink that remembers everything, answering `Ok` (or a failure, when told).
#[derive(Default)]
pub(crate) struct RecordingSink {
    pub seen: Mutex<Vec<Seen>>,
    pub fail: Mutex<bool>,
}

#[weapp::async_trait::async_trait]
impl PaymentSink for RecordingSink {
    async fn paid(&self, merchant: &Merchant, transaction: &Transaction) -> weapp::Result<()> {
        self.record(Seen::Paid(merchant.name.clone(), transaction.clone()))
    }

    async fn refunded(&self, merchant: &Merchant, refund: &RefundNotice) -> weapp::Result<()> {
        self.record(Seen::Refund(merchant.name.clone(), refund.clone()))
    }
}

impl RecordingSink {
    fn record(&self, seen: Seen) -> weapp::Result<()> {
        if *self.fail.lock().unwrap() {
            return Err(weapp::Error::unavailable(
                "database_unavailable",
                "try later",
            ));
        }
        self.seen.lock().unwrap().push(seen);
        Ok(())
    }

    pub(crate) fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// Installs a recording sink in the app.
pub(crate) fn record(app: &TestApp) -> Arc<RecordingSink> {
    let sink = Arc::new(RecordingSink::default());
    assert!(payments(app).set_sink(sink.clone()), "the first sink");
    sink
}

/// `POST` a control endpoint of the sandbox; its JSON answer.
pub(crate) async fn control(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Every delivery the sandbox attempted.
pub(crate) async fn deliveries(app: &TestApp) -> Vec<Value> {
    let answer: Value = app
        .client
        .get(app.url("/__sandbox/pay/notifications"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["deliveries"].as_array().cloned().unwrap_or_default()
}

/// Waits until the sandbox has attempted `n` deliveries; returns them.
pub(crate) async fn wait_for_deliveries(app: &TestApp, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let seen = deliveries(app).await;
        if seen.len() >= n {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("fewer than {n} deliveries: {:?}", deliveries(app).await);
}

/// A notification as WeChat Pay would send it for `resource`, signed with
/// platform key A under `serial` at `timestamp`, encrypted with `apiv3`:
/// `(headers, body)`.
pub(crate) fn notification(
    event_type: &str,
    resource: &Value,
    apiv3: &str,
    serial: &str,
    timestamp: i64,
) -> (Vec<(&'static str, String)>, String) {
    let key = ApiV3Key::new(apiv3.as_bytes()).unwrap();
    let nonce = "0123456789ab";
    let ciphertext = key
        .encrypt("transaction", nonce, resource.to_string().as_bytes())
        .unwrap();
    let body = json!({
        "id": "EV-2018022511223320873",
        "create_time": "2026-11-30T10:00:00+08:00",
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "支付成功",
        "resource": {
            "original_type": "transaction",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": ciphertext,
            "associated_data": "transaction",
            "nonce": nonce
        }
    })
    .to_string();
    let headers = sign(&body, serial, timestamp);
    (headers, body)
}

/// `Wechatpay-*` headers for `body` signed with platform key A.
pub(crate) fn sign(body: &str, serial: &str, timestamp: i64) -> Vec<(&'static str, String)> {
    let key = MerchantKey::from_pem(samples::PLATFORM_A_KEY_PEM).unwrap();
    let nonce = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS";
    let message = wechatpay::response_message(&timestamp.to_string(), nonce, body.as_bytes());
    vec![
        ("Wechatpay-Timestamp", timestamp.to_string()),
        ("Wechatpay-Nonce", nonce.to_owned()),
        ("Wechatpay-Signature", key.sign(&message)),
        ("Wechatpay-Serial", serial.to_owned()),
    ]
}

/// A paid transaction of the test merchant.
pub(crate) fn paid_transaction(out_trade_no: &str, total: i64) -> Value {
    json!({
        "appid": weapp::testing::SANDBOX_APPID,
        "mchid": MCHID,
        "out_trade_no": out_trade_no,
        "transaction_id": "4200000000202611300000000001",
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "success_time": "2026-11-30T10:00:00+08:00",
        "payer": {"openid": "o_payer"},
        "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"}
    })
}

/// Posts a notification to `/api/pay/notify/{merchant}`: `(status, JSON answer)`.
pub(crate) async fn post_notification(
    app: &TestApp,
    merchant: &str,
    headers: &[(&'static str, String)],
    body: &str,
) -> (u16, Value) {
    let mut request = app
        .client
        .post(app.url(&format!("/api/pay/notify/{merchant}")))
        .header("Content-Type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}
