//! Blind indexes: look a sealed value up without decrypting anything.
//!
//! `HMAC-SM3(blind_index_key, table 0x00 column 0x00 normalized_value)`: equal inputs
//! give equal 32-byte indexes, usable under a unique database index, while the index
//! reveals nothing without the key. The column is mixed in, so indexes of different
//! columns cannot be matched against each other.

use hmac::{Hmac, KeyInit, Mac};
use sm3::Sm3;

use super::FieldContext;

/// Length of a blind index in bytes.
pub const BLIND_INDEX_LEN: usize = 32;

/// Computes blind indexes under one key. The keyed HMAC state is prepared once and
/// cloned per value.
#[derive(Clone)]
pub struct BlindIndexer {
    keyed: Hmac<Sm3>,
}

impl std::fmt::Debug for BlindIndexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlindIndexer(***)")
    }
}

impl BlindIndexer {
    /// An indexer for `key` (at least 16 bytes; 32 recommended).
    pub fn new(key: &[u8]) -> Option<BlindIndexer> {
        if key.len() < 16 {
            return None;
        }
        Some(BlindIndexer {
            keyed: <Hmac<Sm3> as KeyInit>::new_from_slice(key).ok()?,
        })
    }

    /// The index of an already normalized value in `context`.
    pub fn index(&self, context: &FieldContext, normalized: &str) -> [u8; BLIND_INDEX_LEN] {
        let mut mac = self.keyed.clone();
        mac.update(context.table.as_bytes());
        mac.update(&[0]);
        mac.update(context.column.as_bytes());
        mac.update(&[0]);
        mac.update(normalized.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// Normalizes a mainland China phone number for indexing: drops spaces, dashes,
/// parentheses and a `+86`/`0086` country prefix. `+86 138-1234-8000` → `13812348000`.
pub fn normalize_phone(phone: &str) -> String {
    let compact: String = phone
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '\u{3000}'))
        .collect();
    let local = compact
        .strip_prefix("+86")
        .or_else(|| compact.strip_prefix("0086"))
        .unwrap_or(&compact);
    local.to_owned()
}

/// Normalizes an identifier (openid, unionid) for indexing: surrounding whitespace
/// removed, case kept (WeChat ids are case-sensitive).
pub fn normalize_id(id: &str) -> String {
    id.trim().to_owned()
}
