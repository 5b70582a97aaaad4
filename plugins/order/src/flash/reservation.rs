//! One reservation as Redis keeps it: a line of text in the sale's `held` hash (under
//! its order id) and in its queue stream (for the writers), and the short record kept
//! under its `Idempotency-Key` to answer a retry.

use weapp::crypto::hex;

/// A reserved order, not yet written to the database (or written, not yet settled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reserved {
    pub order_id: i64,
    pub user_id: i64,
    pub qty: i64,
    pub total_fen: i64,
    /// When it was reserved (Unix milliseconds): the order's `created_at`.
    pub created_at: i64,
    /// When it is cancelled unless paid (Unix milliseconds).
    pub expires_at: i64,
    /// The request's hash ([`crate::idempotency::request_hash`]).
    pub hash: Vec<u8>,
    /// The `Idempotency-Key`.
    pub key: String,
}

impl Reserved {
    /// `order:user:qty:total:created:expires:hash:key`. The key comes last because
    /// it may itself hold `:`. The sync script reads the user and qty fields.
    pub(crate) fn payload(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}:{}:{}:{}",
            self.order_id,
            self.user_id,
            self.qty,
            self.total_fen,
            self.created_at,
            self.expires_at,
            hex(&self.hash),
            self.key
        )
    }

    /// Reads a [`payload`](Self::payload); `None` for anything else.
    pub(crate) fn parse(text: &str) -> Option<Reserved> {
        let mut fields = text.splitn(8, ':');
        let mut number = || fields.next()?.parse::<i64>().ok();
        let (order_id, user_id, qty, total_fen, created_at, expires_at) = (
            number()?,
            number()?,
            number()?,
            number()?,
            number()?,
            number()?,
        );
        let hash = unhex(fields.next()?)?;
        let key = fields.next()?.to_owned();
        Some(Reserved {
            order_id,
            user_id,
            qty,
            total_fen,
            created_at,
            expires_at,
            hash,
            key,
        })
    }
}

/// Field of the sale's `keys` hash for a user's `Idempotency-Key`.
pub(crate) fn key_field(user_id: i64, key: &str) -> String {
    format!("{user_id}:{key}")
}

/// What a retry with the same key is answered from: `order:total:hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyRecord {
    pub order_id: i64,
    pub total_fen: i64,
    pub hash: Vec<u8>,
}

impl KeyRecord {
    /// `order:total:hash`.
    pub(crate) fn text(&self) -> String {
        format!("{}:{}:{}", self.order_id, self.total_fen, hex(&self.hash))
    }

    /// Reads a [`text`](Self::text).
    pub(crate) fn parse(text: &str) -> Option<KeyRecord> {
        let mut fields = text.splitn(3, ':');
        Some(KeyRecord {
            order_id: fields.next()?.parse().ok()?,
            total_fen: fields.next()?.parse().ok()?,
            hash: unhex(fields.next()?)?,
        })
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
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

    #[test]
    fn a_payload_reads_back_even_with_colons_in_the_key() {
        let reserved = Reserved {
            order_id: 42,
            user_id: 7,
            qty: 2,
            total_fen: 9_600,
            created_at: 1_700_000_000_000,
            expires_at: 1_700_000_900_000,
            hash: vec![0, 1, 0xab, 0xff],
            key: "retry:1:a".into(),
        };
        assert_eq!(Reserved::parse(&reserved.payload()), Some(reserved));
        assert_eq!(Reserved::parse("42:7:2"), None);
        assert_eq!(Reserved::parse("42:7:2:1:1:1:zz:k"), None);
        let record = KeyRecord {
            order_id: 42,
            total_fen: 9_600,
            hash: vec![9, 10],
        };
        assert_eq!(KeyRecord::parse(&record.text()), Some(record));
        assert_eq!(KeyRecord::parse("x:1:00"), None);
    }
}
