//! The keys WeChat Pay signs with, by the `Wechatpay-Serial` that names them: the
//! WeChat Pay public key (`PUB_KEY_ID_…`, configured) and platform certificates
//! (downloaded, replaced on refresh without a restart).

use std::collections::HashMap;
use std::sync::RwLock;

use weapp::crypto::wechatpay::{PlatformCertificate, PlatformKey};

/// One merchant's trusted WeChat Pay keys.
#[derive(Debug, Default)]
pub struct PlatformKeys {
    public_key: Option<(String, PlatformKey)>,
    certificates: RwLock<HashMap<String, PlatformCertificate>>,
}

impl PlatformKeys {
    /// Keys with the configured public key, if any, and no certificates yet.
    pub fn new(public_key: Option<(String, PlatformKey)>) -> Self {
        PlatformKeys {
            public_key,
            certificates: RwLock::default(),
        }
    }

    /// The key `serial` names, if it is trusted at `now_s`: the public key by its
    /// id, or a certificate within its validity.
    pub fn key(&self, serial: &str, now_s: i64) -> Option<PlatformKey> {
        if let Some((id, key)) = &self.public_key
            && id == serial
        {
            return Some(key.clone());
        }
        let certificates = self.certificates.read().unwrap_or_else(|p| p.into_inner());
        certificates
            .get(serial)
            .filter(|c| c.not_before <= now_s && now_s <= c.not_after)
            .map(|c| c.key.clone())
    }

    /// Replaces the certificates with a fresh download; returns how many are trusted.
    pub fn replace_certificates(&self, fresh: Vec<PlatformCertificate>) -> usize {
        let mut certificates = self.certificates.write().unwrap_or_else(|p| p.into_inner());
        *certificates = fresh
            .into_iter()
            .map(|c| (c.serial_no.clone(), c))
            .collect();
        certificates.len()
    }

    /// Serials of the certificates held now.
    pub fn certificate_serials(&self) -> Vec<String> {
        let certificates = self.certificates.read().unwrap_or_else(|p| p.into_inner());
        let mut serials: Vec<String> = certificates.keys().cloned().collect();
        serials.sort();
        serials
    }
}
