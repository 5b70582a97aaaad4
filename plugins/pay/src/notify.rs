//! Payment and refund notifications: verified on the raw body, decrypted with the
//! APIv3 key, checked to be for this merchant, then handed to the app's
//! [`PaymentSink`](crate::PaymentSink).

use std::sync::OnceLock;

use prometheus::IntCounterVec;
use weapp::actix_web::http::StatusCode;

use crate::merchant::Merchant;
use crate::types::{NotificationEnvelope, RefundNotice, Transaction};
use crate::verify::Unverified;

/// What a verified notification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `TRANSACTION.SUCCESS`: a payment.
    Paid(Transaction),
    /// `REFUND.SUCCESS`, `REFUND.ABNORMAL` or `REFUND.CLOSED`: a refund's outcome.
    Refund(RefundNotice),
    /// Another event type, acknowledged and ignored.
    Other(String),
}

/// Why a notification was refused; WeChat Pay retries it later.
#[derive(Debug)]
pub enum Refusal {
    /// The path names no configured merchant.
    UnknownMerchant,
    /// The signature headers did not verify.
    Unverified(Unverified),
    /// The body is not a notification.
    InvalidBody(String),
    /// The resource does not decrypt with this merchant's APIv3 key.
    Undecryptable,
    /// The resource is for another merchant or app.
    OtherMerchant,
    /// No sink is installed (no plugin takes payments), or it failed.
    NotApplied(weapp::Error),
}

impl Refusal {
    /// The HTTP status WeChat Pay gets.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::UnknownMerchant => StatusCode::NOT_FOUND,
            Refusal::Unverified(_) => StatusCode::UNAUTHORIZED,
            Refusal::InvalidBody(_) | Refusal::Undecryptable | Refusal::OtherMerchant => {
                StatusCode::BAD_REQUEST
            }
            Refusal::NotApplied(e) => {
                use weapp::actix_web::ResponseError;
                e.status_code()
            }
        }
    }

    /// Stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::UnknownMerchant => "unknown_merchant",
            Refusal::Unverified(u) => u.code(),
            Refusal::InvalidBody(_) => "invalid_body",
            Refusal::Undecryptable => "undecryptable",
            Refusal::OtherMerchant => "other_merchant",
            Refusal::NotApplied(e) => e.code(),
        }
    }

    /// What the `message` says; nothing an attacker could probe keys with.
    pub fn message(&self) -> String {
        match self {
            Refusal::UnknownMerchant => "no such merchant".into(),
            Refusal::Unverified(_) => "signature not accepted".into(),
            Refusal::InvalidBody(e) => format!("not a notification: {e}"),
            Refusal::Undecryptable => "resource not accepted".into(),
            Refusal::OtherMerchant => "notification for another merchant".into(),
            Refusal::NotApplied(e) => e.to_string(),
        }
    }
}

/// Parses, decrypts and checks a verified body for `merchant`.
pub fn open(merchant: &Merchant, body: &[u8]) -> Result<(String, Notice), Refusal> {
    let envelope: NotificationEnvelope =
        serde_json::from_slice(body).map_err(|e| Refusal::InvalidBody(e.to_string()))?;
    let resource = &envelope.resource;
    if resource.algorithm != "AEAD_AES_256_GCM" {
        return Err(Refusal::InvalidBody(format!(
            "unknown algorithm {}",
            resource.algorithm
        )));
    }
    let plaintext = merchant
        .apiv3_key()
        .decrypt(
            &resource.associated_data,
            &resource.nonce,
            &resource.ciphertext,
        )
        .map_err(|_| Refusal::Undecryptable)?;
    let invalid = |e: serde_json::Error| Refusal::InvalidBody(format!("resource: {e}"));
    let notice = match envelope.event_type.as_str() {
        "TRANSACTION.SUCCESS" => {
            let transaction: Transaction = serde_json::from_slice(&plaintext).map_err(invalid)?;
            if transaction.mchid != merchant.mchid || transaction.appid != merchant.appid {
                return Err(Refusal::OtherMerchant);
            }
            Notice::Paid(transaction)
        }
        event if event.starts_with("REFUND.") => {
            let refund: RefundNotice = serde_json::from_slice(&plaintext).map_err(invalid)?;
            if refund.mchid != merchant.mchid {
                return Err(Refusal::OtherMerchant);
            }
            Notice::Refund(refund)
        }
        other => Notice::Other(other.to_owned()),
    };
    Ok((envelope.id, notice))
}

/// `pay_notifications_total{outcome}`: notifications by outcome (`applied`,
/// `ignored`, or the refusal's reason code).
pub(crate) fn counted(outcome: &str) {
    static COUNTER: OnceLock<IntCounterVec> = OnceLock::new();
    COUNTER
        .get_or_init(|| {
            let counter = IntCounterVec::new(
                prometheus::Opts::new(
                    "pay_notifications_total",
                    "WeChat Pay notifications received, by outcome.",
                ),
                &["outcome"],
            )
            .expect("valid metric");
            // Registration fails only for a duplicate name, which cannot happen here.
            let _ = prometheus::default_registry().register(Box::new(counter.clone()));
            counter
        })
        .with_label_values(&[outcome])
        .inc();
}
