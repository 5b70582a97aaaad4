//! Authenticated encryption of personal fields (phone, openid, unionid...).
//!
//! Stored format, byte by byte:
//!
//! | offset | size | content |
//! | --- | --- | --- |
//! | 0 | 1 | format version, `0x01` |
//! | 1 | 1 | algorithm: `0x01` SM4-GCM, `0x02` AES-256-GCM |
//! | 2 | 2 | key id, big-endian |
//! | 4 | 12 | random nonce |
//! | 16 | n | ciphertext (same length as the plaintext) |
//! | 16 + n | 16 | GCM tag |
//!
//! The associated data is the 4 header bytes followed by `table`, `0x00`, `column`:
//! changing the header, or copying a value into another column, fails authentication.

use std::collections::BTreeMap;

use aes_gcm::aead::array::typenum::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, AesGcm, Nonce};
use zeroize::Zeroizing;

/// SM4 in GCM mode (GB/T 32907 block cipher, NIST GCM).
type Sm4Gcm = AesGcm<sm4::Sm4, U12>;

const VERSION: u8 = 0x01;
const HEADER_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Bytes a sealed value adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

/// The cipher of a field key, fixed by the key's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Algorithm {
    /// SM4-GCM, 16-byte keys: the national standard, the default.
    #[serde(rename = "sm4-gcm")]
    Sm4Gcm,
    /// AES-256-GCM, 32-byte keys.
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
}

impl Algorithm {
    fn id(self) -> u8 {
        match self {
            Algorithm::Sm4Gcm => 0x01,
            Algorithm::Aes256Gcm => 0x02,
        }
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Algorithm::Sm4Gcm => 16,
            Algorithm::Aes256Gcm => 32,
        }
    }
}

/// Where a sealed value lives; part of its associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldContext {
    /// Table name.
    pub table: &'static str,
    /// Column name.
    pub column: &'static str,
}

impl FieldContext {
    /// The context of `table.column`.
    pub const fn new(table: &'static str, column: &'static str) -> Self {
        FieldContext { table, column }
    }
}

/// The configured keys cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoKeyError {
    /// A key has the wrong length for any algorithm.
    #[error("key {0} must decode to 16 (SM4-GCM) or 32 (AES-256-GCM) bytes")]
    Length(u16),
    /// Two keys share an id.
    #[error("key id {0} appears twice")]
    DuplicateId(u16),
    /// The active key id is not among the keys.
    #[error("the active key {0} is not among crypto.keys")]
    MissingActive(u16),
}

/// A stored value could not be opened. Never client input: a 500, logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// Shorter than the header, nonce and tag.
    #[error("sealed value is truncated")]
    Truncated,
    /// Unknown format version or algorithm byte.
    #[error("sealed value has an unknown format")]
    UnknownFormat,
    /// The key id is not in the key ring.
    #[error("sealed value uses key {0}, which is not in the key ring")]
    UnknownKey(u16),
    /// Authentication failed: tampered, wrong column, or wrong key.
    #[error("sealed value failed authentication")]
    Tampered,
    /// Field encryption is used but `crypto.keys` is not configured.
    #[error("field encryption is not configured (crypto.keys)")]
    NotConfigured,
    /// Opened, but the plaintext is not of the expected type.
    #[error("sealed value holds a {0} of the wrong form")]
    WrongType(&'static str),
}

enum Cipher {
    Sm4(Box<Sm4Gcm>),
    Aes(Box<Aes256Gcm>),
}

struct FieldKey {
    algorithm: Algorithm,
    cipher: Cipher,
}

/// Field keys by id, one of them active for new writes. Cipher state is built once;
/// the key bytes live only inside the ciphers, which zero them on drop.
pub struct KeyRing {
    keys: BTreeMap<u16, FieldKey>,
    active: u16,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("active", &self.active)
            .finish()
    }
}

fn header(algorithm: Algorithm, key_id: u16) -> [u8; HEADER_LEN] {
    let id = key_id.to_be_bytes();
    [VERSION, algorithm.id(), id[0], id[1]]
}

fn aad(header: &[u8], context: &FieldContext) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HEADER_LEN + context.table.len() + 1 + context.column.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(context.table.as_bytes());
    aad.push(0);
    aad.extend_from_slice(context.column.as_bytes());
    aad
}

impl KeyRing {
    /// A key ring from raw keys; each key's length selects its algorithm (16 bytes:
    /// SM4-GCM, 32 bytes: AES-256-GCM).
    pub fn new(
        keys: Vec<(u16, Zeroizing<Vec<u8>>)>,
        active: u16,
    ) -> Result<KeyRing, CryptoKeyError> {
        let mut ring = BTreeMap::new();
        for (id, bytes) in keys {
            let key = match bytes.len() {
                16 => FieldKey {
                    algorithm: Algorithm::Sm4Gcm,
                    cipher: Cipher::Sm4(Box::new(
                        Sm4Gcm::new_from_slice(&bytes).map_err(|_| CryptoKeyError::Length(id))?,
                    )),
                },
                32 => FieldKey {
                    algorithm: Algorithm::Aes256Gcm,
                    cipher: Cipher::Aes(Box::new(
                        Aes256Gcm::new_from_slice(&bytes)
                            .map_err(|_| CryptoKeyError::Length(id))?,
                    )),
                },
                _ => return Err(CryptoKeyError::Length(id)),
            };
            if ring.insert(id, key).is_some() {
                return Err(CryptoKeyError::DuplicateId(id));
            }
        }
        if !ring.contains_key(&active) {
            return Err(CryptoKeyError::MissingActive(active));
        }
        Ok(KeyRing { keys: ring, active })
    }

    /// Id of the key new values are sealed with.
    pub fn active_key_id(&self) -> u16 {
        self.active
    }

    /// Algorithm of the active key.
    pub fn active_algorithm(&self) -> Algorithm {
        self.keys[&self.active].algorithm
    }

    /// Seals `plaintext` for `context` with the active key and a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8], context: &FieldContext) -> Vec<u8> {
        let key = &self.keys[&self.active];
        let header = header(key.algorithm, self.active);
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the operating system's random source failed");
        let aad = aad(&header, context);
        let payload = Payload {
            msg: plaintext,
            aad: &aad,
        };
        let nonce_ref = Nonce::<U12>::from(nonce);
        let sealed = match &key.cipher {
            Cipher::Sm4(c) => c.encrypt(&nonce_ref, payload),
            Cipher::Aes(c) => c.encrypt(&nonce_ref, payload),
        }
        .expect("GCM encryption of a field-sized value cannot fail");
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + sealed.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// The key id a sealed value names, without opening it.
    pub fn key_id_of(sealed: &[u8]) -> Result<u16, FieldError> {
        if sealed.len() < OVERHEAD {
            return Err(FieldError::Truncated);
        }
        Ok(u16::from_be_bytes([sealed[2], sealed[3]]))
    }

    /// Opens a value sealed for `context` by any key in the ring.
    pub fn open(
        &self,
        sealed: &[u8],
        context: &FieldContext,
    ) -> Result<Zeroizing<Vec<u8>>, FieldError> {
        let key_id = Self::key_id_of(sealed)?;
        if sealed[0] != VERSION {
            return Err(FieldError::UnknownFormat);
        }
        let key = self
            .keys
            .get(&key_id)
            .ok_or(FieldError::UnknownKey(key_id))?;
        if sealed[1] != key.algorithm.id() {
            return Err(
                if sealed[1] == Algorithm::Sm4Gcm.id() || sealed[1] == Algorithm::Aes256Gcm.id() {
                    FieldError::Tampered
                } else {
                    FieldError::UnknownFormat
                },
            );
        }
        let (header, rest) = sealed.split_at(HEADER_LEN);
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::<U12>::try_from(nonce).map_err(|_| FieldError::Truncated)?;
        let aad = aad(header, context);
        let payload = Payload {
            msg: body,
            aad: &aad,
        };
        match &key.cipher {
            Cipher::Sm4(c) => c.decrypt(&nonce, payload),
            Cipher::Aes(c) => c.decrypt(&nonce, payload),
        }
        .map(Zeroizing::new)
        .map_err(|_| FieldError::Tampered)
    }

    /// Re-seals `sealed` under the active key; `None` if it already uses it.
    pub fn reseal(
        &self,
        sealed: &[u8],
        context: &FieldContext,
    ) -> Result<Option<Vec<u8>>, FieldError> {
        if Self::key_id_of(sealed)? == self.active {
            return Ok(None);
        }
        let plaintext = self.open(sealed, context)?;
        Ok(Some(self.seal(&plaintext, context)))
    }
}
