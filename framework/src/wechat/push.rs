//! Message push ("server configuration") security, as WeChat's WXBizMsgCrypt does it.
//!
//! - URL verification and plain-mode pushes: `signature = SHA-1(sort(token, timestamp,
//!   nonce))`.
//! - Safe mode: `msg_signature = SHA-1(sort(token, timestamp, nonce, Encrypt))`; the
//!   `Encrypt` field is AES-256-CBC under the 32-byte key decoded from the 43-character
//!   EncodingAESKey, IV = the key's first 16 bytes, PKCS#7 padded to 32-byte blocks,
//!   over `16 random bytes | 4-byte big-endian length | message | appid`.
//!
//! Error codes are WeChat's own (-40001 signature, -40002 parse, -40004 key, -40005
//! appid, -40007 decrypt, -40008 buffer, -40010 base64), so logs match its docs. The
//! signature is verified for JSON bodies as well as XML.

use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};
use zeroize::Zeroizing;

use crate::config::Secret;

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// A push could not be verified or decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// `signature`/`msg_signature` does not match (-40001).
    #[error("push signature does not match")]
    InvalidSignature,
    /// The body is neither the expected XML nor JSON (-40002).
    #[error("push body could not be parsed: {0}")]
    Parse(String),
    /// The EncodingAESKey is not 43 base64 characters (-40004).
    #[error("the EncodingAESKey must be 43 base64 characters")]
    IllegalAesKey,
    /// The message names another app id (-40005).
    #[error("push message is for another app id")]
    AppidMismatch,
    /// Decryption failed: wrong key or corrupted data (-40007).
    #[error("push message could not be decrypted")]
    Decrypt,
    /// The decrypted buffer is malformed or truncated (-40008).
    #[error("decrypted push message is malformed")]
    IllegalBuffer,
    /// `Encrypt` is not valid base64 (-40010).
    #[error("push message is not valid base64")]
    Base64,
    /// A plain-mode push while only safe mode is accepted (-40002).
    #[error("push messages must be encrypted (safe mode); plain mode is not accepted")]
    PlainRefused,
}

impl PushError {
    /// WeChat's numeric code for this error.
    pub fn wechat_code(&self) -> i32 {
        match self {
            PushError::InvalidSignature => -40001,
            PushError::Parse(_) => -40002,
            PushError::IllegalAesKey => -40004,
            PushError::AppidMismatch => -40005,
            PushError::Decrypt => -40007,
            PushError::IllegalBuffer => -40008,
            PushError::Base64 => -40010,
            PushError::PlainRefused => -40002,
        }
    }

    /// Stable client-facing code.
    pub fn code(&self) -> &'static str {
        match self {
            PushError::InvalidSignature => "invalid_signature",
            PushError::Parse(_) => "invalid_push_body",
            PushError::IllegalAesKey => "push_not_configured",
            PushError::AppidMismatch => "appid_mismatch",
            PushError::Decrypt | PushError::IllegalBuffer | PushError::Base64 => {
                "invalid_push_message"
            }
            PushError::PlainRefused => "encrypted_push_required",
        }
    }
}

impl From<PushError> for crate::Error {
    fn from(err: PushError) -> Self {
        use actix_web::http::StatusCode;
        let status = match err {
            PushError::InvalidSignature => StatusCode::UNAUTHORIZED,
            PushError::IllegalAesKey => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        crate::Error::http(status, err.code(), err.to_string())
    }
}

/// SHA-1 hex of the sorted, concatenated parts: WeChat's push signature.
pub fn signature(parts: &[&str]) -> String {
    let mut sorted = parts.to_vec();
    sorted.sort_unstable();
    let mut sha = Sha1::new();
    for part in sorted {
        sha.update(part.as_bytes());
    }
    weapp_crypto::hex(&sha.finalize())
}

/// Compares two signatures in constant time.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y.to_ascii_lowercase()))
            == 0
}

/// Compares the signature of `parts` with `given`.
fn check(parts: &[&str], given: &str) -> Result<(), PushError> {
    if same(&signature(parts), given) {
        Ok(())
    } else {
        Err(PushError::InvalidSignature)
    }
}

/// Token, AES key and app id of one mini program's message push.
#[derive(Clone)]
pub struct PushCrypto {
    token: Secret,
    key: Zeroizing<[u8; 32]>,
    appid: String,
    allow_plain: bool,
}

impl std::fmt::Debug for PushCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushCrypto")
            .field("appid", &self.appid)
            .finish_non_exhaustive()
    }
}

impl PushCrypto {
    /// From the Token and EncodingAESKey set in the mini program's console.
    pub fn new(token: &str, encoding_aes_key: &str, appid: &str) -> Result<Self, PushError> {
        if encoding_aes_key.len() != 43 {
            return Err(PushError::IllegalAesKey);
        }
        // WeChat's keys end in a character whose low bits are not zero, which strict
        // base64 rejects; its own samples decode them leniently, and so must we.
        let lenient = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
        );
        let decoded = Zeroizing::new(
            lenient
                .decode(format!("{encoding_aes_key}="))
                .map_err(|_| PushError::IllegalAesKey)?,
        );
        let key: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| PushError::IllegalAesKey)?;
        Ok(PushCrypto {
            token: Secret::new(token),
            key: Zeroizing::new(key),
            appid: appid.to_owned(),
            allow_plain: false,
        })
    }

    /// Whether [`PushCrypto::open_push`] also takes plain-mode pushes (no `Encrypt`
    /// field, checked by `signature` only). Off by default: a key is configured, so
    /// only safe-mode pushes are taken (`wechat.push.allow_plain`).
    pub fn allow_plain(mut self, allow: bool) -> Self {
        self.allow_plain = allow;
        self
    }

    /// Checks a plain `signature` over token, timestamp and nonce.
    pub fn verify_signature(
        &self,
        signature: &str,
        timestamp: &str,
        nonce: &str,
    ) -> Result<(), PushError> {
        check(&[self.token.expose(), timestamp, nonce], signature)
    }

    /// Checks `msg_signature` over token, timestamp, nonce and the encrypted payload.
    pub fn verify_msg_signature(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypted: &str,
    ) -> Result<(), PushError> {
        check(
            &[self.token.expose(), timestamp, nonce, encrypted],
            msg_signature,
        )
    }

    /// Verifies `msg_signature`, then decrypts `encrypted` and checks its app id.
    pub fn decrypt(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypted: &str,
    ) -> Result<String, PushError> {
        self.verify_msg_signature(msg_signature, timestamp, nonce, encrypted)?;
        self.decrypt_unsigned(encrypted)
    }

    /// Decrypts without a signature check; only for callers that checked it already.
    fn decrypt_unsigned(&self, encrypted: &str) -> Result<String, PushError> {
        let ciphertext = STANDARD
            .decode(encrypted.trim())
            .map_err(|_| PushError::Base64)?;
        if ciphertext.is_empty() || ciphertext.len() % 16 != 0 {
            return Err(PushError::Decrypt);
        }
        let iv: [u8; 16] = self.key[..16].try_into().expect("16 bytes");
        let plain = Zeroizing::new(
            Aes256CbcDec::new((&*self.key).into(), (&iv).into())
                .decrypt_padded_vec::<NoPadding>(&ciphertext)
                .map_err(|_| PushError::Decrypt)?,
        );
        // PKCS#7 to 32-byte blocks (not the cipher's 16), so unpad by hand.
        let pad = *plain.last().ok_or(PushError::Decrypt)? as usize;
        if pad == 0
            || pad > 32
            || pad > plain.len()
            || !plain[plain.len() - pad..]
                .iter()
                .all(|b| *b as usize == pad)
        {
            return Err(PushError::Decrypt);
        }
        let content = &plain[..plain.len() - pad];
        if content.len() < 20 {
            return Err(PushError::IllegalBuffer);
        }
        let len = u32::from_be_bytes(content[16..20].try_into().expect("4 bytes")) as usize;
        let message = content.get(20..20 + len).ok_or(PushError::IllegalBuffer)?;
        let appid = &content[20 + len..];
        if appid != self.appid.as_bytes() {
            return Err(PushError::AppidMismatch);
        }
        String::from_utf8(message.to_vec()).map_err(|_| PushError::IllegalBuffer)
    }

    /// Encrypts `message` with the given 16 random bytes (tests pin them; use
    /// [`PushCrypto::encrypt`] otherwise).
    pub fn encrypt_with_random(&self, message: &str, random: [u8; 16]) -> String {
        let mut buf = Vec::with_capacity(20 + message.len() + self.appid.len() + 32);
        buf.extend_from_slice(&random);
        buf.extend_from_slice(&(message.len() as u32).to_be_bytes());
        buf.extend_from_slice(message.as_bytes());
        buf.extend_from_slice(self.appid.as_bytes());
        let pad = 32 - buf.len() % 32;
        buf.extend(std::iter::repeat_n(pad as u8, pad));
        let iv: [u8; 16] = self.key[..16].try_into().expect("16 bytes");
        let ciphertext = Aes256CbcEnc::new((&*self.key).into(), (&iv).into())
            .encrypt_padded_vec::<NoPadding>(&buf);
        STANDARD.encode(ciphertext)
    }

    /// Encrypts `message` for a reply or a simulated push.
    pub fn encrypt(&self, message: &str) -> String {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).expect("the operating system's random source failed");
        self.encrypt_with_random(message, random)
    }

    /// The `msg_signature` of an encrypted payload.
    pub fn sign(&self, timestamp: &str, nonce: &str, encrypted: &str) -> String {
        signature(&[self.token.expose(), timestamp, nonce, encrypted])
    }

    /// Handles a push body: XML or JSON, safe mode (`Encrypt` field, checked against
    /// `msg_signature`) or, if [allowed](PushCrypto::allow_plain), plain (checked
    /// against `signature`). Returns the message as JSON, XML elements becoming
    /// fields. Freshness (timestamp window, nonce once) is checked by the
    /// [`PushMessage`](super::PushMessage) extractor, which has the key-value store.
    pub fn open_push(
        &self,
        query: &PushQuery,
        body: &[u8],
    ) -> Result<serde_json::Value, PushError> {
        let outer = super::push_body::parse(body)?;
        match outer.get("Encrypt").and_then(|v| v.as_str()) {
            Some(encrypted) => {
                let msg_signature = query
                    .msg_signature
                    .as_deref()
                    .ok_or(PushError::InvalidSignature)?;
                let plain =
                    self.decrypt(msg_signature, &query.timestamp, &query.nonce, encrypted)?;
                super::push_body::parse(plain.as_bytes())
            }
            None if !self.allow_plain => Err(PushError::PlainRefused),
            None => {
                let signature = query
                    .signature
                    .as_deref()
                    .ok_or(PushError::InvalidSignature)?;
                self.verify_signature(signature, &query.timestamp, &query.nonce)?;
                Ok(outer)
            }
        }
    }

    /// Answers URL verification: checks the signature and returns the `echostr` to
    /// echo (decrypted first when WeChat sends it encrypted in safe mode).
    pub fn verify_url(&self, query: &PushQuery) -> Result<String, PushError> {
        let echostr = query
            .echostr
            .as_deref()
            .ok_or(PushError::Parse("missing echostr".into()))?;
        match &query.msg_signature {
            Some(msg_signature) => {
                self.decrypt(msg_signature, &query.timestamp, &query.nonce, echostr)
            }
            None => {
                let signature = query
                    .signature
                    .as_deref()
                    .ok_or(PushError::InvalidSignature)?;
                self.verify_signature(signature, &query.timestamp, &query.nonce)?;
                Ok(echostr.to_owned())
            }
        }
    }
}

/// The query string WeChat adds to every push and verification request.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct PushQuery {
    /// Plain signature over token, timestamp and nonce.
    pub signature: Option<String>,
    /// Safe-mode signature, also covering the encrypted payload.
    pub msg_signature: Option<String>,
    /// Unix seconds, as text.
    #[serde(default)]
    pub timestamp: String,
    /// Random text.
    #[serde(default)]
    pub nonce: String,
    /// Present on URL verification only.
    pub echostr: Option<String>,
    /// `aes` in safe mode.
    pub encrypt_type: Option<String>,
}
