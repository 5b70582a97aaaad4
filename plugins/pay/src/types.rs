//! WeChat Pay API v3's JSON shapes, as the API reference defines them (the fields
//! weapp uses; unknown fields are ignored, since WeChat Pay adds fields freely).

use serde::{Deserialize, Serialize};

/// `amount` of a JSAPI order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderAmount {
    /// Total in fen.
    pub total: i64,
    /// `CNY`.
    #[serde(default = "cny")]
    pub currency: String,
}

fn cny() -> String {
    "CNY".to_owned()
}

/// `payer` of a JSAPI order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payer {
    /// The payer's openid in `appid`.
    pub openid: String,
}

/// `POST /v3/pay/transactions/jsapi`'s body (without `appid`, `mchid` and
/// `notify_url`, which come from the merchant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsapiOrder {
    /// What is bought, shown to the payer (up to 127 characters).
    pub description: String,
    /// The merchant's order number: 6 to 32 of `[0-9A-Za-z_-|*]`, unique per merchant.
    pub out_trade_no: String,
    /// RFC 3339 time after which the prepay can no longer be paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_expire: Option<String>,
    /// Returned as is in the notification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach: Option<String>,
    /// Amount.
    pub amount: OrderAmount,
    /// Who pays.
    pub payer: Payer,
}

/// `amount` of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionAmount {
    /// Order total in fen.
    pub total: i64,
    /// What the payer paid in fen (after coupons).
    #[serde(default)]
    pub payer_total: Option<i64>,
    /// `CNY`.
    #[serde(default = "cny")]
    pub currency: String,
}

/// A transaction, as queried or as notified (`original_type` `transaction`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// AppID.
    pub appid: String,
    /// Merchant id.
    pub mchid: String,
    /// The merchant's order number.
    pub out_trade_no: String,
    /// WeChat Pay's transaction id, once paid.
    #[serde(default)]
    pub transaction_id: Option<String>,
    /// `JSAPI`, …
    #[serde(default)]
    pub trade_type: Option<String>,
    /// `SUCCESS`, `REFUND`, `NOTPAY`, `CLOSED`, `REVOKED`, `USERPAYING`, `PAYERROR`.
    pub trade_state: String,
    /// Human-readable state.
    #[serde(default)]
    pub trade_state_desc: Option<String>,
    /// RFC 3339 payment time.
    #[serde(default)]
    pub success_time: Option<String>,
    /// The merchant's `attach`.
    #[serde(default)]
    pub attach: Option<String>,
    /// Who paid.
    #[serde(default)]
    pub payer: Option<Payer>,
    /// Amounts; absent for an unpaid order.
    #[serde(default)]
    pub amount: Option<TransactionAmount>,
}

impl Transaction {
    /// Whether it is paid (`SUCCESS`); a refunded one (`REFUND`) was paid too.
    pub fn is_paid(&self) -> bool {
        matches!(self.trade_state.as_str(), "SUCCESS" | "REFUND")
    }
}

/// `amount` of a refund request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequestAmount {
    /// Refunded now, fen.
    pub refund: i64,
    /// The order's total, fen.
    pub total: i64,
    /// `CNY`.
    pub currency: String,
}

/// `POST /v3/refund/domestic/refunds`'s body (without `notify_url`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    /// The order to refund, by the merchant's number.
    pub out_trade_no: String,
    /// The merchant's refund number, unique per merchant.
    pub out_refund_no: String,
    /// Shown to the payer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Amounts.
    pub amount: RefundRequestAmount,
}

/// `amount` of a refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundAmount {
    /// The order's total, fen.
    pub total: i64,
    /// Refunded, fen.
    pub refund: i64,
}

/// A refund, as created or queried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// WeChat Pay's refund id.
    pub refund_id: String,
    /// The merchant's refund number.
    pub out_refund_no: String,
    /// WeChat Pay's transaction id.
    pub transaction_id: String,
    /// The merchant's order number.
    pub out_trade_no: String,
    /// `SUCCESS`, `CLOSED`, `PROCESSING`, `ABNORMAL`.
    pub status: String,
    /// RFC 3339 completion time.
    #[serde(default)]
    pub success_time: Option<String>,
    /// Amounts.
    pub amount: RefundAmount,
}

/// A refund notification's resource (`original_type` `refund`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundNotice {
    /// Merchant id.
    pub mchid: String,
    /// The merchant's order number.
    pub out_trade_no: String,
    /// WeChat Pay's transaction id.
    pub transaction_id: String,
    /// The merchant's refund number.
    pub out_refund_no: String,
    /// WeChat Pay's refund id.
    pub refund_id: String,
    /// `SUCCESS`, `CLOSED`, `ABNORMAL`.
    pub refund_status: String,
    /// RFC 3339 completion time.
    #[serde(default)]
    pub success_time: Option<String>,
    /// Amounts.
    pub amount: RefundAmount,
}

/// An `AEAD_AES_256_GCM` resource, in notifications and certificate downloads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedResource {
    /// `AEAD_AES_256_GCM`.
    pub algorithm: String,
    /// Base64 ciphertext with the tag.
    pub ciphertext: String,
    /// Associated data (may be empty).
    #[serde(default)]
    pub associated_data: String,
    /// The 12-character nonce.
    pub nonce: String,
    /// `transaction`, `refund`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_type: Option<String>,
}

/// A notification as WeChat Pay posts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationEnvelope {
    /// The notification's id (the same on every retry).
    pub id: String,
    /// RFC 3339 creation time.
    pub create_time: String,
    /// `TRANSACTION.SUCCESS`, `REFUND.SUCCESS`, `REFUND.ABNORMAL`, `REFUND.CLOSED`.
    pub event_type: String,
    /// `encrypt-resource`.
    pub resource_type: String,
    /// The encrypted payload.
    pub resource: EncryptedResource,
    /// Human-readable summary.
    #[serde(default)]
    pub summary: String,
}

/// One entry of `GET /v3/certificates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateEntry {
    /// The certificate's serial.
    pub serial_no: String,
    /// RFC 3339.
    pub effective_time: String,
    /// RFC 3339.
    pub expire_time: String,
    /// The PEM, encrypted with the APIv3 key.
    pub encrypt_certificate: EncryptedResource,
}

/// `GET /v3/certificates`' answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateList {
    /// The certificates.
    pub data: Vec<CertificateEntry>,
}

/// WeChat Pay's error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// e.g. `PARAM_ERROR`.
    pub code: String,
    /// Human-readable.
    #[serde(default)]
    pub message: String,
}
