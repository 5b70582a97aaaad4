//! Cryptography for personal data.
//!
//! - [`wechat`]: decrypting WeChat's `encryptedData` (AES-128-CBC under `session_key`).
//! - [`FieldCrypto`]: sealing personal fields with SM4-GCM or AES-256-GCM under a
//!   rotating key ring, plus blind indexes (HMAC-SM3) to look them up.
//! - [`Sealed`]: a diesel field type that is plaintext in Rust, ciphertext in the
//!   database.
//! - [`legacy`]: reading SM4-ECB/CBC data that older backends stored.
//! - [`mask`]: masking for display, e.g. `138****8000`.

mod blind;
mod field;
mod keys;
pub mod legacy;
pub mod mask;
mod rotate;
mod sealed;
pub mod wechat;

use std::sync::{Arc, RwLock};

pub use blind::{BLIND_INDEX_LEN, BlindIndexer, normalize_id, normalize_phone};
pub use field::{Algorithm, FieldContext, FieldError, KeyRing, OVERHEAD};
pub use keys::{CryptoConfig, CryptoKeyError};
pub use rotate::{RotationReport, SealedColumnInfo, rotate_keys};
pub use sealed::{Sealed, SealedColumn, SealedValue};
pub use wechat::{WechatDecryptError, WechatDecryptor};

/// The app's field encryption: key ring plus blind indexer. Held by the
/// [`AppContext`](crate::AppContext) and installed process-wide for [`Sealed`].
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
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

// diesel's ToSql/FromSql have no context argument, so `Sealed` finds the keys here.
// The app installs its FieldCrypto at start-up; every app in one process shares it.
static INSTALLED: RwLock<Option<Arc<FieldCrypto>>> = RwLock::new(None);

/// Makes `crypto` the one [`Sealed`] columns use in this process.
pub fn install(crypto: Arc<FieldCrypto>) {
    *INSTALLED.write().unwrap_or_else(|p| p.into_inner()) = Some(crypto);
}

/// The process-wide field crypto, if an app installed one.
pub fn installed() -> Result<Arc<FieldCrypto>, FieldError> {
    INSTALLED
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .ok_or(FieldError::NotConfigured)
}
