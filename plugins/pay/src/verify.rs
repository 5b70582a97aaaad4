//! Checking WeChat Pay's signature on a response or a notification: the
//! `Wechatpay-*` headers against the raw body bytes.

use weapp::actix_web::http::header::HeaderMap as ActixHeaders;
use weapp::crypto::wechatpay;

use crate::merchant::Merchant;

/// `Wechatpay-Timestamp`.
pub const TIMESTAMP: &str = "Wechatpay-Timestamp";
/// `Wechatpay-Nonce`.
pub const NONCE: &str = "Wechatpay-Nonce";
/// `Wechatpay-Signature`.
pub const SIGNATURE: &str = "Wechatpay-Signature";
/// `Wechatpay-Serial`: which key signed.
pub const SERIAL: &str = "Wechatpay-Serial";

/// Why a signature was not accepted; each has a stable reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unverified {
    /// A `Wechatpay-*` header is missing.
    MissingHeaders,
    /// `Wechatpay-Timestamp` is not a number or too far from our clock.
    StaleTimestamp,
    /// `Wechatpay-Serial` names no key we trust.
    UnknownSerial,
    /// The signature does not match the body.
    BadSignature,
}

impl Unverified {
    /// Stable reason code.
    pub fn code(self) -> &'static str {
        match self {
            Unverified::MissingHeaders => "missing_signature",
            Unverified::StaleTimestamp => "stale_timestamp",
            Unverified::UnknownSerial => "unknown_serial",
            Unverified::BadSignature => "invalid_signature",
        }
    }
}

/// The four signature headers of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// `Wechatpay-Timestamp`.
    pub timestamp: String,
    /// `Wechatpay-Nonce`.
    pub nonce: String,
    /// `Wechatpay-Signature`.
    pub signature: String,
    /// `Wechatpay-Serial`.
    pub serial: String,
}

impl SignatureHeaders {
    /// Reads them with `get` (one function for actix's and reqwest's header maps).
    pub fn read<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, Unverified> {
        let field = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or(Unverified::MissingHeaders)
        };
        Ok(SignatureHeaders {
            timestamp: field(TIMESTAMP)?,
            nonce: field(NONCE)?,
            signature: field(SIGNATURE)?,
            serial: field(SERIAL)?,
        })
    }

    /// From an incoming request's headers.
    pub fn from_request(headers: &ActixHeaders) -> Result<Self, Unverified> {
        Self::read(|name| headers.get(name).and_then(|v| v.to_str().ok()))
    }

    /// From a response's headers.
    pub fn from_response(headers: &reqwest::header::HeaderMap) -> Result<Self, Unverified> {
        Self::read(|name| headers.get(name).and_then(|v| v.to_str().ok()))
    }

    /// Checks the timestamp against `now_s`, then the signature over `body` with the
    /// merchant's trusted key that `Wechatpay-Serial` names.
    pub fn verify(
        &self,
        merchant: &Merchant,
        body: &[u8],
        now_s: i64,
        max_skew_s: u64,
    ) -> Result<(), Unverified> {
        let timestamp: i64 = self
            .timestamp
            .parse()
            .map_err(|_| Unverified::StaleTimestamp)?;
        if !weapp::clock::within(now_s, timestamp, max_skew_s) {
            return Err(Unverified::StaleTimestamp);
        }
        let key = merchant
            .platform
            .key(&self.serial, now_s)
            .ok_or(Unverified::UnknownSerial)?;
        let message = wechatpay::response_message(&self.timestamp, &self.nonce, body);
        key.verify(&message, &self.signature)
            .map_err(|_| Unverified::BadSignature)
    }
}
