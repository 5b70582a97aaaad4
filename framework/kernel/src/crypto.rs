//! Cryptography for personal data: the pure [`weapp_crypto`] crate, plus the parts
//! that need the layers above it.
//!
//! - [`wechat`]: decrypting WeChat's `encryptedData` (AES-128-CBC under `session_key`).
//! - [`FieldCrypto`]: sealing personal fields with SM4-GCM or AES-256-GCM under a
//!   rotating key ring, plus blind indexes (HMAC-SM3) to look them up.
//! - [`Sealed`]: a diesel field type holding a value sealed for its column, opened
//!   with the app's key ring (it lives in [`crate::db`]).
//! - [`CryptoConfig`]: the `[crypto]` section that builds the key ring (it lives in
//!   [`crate::config`]).
//! - [`legacy`]: reading SM4-ECB/CBC data that older backends stored.
//! - [`mask`]: masking for display, e.g. `138****8000`.
//!
//! This file also says how the crypto crate's errors reach clients.

use actix_web::http::StatusCode;

pub use crate::config::CryptoConfig;
pub use crate::db::rotate::{RotationReport, SealedColumnInfo, rotate_keys};
pub use crate::db::sealed::{Sealed, SealedColumn, SealedValue};
pub use weapp_crypto::*;

use crate::error::SubsystemError;

/// A stored value that cannot be opened is a server-side failure; missing keys are
/// an unavailable service, said as such.
impl SubsystemError for FieldError {
    fn context(&self) -> Option<&'static str> {
        Some("field encryption")
    }
    fn status(&self) -> StatusCode {
        match self {
            FieldError::NotConfigured => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            FieldError::NotConfigured => "crypto_not_configured",
            _ => "internal_error",
        }
    }
    fn public_message(&self) -> String {
        match self {
            // Says what the operator must set; names no key material.
            FieldError::NotConfigured => self.to_string(),
            _ => "internal server error".to_owned(),
        }
    }
}

/// `encryptedData` is client input: a 400. What is wrong with its shape (base64,
/// lengths) is named; every failure after that answers the same `stale_session_key`.
/// Telling bad padding from a plaintext that is not UTF-8, not JSON or for another
/// appid would be a padding oracle: a client could decrypt data under the caller's
/// session key one byte at a time.
impl SubsystemError for WechatDecryptError {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
    fn code(&self) -> &'static str {
        match self {
            WechatDecryptError::InvalidBase64 { .. }
            | WechatDecryptError::InvalidKeyLength
            | WechatDecryptError::InvalidIvLength => WechatDecryptError::code(self),
            _ => WechatDecryptError::DecryptFailed.code(),
        }
    }
    fn public_message(&self) -> String {
        match self {
            WechatDecryptError::InvalidBase64 { .. }
            | WechatDecryptError::InvalidKeyLength
            | WechatDecryptError::InvalidIvLength => self.to_string(),
            _ => WechatDecryptError::DecryptFailed.to_string(),
        }
    }
}
