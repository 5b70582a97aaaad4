//! `[crypto]` configuration and building the key ring from it.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use weapp_crypto::{Algorithm, BlindIndexer, FieldCrypto, KeyRing};

use super::{ConfigIssue, Secret};

/// `[crypto]`: keys for field encryption and blind indexes.
///
/// ```toml
/// [crypto]
/// algorithm = "sm4-gcm"       # or "aes-256-gcm"; must match the active key
/// active_key = 2              # default: the highest id
/// keys = { 1 = "base64 of 16 bytes", 2 = "base64 of 16 bytes" }
/// blind_index_key = "base64 of 32 bytes"
/// ```
/// As variables: `WEAPP__CRYPTO__KEYS__2=...`, `WEAPP__CRYPTO__ACTIVE_KEY=2`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CryptoConfig {
    /// Algorithm new values are sealed with.
    pub algorithm: Algorithm,
    /// Field keys by id (1–65535), base64: 16 bytes for SM4-GCM, 32 for AES-256-GCM.
    pub keys: BTreeMap<String, Secret>,
    /// Id of the key new values use; default: the highest id.
    pub active_key: Option<u16>,
    /// Key of blind indexes, base64, at least 16 bytes. Never rotated in place:
    /// changing it requires recomputing every index.
    pub blind_index_key: Secret,
    /// In development and test with no keys configured, keys are generated into this
    /// file on first run and reused after (never in other environments); empty: none
    /// are generated, and field encryption answers 503.
    pub dev_key_file: String,
}

impl Default for CryptoConfig {
    fn default() -> Self {
        CryptoConfig {
            algorithm: Algorithm::Sm4Gcm,
            keys: BTreeMap::new(),
            active_key: None,
            blind_index_key: Secret::default(),
            dev_key_file: "data/dev-keys.toml".into(),
        }
    }
}

fn decode(value: &Secret) -> Option<Zeroizing<Vec<u8>>> {
    STANDARD
        .decode(value.expose().trim())
        .ok()
        .map(Zeroizing::new)
}

impl CryptoConfig {
    /// Problems with the values, each naming its key; used by `Config::validate`.
    pub(crate) fn issues(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut bad = |key: String, reason: String| issues.push(ConfigIssue { key, reason });
        let mut ids = Vec::new();
        for (id, value) in &self.keys {
            let key = format!("crypto.keys.{id}");
            match id.parse::<u16>() {
                Ok(n) if n > 0 => ids.push(n),
                _ => bad(key.clone(), "key ids are numbers from 1 to 65535".into()),
            }
            match decode(value) {
                None => bad(key, "not valid base64".into()),
                Some(bytes) if bytes.len() != 16 && bytes.len() != 32 => bad(
                    key,
                    format!(
                        "decodes to {} bytes; SM4-GCM keys have 16, AES-256-GCM keys 32",
                        bytes.len()
                    ),
                ),
                Some(_) => {}
            }
        }
        if self.keys.is_empty() {
            if self.active_key.is_some() {
                bad(
                    "crypto.active_key".into(),
                    "set, but crypto.keys is empty".into(),
                );
            }
            return issues;
        }
        let active = self.active_key.or_else(|| ids.iter().max().copied());
        match active {
            Some(active) if !ids.contains(&active) => bad(
                "crypto.active_key".into(),
                format!("{active} is not among crypto.keys"),
            ),
            Some(active) => {
                let len = self
                    .keys
                    .iter()
                    .find(|(id, _)| id.parse() == Ok(active))
                    .and_then(|(_, v)| decode(v));
                if let Some(len) = len.map(|b| b.len())
                    && (len == 16 || len == 32)
                    && len != self.algorithm.key_len()
                {
                    bad(
                        "crypto.active_key".into(),
                        format!(
                            "key {active} has {len} bytes, but crypto.algorithm needs {}",
                            self.algorithm.key_len()
                        ),
                    );
                }
            }
            None => {}
        }
        match decode(&self.blind_index_key) {
            _ if self.blind_index_key.is_empty() => bad(
                "crypto.blind_index_key".into(),
                "required when crypto.keys is set".into(),
            ),
            None => bad("crypto.blind_index_key".into(), "not valid base64".into()),
            Some(b) if b.len() < 16 => bad(
                "crypto.blind_index_key".into(),
                "must decode to at least 16 bytes".into(),
            ),
            Some(b) if self.keys.values().filter_map(decode).any(|k| *k == *b) => bad(
                "crypto.blind_index_key".into(),
                "must differ from every field key".into(),
            ),
            Some(_) => {}
        }
        issues
    }

    /// Builds the field crypto service. `None` when no keys are configured (outside
    /// development, where keys are then kept in `dev_key_file`).
    pub fn build(&self, environment: &str) -> Result<Option<FieldCrypto>, String> {
        if self.keys.is_empty() {
            if !super::is_development(environment) || self.dev_key_file.is_empty() {
                return Ok(None);
            }
            return load_or_create_dev_keys(Path::new(&self.dev_key_file)).map(Some);
        }
        let mut keys = Vec::new();
        for (id, value) in &self.keys {
            let id: u16 = id
                .parse()
                .map_err(|_| format!("crypto.keys.{id}: bad id"))?;
            keys.push((
                id,
                decode(value).ok_or(format!("crypto.keys.{id}: not base64"))?,
            ));
        }
        let active = self
            .active_key
            .or_else(|| keys.iter().map(|(id, _)| *id).max())
            .ok_or("crypto.keys is empty")?;
        let ring = KeyRing::new(keys, active).map_err(|e| e.to_string())?;
        let blind_key =
            decode(&self.blind_index_key).ok_or("crypto.blind_index_key: not base64")?;
        let blind = BlindIndexer::new(&blind_key).ok_or("crypto.blind_index_key: too short")?;
        Ok(Some(FieldCrypto::new(ring, blind)))
    }
}

#[derive(Serialize, Deserialize)]
struct DevKeys {
    sm4_key: String,
    blind_index_key: String,
}

/// Development keys persist in a file so a local SQLite database stays readable
/// across restarts; they are random per machine, never part of the code.
fn load_or_create_dev_keys(path: &Path) -> Result<FieldCrypto, String> {
    let keys: DevKeys = match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?,
        Err(_) => {
            let mut sm4 = Zeroizing::new([0u8; 16]);
            let mut blind = Zeroizing::new([0u8; 32]);
            getrandom::fill(sm4.as_mut()).map_err(|e| e.to_string())?;
            getrandom::fill(blind.as_mut()).map_err(|e| e.to_string())?;
            let keys = DevKeys {
                sm4_key: STANDARD.encode(sm4.as_ref()),
                blind_index_key: STANDARD.encode(blind.as_ref()),
            };
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            let text = format!(
                "# Development-only field encryption keys, generated on first run.\n\
                 # Production sets crypto.keys and crypto.blind_index_key instead.\n{}",
                toml::to_string(&keys).map_err(|e| e.to_string())?
            );
            super::write_secret_file(path, text.as_bytes())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            keys
        }
    };
    tracing::warn!(file = %path.display(), "using development field-encryption keys");
    let sm4 = decode(&Secret::new(keys.sm4_key)).ok_or("dev key file: bad sm4_key")?;
    let blind =
        decode(&Secret::new(keys.blind_index_key)).ok_or("dev key file: bad blind_index_key")?;
    let ring = KeyRing::new(vec![(1, sm4)], 1).map_err(|e| e.to_string())?;
    Ok(FieldCrypto::new(
        ring,
        BlindIndexer::new(&blind).ok_or("dev key file: blind_index_key too short")?,
    ))
}
