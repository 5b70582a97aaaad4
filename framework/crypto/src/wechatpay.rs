//! WeChat Pay API v3 cryptography, as WeChat defines it: the merchant's RSA-SHA256
//! signatures (requests, and `paySign` for `wx.requestPayment`), verification of
//! WeChat Pay's signatures (responses and notifications), and the AEAD_AES_256_GCM
//! `resource` of notifications and platform certificates. Strings and bytes in and
//! out; the messages' HTTP parts are the pay plugin's.
//!
//! Every signature is RSASSA-PKCS1-v1_5 over SHA-256 of a message of lines, each
//! ending in `\n`; the builders below make them byte for byte.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::sha2::Sha256;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use zeroize::Zeroizing;

/// Why a key could not be read, a signature did not verify or a resource did not
/// decrypt. Deliberately coarse: a caller answering a client learns nothing more.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayCryptoError {
    /// The PEM is not an RSA key of the expected kind.
    #[error("not a PEM RSA {0} key")]
    InvalidKey(&'static str),
    /// The signature is not base64 or does not match the message.
    #[error("signature does not verify")]
    BadSignature,
    /// The APIv3 key is not 32 bytes.
    #[error("the APIv3 key must be 32 bytes")]
    InvalidApiV3Key,
    /// The resource is not base64, its nonce not 12 bytes, or it fails
    /// authentication (wrong key, changed ciphertext or associated data).
    #[error("resource does not decrypt")]
    Undecryptable,
}

/// `METHOD\nURL\ntimestamp\nnonce\nbody\n`: what a merchant signs for a request,
/// with the URL as path and query (`/v3/pay/transactions/jsapi`), not the full URL,
/// and the body exactly as sent (empty for GET).
pub fn request_message(
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &str,
) -> String {
    format!("{method}\n{path_and_query}\n{timestamp}\n{nonce}\n{body}\n")
}

/// `timestamp\nnonce\nbody\n`: what WeChat Pay signs on a response or a
/// notification (`Wechatpay-Timestamp`, `Wechatpay-Nonce`), over the body's raw
/// bytes: never a re-serialised body, whose bytes may differ.
pub fn response_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(timestamp.len() + nonce.len() + body.len() + 3);
    for part in [
        timestamp.as_bytes(),
        b"\n",
        nonce.as_bytes(),
        b"\n",
        body,
        b"\n",
    ] {
        message.extend_from_slice(part);
    }
    message
}

/// `appId\ntimeStamp\nnonceStr\npackage\n`: what `paySign` signs for
/// `wx.requestPayment`, `package` being `prepay_id=…`.
pub fn pay_sign_message(appid: &str, timestamp: &str, nonce: &str, package: &str) -> String {
    format!("{appid}\n{timestamp}\n{nonce}\n{package}\n")
}

/// The `Authorization` header of a signed request.
pub fn authorization(
    mchid: &str,
    nonce: &str,
    timestamp: i64,
    serial_no: &str,
    signature: &str,
) -> String {
    format!(
        "WECHATPAY2-SHA256-RSA2048 mchid=\"{mchid}\",nonce_str=\"{nonce}\",signature=\"{signature}\",timestamp=\"{timestamp}\",serial_no=\"{serial_no}\""
    )
}

/// A merchant's API private key (`apiclient_key.pem`), which signs requests and
/// `paySign`.
pub struct MerchantKey(SigningKey<Sha256>);

impl std::fmt::Debug for MerchantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MerchantKey(..)")
    }
}

impl MerchantKey {
    /// Reads a PKCS#8 (`BEGIN PRIVATE KEY`, as the merchant platform issues it) or
    /// PKCS#1 (`BEGIN RSA PRIVATE KEY`) PEM.
    pub fn from_pem(pem: &str) -> Result<MerchantKey, PayCryptoError> {
        let key = RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|_| PayCryptoError::InvalidKey("private"))?;
        Ok(MerchantKey(SigningKey::new(key)))
    }

    /// The base64 signature of `message`. The private-key operation is blinded with
    /// fresh randomness each time (the same signature comes out): the `rsa` crate's
    /// arithmetic is not constant time, and blinding keeps its timing from following
    /// the key.
    pub fn sign(&self, message: &[u8]) -> String {
        let signature = self
            .0
            .sign_with_rng(&mut rsa::rand_core::OsRng, message)
            .to_bytes();
        STANDARD.encode(signature)
    }

    /// The public half, which WeChat Pay (or the pay sandbox) verifies with; also
    /// how a published sample key is recognised whatever its PEM encoding.
    pub fn public_key(&self) -> PlatformKey {
        PlatformKey(VerifyingKey::new(self.0.as_ref().to_public_key()))
    }
}

/// A key WeChat Pay signs with: a platform certificate's public key, or the WeChat
/// Pay public key (`PUB_KEY_ID_…`).
#[derive(Debug, Clone)]
pub struct PlatformKey(VerifyingKey<Sha256>);

impl PartialEq for PlatformKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_ref() == other.0.as_ref()
    }
}

impl Eq for PlatformKey {}

impl PlatformKey {
    /// Reads a public key PEM (`BEGIN PUBLIC KEY`, as the WeChat Pay public key is
    /// issued, or `BEGIN RSA PUBLIC KEY`).
    pub fn from_public_key_pem(pem: &str) -> Result<PlatformKey, PayCryptoError> {
        let key = RsaPublicKey::from_public_key_pem(pem)
            .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
            .map_err(|_| PayCryptoError::InvalidKey("public"))?;
        Ok(PlatformKey(VerifyingKey::new(key)))
    }

    /// Checks a base64 `signature` (`Wechatpay-Signature`) over `message`.
    pub fn verify(&self, message: &[u8], signature: &str) -> Result<(), PayCryptoError> {
        let bytes = STANDARD
            .decode(signature.trim())
            .map_err(|_| PayCryptoError::BadSignature)?;
        let signature =
            Signature::try_from(bytes.as_slice()).map_err(|_| PayCryptoError::BadSignature)?;
        self.0
            .verify(message, &signature)
            .map_err(|_| PayCryptoError::BadSignature)
    }
}

/// A WeChat Pay platform certificate (handed out encrypted by `GET
/// /v3/certificates`): its serial, as `Wechatpay-Serial` names it, its validity and
/// its key.
#[derive(Debug, Clone)]
pub struct PlatformCertificate {
    /// The serial number in upper-case hex, as WeChat Pay writes it.
    pub serial_no: String,
    /// Valid from, Unix seconds.
    pub not_before: i64,
    /// Valid until, Unix seconds.
    pub not_after: i64,
    /// The key its signatures verify with.
    pub key: PlatformKey,
}

impl PlatformCertificate {
    /// Reads an X.509 certificate PEM with an RSA key.
    pub fn from_pem(pem: &str) -> Result<PlatformCertificate, PayCryptoError> {
        use x509_cert::der::{DecodePem, Encode};
        let invalid = |_| PayCryptoError::InvalidKey("certificate");
        let certificate = x509_cert::Certificate::from_pem(pem).map_err(invalid)?;
        let tbs = &certificate.tbs_certificate;
        let spki = tbs.subject_public_key_info.to_der().map_err(invalid)?;
        let key = RsaPublicKey::from_public_key_der(&spki)
            .map_err(|_| PayCryptoError::InvalidKey("certificate"))?;
        // DER integers carry a leading zero byte when the top bit is set; the serial
        // WeChat Pay writes is the number's hex.
        let bytes = tbs.serial_number.as_bytes();
        let significant = bytes
            .iter()
            .position(|b| *b != 0)
            .map_or(&bytes[bytes.len().saturating_sub(1)..], |i| &bytes[i..]);
        let seconds = |t: x509_cert::time::Time| {
            i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
        };
        Ok(PlatformCertificate {
            serial_no: significant.iter().map(|b| format!("{b:02X}")).collect(),
            not_before: seconds(tbs.validity.not_before),
            not_after: seconds(tbs.validity.not_after),
            key: PlatformKey(VerifyingKey::new(key)),
        })
    }
}

/// The APIv3 key, a 32-character secret set on the merchant platform, which
/// encrypts notification and certificate resources.
pub struct ApiV3Key(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for ApiV3Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiV3Key(..)")
    }
}

impl ApiV3Key {
    /// Takes the key's 32 bytes (its characters, as WeChat uses them).
    pub fn new(key: &[u8]) -> Result<ApiV3Key, PayCryptoError> {
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| PayCryptoError::InvalidApiV3Key)?;
        Ok(ApiV3Key(Zeroizing::new(key)))
    }

    fn cipher(&self) -> Aes256Gcm {
        let key = Zeroizing::new(aes_gcm::Key::<Aes256Gcm>::from(*self.0));
        Aes256Gcm::new(&key)
    }

    /// Decrypts a `resource` (`algorithm` AEAD_AES_256_GCM): `ciphertext` is base64
    /// of ciphertext and tag, `nonce` the 12-character IV, `associated_data` the AAD
    /// (may be empty).
    pub fn decrypt(
        &self,
        associated_data: &str,
        nonce: &str,
        ciphertext: &str,
    ) -> Result<Zeroizing<Vec<u8>>, PayCryptoError> {
        let sealed = STANDARD
            .decode(ciphertext)
            .map_err(|_| PayCryptoError::Undecryptable)?;
        self.cipher()
            .decrypt(
                &gcm_nonce(nonce)?,
                Payload {
                    msg: &sealed,
                    aad: associated_data.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| PayCryptoError::Undecryptable)
    }

    /// Encrypts a resource as WeChat Pay does (for the pay sandbox): base64 of
    /// ciphertext and tag. `nonce` must be 12 bytes and never reused with this key.
    pub fn encrypt(
        &self,
        associated_data: &str,
        nonce: &str,
        plaintext: &[u8],
    ) -> Result<String, PayCryptoError> {
        let sealed = self
            .cipher()
            .encrypt(
                &gcm_nonce(nonce)?,
                Payload {
                    msg: plaintext,
                    aad: associated_data.as_bytes(),
                },
            )
            .map_err(|_| PayCryptoError::Undecryptable)?;
        Ok(STANDARD.encode(sealed))
    }
}

/// A resource's nonce, 12 characters, as the GCM IV.
fn gcm_nonce(nonce: &str) -> Result<Nonce<aes_gcm::aead::array::typenum::U12>, PayCryptoError> {
    let bytes: [u8; 12] = nonce
        .as_bytes()
        .try_into()
        .map_err(|_| PayCryptoError::Undecryptable)?;
    Ok(Nonce::from(bytes))
}

#[cfg(test)]
mod tests;
