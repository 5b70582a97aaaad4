//! Cryptography for personal data: bytes in, bytes out.
//!
//! This crate is the bottom layer of weapp: it knows nothing of configuration,
//! databases or HTTP, so it can be read, tested and audited on its own. The `weapp`
//! crate re-exports it as `weapp::crypto`, next to the parts that do need those
//! layers (the `Sealed` diesel column type, key rotation, `[crypto]` parsing).
//!
//! - [`wechat`]: decrypting WeChat's `encryptedData` (AES-128-CBC under `session_key`).
//! - [`FieldCrypto`]: sealing personal fields with SM4-GCM or AES-256-GCM under a
//!   rotating key ring, plus blind indexes (HMAC-SM3) to look them up.
//! - [`legacy`]: reading SM4-ECB/CBC data that older backends stored.
//! - [`mask`]: masking for display, e.g. `138****8000`.
//! - [`wechatpay`]: WeChat Pay API v3 signatures and resource decryption.

mod blind;
mod field;
pub mod legacy;
pub mod mask;
pub mod wechat;
pub mod wechatpay;

pub use blind::{BLIND_INDEX_LEN, BlindIndexer, normalize_id, normalize_phone};
pub use field::{Algorithm, CryptoKeyError, FieldContext, FieldError, KeyRing, OVERHEAD};
pub use wechat::{WechatDecryptError, WechatDecryptor};

/// The app's field encryption: key ring plus blind indexer, held by the app's
/// context.
#[derive(Debug)]
pub struct FieldCrypto {
    ring: KeyRing,
    blind: BlindIndexer,
}

impl FieldCrypto {
    /// Combines a key ring and a blind indexer.
    pub fn new(ring: KeyRing, blind: BlindIndexer) -> Self {
        FieldCrypto { ring, blind }
    }

    /// The key ring.
    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }

    /// Seals a value for `context` with the active key.
    pub fn seal(&self, plaintext: &[u8], context: &FieldContext) -> Vec<u8> {
        self.ring.seal(plaintext, context)
    }

    /// Opens a value sealed for `context`.
    pub fn open(
        &self,
        sealed: &[u8],
        context: &FieldContext,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, FieldError> {
        self.ring.open(sealed, context)
    }

    /// The blind index of a normalized value in `context`.
    pub fn blind_index(&self, context: &FieldContext, normalized: &str) -> [u8; BLIND_INDEX_LEN] {
        self.blind.index(context, normalized)
    }
}

/// Lower-case hex of `bytes` (digests, signatures).
pub fn hex(bytes: &[u8]) -> String {
    // A table, not `write!("{:02x}")`: digests are hexed on hot paths (sessions,
    // the audit chain, flash-sale records), and the formatter costs ~10x more.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xab, 0xff, 0x10]), "000fabff10");
        assert_eq!(super::hex(&[]), "");
    }
}
