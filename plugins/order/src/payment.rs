//! Authenticating the payment provider's notifications.
//!
//! The provider signs each notification:
//! `X-Pay-Signature = hex(HMAC-SHA256(order.payment.secret, X-Pay-Timestamp + "\n" + body))`,
//! with `X-Pay-Timestamp` in Unix seconds. A notification outside
//! `order.payment.max_skew_s` of our clock is refused, which bounds replays; replaying
//! within the window is harmless because applying a payment is idempotent.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use weapp::actix_web::http::header::HeaderMap;

use crate::config::PaymentConfig;

/// Header with the Unix time the provider signed at.
pub const TIMESTAMP_HEADER: &str = "X-Pay-Timestamp";
/// Header with the hex HMAC.
pub const SIGNATURE_HEADER: &str = "X-Pay-Signature";

/// The signature of `body` at `timestamp`, as the provider computes it.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(body);
    weapp::crypto::hex(&mac.finalize().into_bytes())
}

/// Checks a notification's headers against its body.
pub fn verify(
    config: &PaymentConfig,
    headers: &HeaderMap,
    body: &[u8],
    now_s: i64,
) -> Result<(), weapp::Error> {
    if config.secret.is_empty() {
        return Err(weapp::Error::unavailable(
            "payment_not_configured",
            "order.payment.secret is not configured",
        ));
    }
    let refused = |message: &str| {
        weapp::Error::http(
            weapp::actix_web::http::StatusCode::UNAUTHORIZED,
            "invalid_signature",
            message.to_owned(),
        )
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let timestamp: i64 = header(TIMESTAMP_HEADER)
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| refused("X-Pay-Timestamp is missing or not a number"))?;
    let max_skew_s = u64::try_from(config.max_skew_s).unwrap_or(0);
    if !weapp::clock::within(now_s, timestamp, max_skew_s) {
        return Err(refused("X-Pay-Timestamp is outside the accepted window"));
    }
    let given = header(SIGNATURE_HEADER)
        .map(|s| s.trim().to_ascii_lowercase())
        .ok_or_else(|| refused("X-Pay-Signature is missing"))?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(config.secret.expose().as_bytes())
        .expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(body);
    let given = decode_hex(&given).ok_or_else(|| refused("X-Pay-Signature is not hex"))?;
    // verify_slice compares in constant time.
    mac.verify_slice(&given)
        .map_err(|_| refused("X-Pay-Signature does not match the body"))
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use weapp::actix_web::http::header::{HeaderName, HeaderValue};
    use weapp::config::Secret;

    fn headers(timestamp: i64, signature: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            HeaderName::from_static("x-pay-timestamp"),
            HeaderValue::from_str(&timestamp.to_string()).unwrap(),
        );
        map.insert(
            HeaderName::from_static("x-pay-signature"),
            HeaderValue::from_str(signature).unwrap(),
        );
        map
    }

    #[test]
    fn a_signed_body_verifies_and_a_changed_one_does_not() {
        let config = PaymentConfig {
            secret: Secret::new("s3cret"),
            max_skew_s: 300,
        };
        let body = br#"{"order_id":1,"transaction_id":"t","amount_fen":100}"#;
        let sig = sign("s3cret", 1_000, body);
        assert!(verify(&config, &headers(1_000, &sig), body, 1_100).is_ok());
        assert!(verify(&config, &headers(1_000, &sig), b"{}", 1_100).is_err());
        assert!(
            verify(&config, &headers(1_000, &sig), body, 1_400).is_err(),
            "stale"
        );
        assert!(verify(&config, &headers(1_000, "zz"), body, 1_000).is_err());
        let unset = PaymentConfig::default();
        assert!(verify(&unset, &headers(1_000, &sig), body, 1_000).is_err());
    }
}
