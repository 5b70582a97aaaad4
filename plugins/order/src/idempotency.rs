//! `Idempotency-Key`: a retried `POST /api/orders` gets the first attempt's answer.
//!
//! Keys are per user. The key's row is inserted in the order's own transaction, with
//! the response, so the two commit together: a concurrent request with the same key
//! waits on the key's unique index until the first commits, then reads its response.
//! A business refusal (out of stock) is stored the same way after the rollback, so a
//! retry is refused identically.

use sha2::{Digest, Sha256};
use weapp::actix_web::http::header::HeaderMap;

use crate::model::OrderLine;

/// Header carrying the client's key.
pub const HEADER: &str = "Idempotency-Key";
/// Longest accepted key.
pub const MAX_LEN: usize = 128;

/// A validated `Idempotency-Key`: 1–128 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

/// Its schema in the OpenAPI document: what [`IdempotencyKey::parse`] accepts.
impl utoipa::PartialSchema for IdempotencyKey {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_LEN))
            // Visible ASCII, as `is_ascii_graphic`.
            .pattern(Some("^[!-~]+$"))
            .examples([serde_json::json!("5f0c6e2a-9b1d-4c3e-8a7f-2d4b6c8e0a1f")])
            .into()
    }
}

impl IdempotencyKey {
    /// Reads and validates the header.
    pub fn from_headers(headers: &HeaderMap) -> Result<IdempotencyKey, weapp::Error> {
        let value = headers.get(HEADER).ok_or_else(|| {
            weapp::Error::bad_request(
                "missing_idempotency_key",
                "POST /api/orders needs an Idempotency-Key header (e.g. a UUID per order attempt)",
            )
        })?;
        let invalid = || {
            weapp::Error::bad_request(
                "invalid_idempotency_key",
                format!("Idempotency-Key must be 1 to {MAX_LEN} visible ASCII characters"),
            )
        };
        let key = value.to_str().map_err(|_| invalid())?;
        IdempotencyKey::parse(key).ok_or_else(invalid)
    }

    /// Validates a key.
    pub fn parse(key: &str) -> Option<IdempotencyKey> {
        let ok =
            !key.is_empty() && key.len() <= MAX_LEN && key.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| IdempotencyKey(key.to_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// SHA-256 of the canonical request: lines sorted by product, `id:qty;` each, so the
/// same order in another JSON spelling is the same request.
pub fn request_hash(lines: &[OrderLine]) -> Vec<u8> {
    let mut sorted = lines.to_vec();
    sorted.sort_by_key(|l| l.product_id);
    let mut hasher = Sha256::new();
    for line in sorted {
        hasher.update(format!("{}:{};", line.product_id, line.qty).as_bytes());
    }
    hasher.finalize().to_vec()
}

/// A response kept under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
    /// Whether this answer repeats an earlier request's.
    pub replayed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bounded_visible_ascii() {
        assert!(IdempotencyKey::parse("9b2f0c1e-0d4c-4d43-a3a5-6a1d5bb9a0c2").is_some());
        assert!(IdempotencyKey::parse("").is_none());
        assert!(IdempotencyKey::parse("has space").is_none());
        assert!(IdempotencyKey::parse("中文").is_none());
        assert!(IdempotencyKey::parse(&"k".repeat(MAX_LEN)).is_some());
        assert!(IdempotencyKey::parse(&"k".repeat(MAX_LEN + 1)).is_none());
    }

    #[test]
    fn the_hash_ignores_line_order_but_not_quantities() {
        let a = OrderLine {
            product_id: 1,
            qty: 2,
        };
        let b = OrderLine {
            product_id: 2,
            qty: 1,
        };
        assert_eq!(request_hash(&[a, b]), request_hash(&[b, a]));
        let c = OrderLine {
            product_id: 1,
            qty: 3,
        };
        assert_ne!(request_hash(&[a, b]), request_hash(&[c, b]));
    }
}
