//! Decrypting WeChat's `encryptedData` (user profile, phone number, share info...).
//!
//! WeChat encrypts with AES-128-CBC and PKCS#7 under the user's `session_key`, all
//! three values base64-encoded. The plaintext is JSON carrying a `watermark` whose
//! `appid` must be ours: otherwise the data was produced for another mini program.
//! A padding failure almost always means the `session_key` is stale (the client called
//! `wx.login` after obtaining the data, WeChat's -41003), so the error says so.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, KeyIvInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;

/// Why `encryptedData` could not be accepted. Messages never contain key material,
/// plaintext, or which padding byte failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WechatDecryptError {
    /// A value is not valid standard base64.
    #[error("{field} is not valid base64")]
    InvalidBase64 {
        /// `session_key`, `encryptedData` or `iv`.
        field: &'static str,
    },
    /// The session key does not decode to 16 bytes.
    #[error("session_key must decode to 16 bytes")]
    InvalidKeyLength,
    /// The iv does not decode to 16 bytes.
    #[error("iv must decode to 16 bytes")]
    InvalidIvLength,
    /// Wrong length or bad padding: usually a stale `session_key`.
    #[error(
        "encryptedData could not be decrypted; the session_key is probably stale \
         (wx.login was called after the data was obtained): call wx.login, then get the data again"
    )]
    DecryptFailed,
    /// The plaintext is not UTF-8.
    #[error("decrypted data is not UTF-8 text")]
    NotUtf8,
    /// The plaintext is not the expected JSON.
    #[error("decrypted data is not the expected JSON")]
    NotJson,
    /// The plaintext has no `watermark.appid`.
    #[error("decrypted data has no watermark")]
    MissingWatermark,
    /// The watermark names another mini program.
    #[error("the data was produced for another mini program (watermark appid mismatch)")]
    AppidMismatch,
    /// The watermark is older than the configured maximum age.
    #[error("the data is too old (watermark timestamp beyond the allowed age)")]
    Expired,
}

impl WechatDecryptError {
    /// Stable client-facing code.
    pub fn code(&self) -> &'static str {
        match self {
            WechatDecryptError::InvalidBase64 { .. } => "invalid_base64",
            WechatDecryptError::InvalidKeyLength => "invalid_session_key",
            WechatDecryptError::InvalidIvLength => "invalid_iv",
            WechatDecryptError::DecryptFailed => "stale_session_key",
            WechatDecryptError::NotUtf8 => "plaintext_not_utf8",
            WechatDecryptError::NotJson => "plaintext_not_json",
            WechatDecryptError::MissingWatermark => "missing_watermark",
            WechatDecryptError::AppidMismatch => "appid_mismatch",
            WechatDecryptError::Expired => "watermark_expired",
        }
    }
}

/// Decrypts `encryptedData` for one app id, optionally rejecting old watermarks.
#[derive(Debug, Clone)]
pub struct WechatDecryptor {
    appid: String,
    max_age: Option<Duration>,
}

#[derive(serde::Deserialize)]
struct Watermarked {
    watermark: Option<Watermark>,
}

#[derive(serde::Deserialize)]
struct Watermark {
    appid: Option<String>,
    timestamp: Option<i64>,
}

fn decode(field: &'static str, value: &str) -> Result<Zeroizing<Vec<u8>>, WechatDecryptError> {
    STANDARD
        .decode(value.trim())
        .map(Zeroizing::new)
        .map_err(|_| WechatDecryptError::InvalidBase64 { field })
}

impl WechatDecryptor {
    /// A decryptor requiring `watermark.appid == appid`.
    pub fn new(appid: impl Into<String>) -> Self {
        WechatDecryptor {
            appid: appid.into(),
            max_age: None,
        }
    }

    /// Also rejects data whose watermark is older than `max_age`.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Decrypts and checks the watermark, returning the JSON document.
    pub fn decrypt(
        &self,
        session_key: &str,
        encrypted_data: &str,
        iv: &str,
    ) -> Result<serde_json::Value, WechatDecryptError> {
        self.decrypt_as(session_key, encrypted_data, iv)
    }

    /// Decrypts, checks the watermark, and deserializes into `T`.
    pub fn decrypt_as<T: DeserializeOwned>(
        &self,
        session_key: &str,
        encrypted_data: &str,
        iv: &str,
    ) -> Result<T, WechatDecryptError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        self.decrypt_at(session_key, encrypted_data, iv, now)
    }

    /// As [`WechatDecryptor::decrypt_as`], with "now" given (unix seconds) for tests.
    pub fn decrypt_at<T: DeserializeOwned>(
        &self,
        session_key: &str,
        encrypted_data: &str,
        iv: &str,
        now_unix: i64,
    ) -> Result<T, WechatDecryptError> {
        let key = decode("session_key", session_key)?;
        let iv = decode("iv", iv)?;
        let ciphertext = decode("encryptedData", encrypted_data)?;
        let key: &[u8; 16] = key
            .as_slice()
            .try_into()
            .map_err(|_| WechatDecryptError::InvalidKeyLength)?;
        let iv: &[u8; 16] = iv
            .as_slice()
            .try_into()
            .map_err(|_| WechatDecryptError::InvalidIvLength)?;
        let plaintext = Zeroizing::new(
            Aes128CbcDec::new(key.into(), iv.into())
                .decrypt_padded_vec::<Pkcs7>(&ciphertext)
                .map_err(|_| WechatDecryptError::DecryptFailed)?,
        );
        let text = std::str::from_utf8(&plaintext).map_err(|_| WechatDecryptError::NotUtf8)?;

        let marked: Watermarked =
            serde_json::from_str(text).map_err(|_| WechatDecryptError::NotJson)?;
        let watermark = marked
            .watermark
            .ok_or(WechatDecryptError::MissingWatermark)?;
        let appid = watermark
            .appid
            .ok_or(WechatDecryptError::MissingWatermark)?;
        if appid != self.appid {
            return Err(WechatDecryptError::AppidMismatch);
        }
        if let Some(max_age) = self.max_age {
            let stamped = watermark
                .timestamp
                .ok_or(WechatDecryptError::MissingWatermark)?;
            if now_unix.saturating_sub(stamped) > max_age.as_secs() as i64 {
                return Err(WechatDecryptError::Expired);
            }
        }
        serde_json::from_str(text).map_err(|_| WechatDecryptError::NotJson)
    }
}
