//! `[pay]`: WeChat Pay merchants and how the plugin talks to WeChat Pay.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use weapp::config::{Config, ConfigIssue, ConfigSection, Secret};

/// WeChat Pay's API address.
pub const PRODUCTION_BASE_URL: &str = "https://api.mch.weixin.qq.com";

/// `[pay]` configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PayConfig {
    /// WeChat Pay API base URL; default `https://api.mch.weixin.qq.com`. With
    /// `wechat.sandbox` the app's own address (its embedded pay sandbox) is used.
    pub base_url: Option<String>,
    /// Connect timeout in milliseconds.
    pub connect_timeout_ms: u64,
    /// Whole-request timeout in milliseconds.
    pub timeout_ms: u64,
    /// Notifications and responses signed further than this from our clock are
    /// refused (WeChat Pay's SDKs use 300 s).
    pub max_skew_s: u64,
    /// How often downloaded platform certificates are refreshed.
    pub certificate_refresh_s: u64,
    /// The merchants this app takes payments for, by a name of the app's choosing
    /// (`WEAPP__PAY__MERCHANTS__<name>__MCHID`); the name is part of its
    /// notification address, `/api/pay/notify/<name>`.
    pub merchants: BTreeMap<String, MerchantConfig>,
}

impl Default for PayConfig {
    fn default() -> Self {
        PayConfig {
            base_url: None,
            connect_timeout_ms: 2_000,
            timeout_ms: 5_000,
            max_skew_s: 300,
            certificate_refresh_s: 3_600,
            merchants: BTreeMap::new(),
        }
    }
}

/// `[pay.merchants.<name>]`: one merchant account (商户号) and its keys.
///
/// In development with `wechat.sandbox` on, the keys left unset are the pay
/// sandbox's published samples, so a new project pays offline with only `mchid`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MerchantConfig {
    /// Merchant id (商户号), digits.
    pub mchid: String,
    /// The AppID payments are made in; default `wechat.appid`.
    pub appid: String,
    /// Serial number of the merchant API certificate (商户API证书序列号).
    pub serial_no: String,
    /// The merchant API private key (`apiclient_key.pem`), PEM text.
    pub private_key: Secret,
    /// Or a file holding it (mounted from a secret store).
    pub private_key_file: Option<String>,
    /// The APIv3 key (32 characters), which decrypts notifications and certificates.
    pub apiv3_key: Secret,
    /// The WeChat Pay public key's id (`PUB_KEY_ID_…`), for verifying WeChat Pay's
    /// signatures in public-key mode.
    pub public_key_id: String,
    /// The WeChat Pay public key (`pub_key.pem`), PEM text.
    pub public_key: String,
    /// Or a file holding it.
    pub public_key_file: Option<String>,
    /// Verify with platform certificates downloaded from `GET /v3/certificates`
    /// (and refreshed). On together with the public key during a migration: the
    /// `Wechatpay-Serial` of each response or notification picks the key.
    pub platform_certificates: bool,
    /// Where WeChat Pay sends this merchant's notifications: the public HTTPS
    /// address of `/api/pay/notify/<name>`.
    pub notify_url: String,
}

weapp::config_section!(PayConfig);

impl ConfigSection for PayConfig {
    const NAME: &'static str = "pay";

    fn issues(&self, config: &Config) -> Vec<ConfigIssue> {
        let mut out = Vec::new();
        let mut bad = |key: String, reason: &str| out.push(ConfigIssue::new(key, reason));
        if let Some(url) = &self.base_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            bad("pay.base_url".into(), "must be an http(s) URL");
        }
        for (key, value) in [
            ("pay.timeout_ms", self.timeout_ms),
            ("pay.connect_timeout_ms", self.connect_timeout_ms),
            ("pay.max_skew_s", self.max_skew_s),
            ("pay.certificate_refresh_s", self.certificate_refresh_s),
        ] {
            if value == 0 {
                bad(key.into(), "must be positive");
            }
        }
        let development = config.is_development();
        let wechat = config.get::<weapp::wechat::WechatConfig>().ok();
        let appid = wechat.as_ref().map_or("", |w| w.appid.as_str());
        let sandbox = development && wechat.as_ref().is_some_and(|w| w.sandbox);
        for (name, merchant) in &self.merchants {
            let issues = merchant.issues(name, development);
            if issues.is_empty() {
                // The keys themselves: they parse, and are no published sample.
                let defaults = crate::merchant::Defaults {
                    appid,
                    sandbox,
                    development,
                    app_base_url: None,
                };
                if let Err(issue) =
                    crate::merchant::Merchant::from_config(name, merchant, &defaults)
                {
                    bad(issue.key.clone(), &issue.reason);
                }
            }
            for (key, reason) in issues {
                bad(format!("pay.merchants.{name}.{key}"), reason);
            }
        }
        out
    }
}

impl MerchantConfig {
    /// `(key, reason)` for each problem; keys that can come from the sandbox's
    /// samples are only required outside development (where the samples are
    /// refused by [`crate::merchant`] when the keys are read).
    fn issues(&self, name: &str, development: bool) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if name.is_empty()
            || name.len() > 32
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            out.push(("", "a merchant name is 1 to 32 letters, digits, - or _"));
        }
        if self.mchid.is_empty()
            || self.mchid.len() > 32
            || !self.mchid.bytes().all(|b| b.is_ascii_digit())
        {
            out.push(("mchid", "must be the merchant id's digits"));
        }
        if !self.serial_no.is_empty() && !self.serial_no.bytes().all(|b| b.is_ascii_hexdigit()) {
            out.push(("serial_no", "must be the certificate serial in hex"));
        }
        if !self.private_key.is_empty() && self.private_key_file.is_some() {
            out.push((
                "private_key",
                "set private_key or private_key_file, not both",
            ));
        }
        if !self.public_key.is_empty() && self.public_key_file.is_some() {
            out.push(("public_key", "set public_key or public_key_file, not both"));
        }
        if !self.public_key_id.is_empty() && !self.public_key_id.starts_with("PUB_KEY_ID_") {
            out.push(("public_key_id", "must start with PUB_KEY_ID_"));
        }
        let has_public_key = !self.public_key.is_empty() || self.public_key_file.is_some();
        if has_public_key == self.public_key_id.is_empty() {
            out.push((
                "public_key_id",
                "public_key_id and public_key (or public_key_file) go together",
            ));
        }
        if !self.notify_url.is_empty() && !self.notify_url.starts_with("https://") && !development {
            out.push((
                "notify_url",
                "must be an https:// address outside development",
            ));
        }
        if development {
            return out;
        }
        if self.serial_no.is_empty() {
            out.push(("serial_no", "required outside development"));
        }
        if self.private_key.is_empty() && self.private_key_file.is_none() {
            out.push((
                "private_key",
                "required outside development (or private_key_file)",
            ));
        }
        if let Some(reason) = self.apiv3_key.production_issue() {
            out.push(("apiv3_key", reason));
        }
        if !has_public_key && !self.platform_certificates {
            out.push((
                "public_key",
                "WeChat Pay's signatures need public_key_id + public_key, or platform_certificates = true",
            ));
        }
        if self.notify_url.is_empty() {
            out.push(("notify_url", "required outside development"));
        }
        out
    }
}
