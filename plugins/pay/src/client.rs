//! The merchant-side WeChat Pay API v3 client: every request signed with the
//! merchant's key, every answer checked against WeChat Pay's signature before it is
//! believed.

use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;
use weapp::crypto::wechatpay::PlatformCertificate;

use crate::config::PayConfig;
use crate::error::PayError;
use crate::merchant::Merchant;
use crate::types::{CertificateList, JsapiOrder, Refund, RefundRequest, Transaction};
use crate::verify::{SignatureHeaders, Unverified};

/// Calls WeChat Pay (or the pay sandbox) at one base URL, for any merchant.
#[derive(Debug, Clone)]
pub struct PayClient {
    http: reqwest::Client,
    base_url: String,
    max_skew_s: u64,
}

/// How an answer's signature is checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    /// With the merchant's trusted keys.
    Trusted,
    /// The certificate download: with the certificates it carries.
    Bootstrap,
}

impl PayClient {
    /// A client for `base_url` with `[pay]`'s timeouts.
    pub fn new(config: &PayConfig, base_url: &str) -> Result<PayClient, PayError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .timeout(Duration::from_millis(config.timeout_ms))
            .user_agent(concat!("weapp-pay/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(PayClient {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            max_skew_s: config.max_skew_s,
        })
    }

    /// The base URL it calls.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `POST /v3/pay/transactions/jsapi`: a prepay for the mini program; its
    /// `prepay_id`.
    pub async fn jsapi(&self, merchant: &Merchant, order: &JsapiOrder) -> Result<String, PayError> {
        let mut body =
            serde_json::to_value(order).map_err(|e| PayError::Unexpected(e.to_string()))?;
        body["appid"] = merchant.appid.clone().into();
        body["mchid"] = merchant.mchid.clone().into();
        body["notify_url"] = merchant.notify_url.clone().into();
        #[derive(serde::Deserialize)]
        struct Prepay {
            prepay_id: String,
        }
        let prepay: Prepay = self
            .json(
                merchant,
                Method::POST,
                "/v3/pay/transactions/jsapi",
                Some(body),
            )
            .await?;
        Ok(prepay.prepay_id)
    }

    /// `GET /v3/pay/transactions/out-trade-no/{out_trade_no}`.
    pub async fn transaction(
        &self,
        merchant: &Merchant,
        out_trade_no: &str,
    ) -> Result<Transaction, PayError> {
        let path = format!(
            "/v3/pay/transactions/out-trade-no/{}?mchid={}",
            path_segment(out_trade_no)?,
            merchant.mchid
        );
        self.json(merchant, Method::GET, &path, None).await
    }

    /// `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close`: the prepay
    /// can no longer be paid.
    pub async fn close(&self, merchant: &Merchant, out_trade_no: &str) -> Result<(), PayError> {
        let path = format!(
            "/v3/pay/transactions/out-trade-no/{}/close",
            path_segment(out_trade_no)?
        );
        let body = serde_json::json!({"mchid": merchant.mchid});
        self.call(merchant, Method::POST, &path, Some(body), Check::Trusted)
            .await
            .map(|_| ())
    }

    /// `POST /v3/refund/domestic/refunds`.
    pub async fn refund(
        &self,
        merchant: &Merchant,
        request: &RefundRequest,
    ) -> Result<Refund, PayError> {
        let mut body =
            serde_json::to_value(request).map_err(|e| PayError::Unexpected(e.to_string()))?;
        body["notify_url"] = merchant.notify_url.clone().into();
        self.json(
            merchant,
            Method::POST,
            "/v3/refund/domestic/refunds",
            Some(body),
        )
        .await
    }

    /// `GET /v3/refund/domestic/refunds/{out_refund_no}`.
    pub async fn refund_status(
        &self,
        merchant: &Merchant,
        out_refund_no: &str,
    ) -> Result<Refund, PayError> {
        let path = format!(
            "/v3/refund/domestic/refunds/{}",
            path_segment(out_refund_no)?
        );
        self.json(merchant, Method::GET, &path, None).await
    }

    /// `GET /v3/certificates`: downloads, decrypts and installs the merchant's
    /// platform certificates; returns how many it trusts now.
    pub async fn refresh_certificates(&self, merchant: &Merchant) -> Result<usize, PayError> {
        let body = self
            .call(
                merchant,
                Method::GET,
                "/v3/certificates",
                None,
                Check::Bootstrap,
            )
            .await?;
        let certificates = open_certificates(merchant, &body)?;
        Ok(merchant.platform.replace_certificates(certificates))
    }

    async fn json<T: DeserializeOwned>(
        &self,
        merchant: &Merchant,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, PayError> {
        let bytes = self
            .call(merchant, method, path, body, Check::Trusted)
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| PayError::Unexpected(e.to_string()))
    }

    /// Sends a signed request; a 2xx answer's body once its signature is checked.
    async fn call(
        &self,
        merchant: &Merchant,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
        check: Check,
    ) -> Result<weapp::actix_web::web::Bytes, PayError> {
        let text = body.map(|b| b.to_string()).unwrap_or_default();
        let authorization = merchant.authorization(method.as_str(), path, &text);
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .header("Authorization", authorization)
            .header("Accept", "application/json");
        if !text.is_empty() {
            request = request
                .header("Content-Type", "application/json")
                .body(text);
        }
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        if !status.is_success() {
            let error: crate::types::ApiErrorBody =
                serde_json::from_slice(&bytes).unwrap_or_else(|_| crate::types::ApiErrorBody {
                    code: format!("HTTP_{}", status.as_u16()),
                    message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                });
            return Err(PayError::Api {
                status: status.as_u16(),
                code: error.code,
                message: error.message,
            });
        }
        let signed = SignatureHeaders::from_response(&headers)
            .map_err(|e| PayError::Unverified(e.code()))?;
        let now = chrono::Utc::now().timestamp();
        match check {
            Check::Trusted => {
                match signed.verify(merchant, &bytes, now, self.max_skew_s) {
                    // A rotated certificate: fetch the new ones, then try once more.
                    Err(Unverified::UnknownSerial) if merchant.uses_certificates => {
                        Box::pin(self.refresh_certificates(merchant)).await?;
                        signed.verify(merchant, &bytes, now, self.max_skew_s)
                    }
                    other => other,
                }
            }
            Check::Bootstrap => {
                // Trusted keys first (the public key, or the certificates held);
                // on first download, the certificate the answer names.
                match signed.verify(merchant, &bytes, now, self.max_skew_s) {
                    Err(Unverified::UnknownSerial) => {
                        let fresh = open_certificates(merchant, &bytes)?;
                        let probe = crate::platform_keys::PlatformKeys::new(None);
                        probe.replace_certificates(fresh);
                        let key = probe
                            .key(&signed.serial, now)
                            .ok_or(PayError::Unverified(Unverified::UnknownSerial.code()))?;
                        let message = weapp::crypto::wechatpay::response_message(
                            &signed.timestamp,
                            &signed.nonce,
                            &bytes,
                        );
                        key.verify(&message, &signed.signature)
                            .map_err(|_| Unverified::BadSignature)
                    }
                    other => other,
                }
            }
        }
        .map_err(|e| PayError::Unverified(e.code()))?;
        Ok(bytes)
    }
}

/// Decrypts the certificates of a `GET /v3/certificates` answer.
fn open_certificates(
    merchant: &Merchant,
    body: &[u8],
) -> Result<Vec<PlatformCertificate>, PayError> {
    let list: CertificateList =
        serde_json::from_slice(body).map_err(|e| PayError::Unexpected(e.to_string()))?;
    list.data
        .iter()
        .map(|entry| {
            let resource = &entry.encrypt_certificate;
            let pem = merchant
                .apiv3_key()
                .decrypt(
                    &resource.associated_data,
                    &resource.nonce,
                    &resource.ciphertext,
                )
                .map_err(|_| {
                    PayError::Unexpected("a certificate does not decrypt with the APIv3 key".into())
                })?;
            let pem = String::from_utf8(pem.to_vec())
                .map_err(|_| PayError::Unexpected("a certificate is not PEM".into()))?;
            PlatformCertificate::from_pem(&pem)
                .map_err(|e| PayError::Unexpected(format!("certificate {}: {e}", entry.serial_no)))
        })
        .collect()
}

/// A path segment from a merchant's number: WeChat Pay's alphabet only, so nothing
/// needs escaping and nothing can change the path.
fn path_segment(value: &str) -> Result<&str, PayError> {
    let fits = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*'));
    if fits {
        Ok(value)
    } else {
        Err(PayError::Unexpected(format!(
            "{value:?} is not a WeChat Pay order or refund number"
        )))
    }
}
