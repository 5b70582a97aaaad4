//! An offline WeChat Pay API v3 for development and tests, part of the embedded
//! WeChat sandbox (mounted only with `wechat.sandbox`, development only).
//!
//! It answers WeChat Pay's paths with its JSON shapes and error codes
//! (`POST /v3/pay/transactions/jsapi`, `GET /v3/pay/transactions/out-trade-no/{no}`,
//! `POST …/{no}/close`, `POST /v3/refund/domestic/refunds`,
//! `GET /v3/refund/domestic/refunds/{no}`, `GET /v3/certificates`), checks the
//! merchant's signature on every request (`SIGN_ERROR`), and signs every answer and
//! notification with its own platform keys (the published samples). Controls:
//!
//! | endpoint | purpose |
//! | --- | --- |
//! | `POST /__sandbox/pay/pay` | the user pays a prepay: `{out_trade_no or prepay_id, mchid?, amount?, openid?}`; the signed, encrypted notification goes to its `notify_url` before the answer (after it, with a `delay_ms` fault) |
//! | `POST /__sandbox/pay/cancel` | the user closes the payment sheet: `{out_trade_no or prepay_id}` (no notification, as on WeChat) |
//! | `POST`/`DELETE /__sandbox/pay/faults` | how the next notifications are delivered: `{copies, delay_ms, lost, bad_signature, wrong_apiv3_key, other_mchid, timestamp_offset_s, hold}` / back to normal |
//! | `POST /__sandbox/pay/release` | send held notifications, `{"order": "reverse"}` by default |
//! | `POST /__sandbox/pay/signer` | `{"signer": "public_key" \| "certificate_a" \| "certificate_b"}`: which key and serial sign from now on |
//! | `GET /__sandbox/pay/notifications` | every delivery attempt and the app's answer |
//! | `GET /__sandbox/pay/trades` | the transactions, as `GET /v3/pay/…` shows them |

mod api;
mod control;
mod deliver;
mod state;

use std::sync::{Arc, Mutex, MutexGuard};

use weapp::actix_web::{HttpRequest, HttpResponse, web};
use weapp::crypto::wechatpay::{self, MerchantKey, PlatformCertificate};

use crate::merchant::{Merchant, nonce, sample_key};
use crate::samples;
pub use deliver::signed_notification;
use state::{Signer, State};

/// The pay sandbox: cheap to clone, on the app's context when mounted.
#[derive(Clone)]
pub struct PaySandbox {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    merchants: Vec<Arc<Merchant>>,
    /// Where the embedded app listens: notifications go to their `notify_url`'s
    /// path there, as WeChat Pay would reach the public address.
    app_base_url: String,
    key_a: MerchantKey,
    key_b: MerchantKey,
    certificate_a: PlatformCertificate,
    certificate_b: PlatformCertificate,
    http: reqwest::Client,
}

impl PaySandbox {
    /// A sandbox serving `merchants`, delivering notifications to `app_base_url`.
    pub fn new(app_base_url: &str, merchants: Vec<Arc<Merchant>>) -> weapp::Result<PaySandbox> {
        let certificate = |pem: &str| {
            PlatformCertificate::from_pem(pem)
                .map_err(|e| weapp::Error::internal(format!("sample certificate: {e}")))
        };
        Ok(PaySandbox {
            inner: Arc::new(Inner {
                state: Mutex::new(State::new()),
                merchants,
                app_base_url: app_base_url.trim_end_matches('/').to_owned(),
                key_a: sample_key(samples::PLATFORM_A_KEY_PEM)?,
                key_b: sample_key(samples::PLATFORM_B_KEY_PEM)?,
                certificate_a: certificate(samples::PLATFORM_A_CERT_PEM)?,
                certificate_b: certificate(samples::PLATFORM_B_CERT_PEM)?,
                http: reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(10))
                    .build()
                    .map_err(|e| weapp::Error::internal(format!("sandbox client: {e}")))?,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn merchant(&self, mchid: &str) -> Option<&Arc<Merchant>> {
        self.inner.merchants.iter().find(|m| m.mchid == mchid)
    }

    /// The key and serial signing now.
    fn signer(&self) -> (&MerchantKey, String) {
        match self.lock().signer {
            Signer::PublicKey => (&self.inner.key_a, samples::PUBLIC_KEY_ID.to_owned()),
            Signer::CertificateA => (
                &self.inner.key_a,
                self.inner.certificate_a.serial_no.clone(),
            ),
            Signer::CertificateB => (
                &self.inner.key_b,
                self.inner.certificate_b.serial_no.clone(),
            ),
        }
    }

    /// `Wechatpay-*` headers for `body`, signed now (or `offset_s` away, or with a
    /// key nobody trusts).
    fn signature_headers(
        &self,
        body: &[u8],
        offset_s: i64,
        forged: bool,
    ) -> Vec<(&'static str, String)> {
        let (key, serial) = self.signer();
        let timestamp = (chrono::Utc::now().timestamp() + offset_s).to_string();
        let nonce = nonce();
        let message = wechatpay::response_message(&timestamp, &nonce, body);
        let signature = if forged {
            // Key B signing under key A's serial: a signature by a key not trusted
            // for that serial.
            let other = if std::ptr::eq(key, &self.inner.key_a) {
                &self.inner.key_b
            } else {
                &self.inner.key_a
            };
            other.sign(&message)
        } else {
            key.sign(&message)
        };
        vec![
            ("Wechatpay-Timestamp", timestamp),
            ("Wechatpay-Nonce", nonce),
            ("Wechatpay-Signature", signature),
            ("Wechatpay-Serial", serial),
            (
                "Wechatpay-Signature-Type",
                "WECHATPAY2-SHA256-RSA2048".to_owned(),
            ),
        ]
    }

    /// A signed JSON answer.
    fn answer(&self, status: u16, body: &serde_json::Value) -> HttpResponse {
        let text = body.to_string();
        self.answer_raw(status, text)
    }

    fn answer_raw(&self, status: u16, text: String) -> HttpResponse {
        let status = weapp::actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(weapp::actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = HttpResponse::build(status);
        for header in self.signature_headers(text.as_bytes(), 0, false) {
            response.insert_header(header);
        }
        response.insert_header(("Request-ID", format!("sandbox-{}", nonce())));
        if text.is_empty() {
            response.finish()
        } else {
            response.content_type("application/json").body(text)
        }
    }

    /// WeChat Pay's error answer.
    fn error(&self, status: u16, code: &str, message: &str) -> HttpResponse {
        self.answer(
            status,
            &serde_json::json!({"code": code, "message": message}),
        )
    }

    /// Checks the merchant's `Authorization` over the request; the merchant, or the
    /// `SIGN_ERROR` answer.
    fn authenticate(&self, req: &HttpRequest, body: &[u8]) -> Result<Arc<Merchant>, HttpResponse> {
        let refused = |message: &str| self.error(401, "SIGN_ERROR", message);
        let header = req
            .headers()
            .get("Authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| refused("Authorization 缺失"))?;
        let fields =
            parse_authorization(header).ok_or_else(|| refused("Authorization 格式错误"))?;
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let (Some(mchid), Some(nonce), Some(timestamp), Some(serial), Some(signature)) = (
            field("mchid"),
            field("nonce_str"),
            field("timestamp"),
            field("serial_no"),
            field("signature"),
        ) else {
            return Err(refused("Authorization 缺少字段"));
        };
        let merchant = self
            .merchant(mchid)
            .cloned()
            .ok_or_else(|| self.error(400, "MCH_NOT_EXISTS", "商户号不存在"))?;
        if serial != merchant.serial_no {
            return Err(refused("商户证书序列号有误"));
        }
        let timestamp: i64 = timestamp.parse().map_err(|_| refused("timestamp 无效"))?;
        if !weapp::clock::within(chrono::Utc::now().timestamp(), timestamp, 300) {
            return Err(refused("timestamp 已过期"));
        }
        let path = req
            .uri()
            .path_and_query()
            .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned());
        let body = std::str::from_utf8(body).map_err(|_| refused("body 不是 UTF-8"))?;
        let message =
            wechatpay::request_message(req.method().as_str(), &path, timestamp, nonce, body);
        merchant
            .public_key()
            .verify(message.as_bytes(), signature)
            .map_err(|_| refused("签名错误"))?;
        Ok(merchant)
    }
}

/// `WECHATPAY2-SHA256-RSA2048 k="v",…` as pairs.
fn parse_authorization(header: &str) -> Option<Vec<(String, String)>> {
    let rest = header.strip_prefix("WECHATPAY2-SHA256-RSA2048 ")?;
    rest.split(',')
        .map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            let value = value.strip_prefix('"')?.strip_suffix('"')?;
            Some((key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Mounts the sandbox's WeChat Pay paths and controls.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    api::routes(cfg);
    control::routes(cfg);
}

/// The app's pay sandbox, or 404 when this app does not run one.
fn sandbox_of(ctx: &weapp::AppContext) -> Result<Arc<PaySandbox>, HttpResponse> {
    ctx.get::<PaySandbox>().ok_or_else(|| {
        HttpResponse::NotFound().json(serde_json::json!({
            "code": "not_found", "message": "the pay sandbox is not running"
        }))
    })
}
