//! A merchant account with its keys read and checked: it signs requests and
//! `paySign`, and trusts WeChat Pay's keys.

use serde::Serialize;
use weapp::config::{ConfigError, ConfigIssue};
use weapp::crypto::wechatpay::{self, ApiV3Key, MerchantKey, PlatformKey};

use crate::config::MerchantConfig;
use crate::platform_keys::PlatformKeys;
use crate::samples;

/// One configured merchant, ready to sign and verify.
#[derive(Debug)]
pub struct Merchant {
    /// The name it is configured under (`[pay.merchants.<name>]`).
    pub name: String,
    /// Merchant id.
    pub mchid: String,
    /// AppID its payments are made in.
    pub appid: String,
    /// Merchant certificate serial, sent with every signature.
    pub serial_no: String,
    /// Where WeChat Pay sends its notifications.
    pub notify_url: String,
    /// Whether platform certificates are downloaded for it.
    pub uses_certificates: bool,
    key: MerchantKey,
    apiv3_key: ApiV3Key,
    /// WeChat Pay's keys it trusts.
    pub platform: PlatformKeys,
}

/// What the mini program passes to `wx.requestPayment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestPayment {
    /// Unix seconds, as a string.
    pub time_stamp: String,
    /// Random string.
    pub nonce_str: String,
    /// `prepay_id=…`.
    pub package: String,
    /// Always `RSA`.
    pub sign_type: String,
    /// RSA-SHA256 over `appId\ntimeStamp\nnonceStr\npackage\n`.
    pub pay_sign: String,
}

/// Where a merchant's settings come from beside its own table.
pub(crate) struct Defaults<'a> {
    /// `wechat.appid`.
    pub appid: &'a str,
    /// Development with the embedded sandbox: unset keys are the samples.
    pub sandbox: bool,
    /// `WEAPP_ENV` is development or test.
    pub development: bool,
    /// The app's own address, for a development `notify_url` left unset.
    pub app_base_url: Option<&'a str>,
}

fn invalid(name: &str, key: &str, reason: impl Into<String>) -> ConfigIssue {
    ConfigIssue::new(format!("pay.merchants.{name}.{key}"), reason.into())
}

fn read_file(name: &str, key: &str, path: &str) -> Result<String, ConfigIssue> {
    std::fs::read_to_string(path)
        .map_err(|e| invalid(name, key, format!("cannot read {path}: {e}")))
}

impl Merchant {
    /// Reads the merchant's keys (as a start-up error naming the key).
    pub(crate) fn build(
        name: &str,
        config: &MerchantConfig,
        defaults: &Defaults<'_>,
    ) -> Result<Merchant, weapp::Error> {
        Self::from_config(name, config, defaults)
            .map_err(|issue| ConfigError::Invalid(vec![issue]).into())
    }

    /// Reads the merchant's keys; in development with the sandbox, unset keys are the
    /// sandbox's samples; elsewhere the samples are refused.
    pub(crate) fn from_config(
        name: &str,
        config: &MerchantConfig,
        defaults: &Defaults<'_>,
    ) -> Result<Merchant, ConfigIssue> {
        let samples = defaults.sandbox && defaults.development;
        let pick = |value: &str, sample: &str| {
            if value.is_empty() && samples {
                sample.to_owned()
            } else {
                value.to_owned()
            }
        };
        let private_pem = match &config.private_key_file {
            Some(path) => zeroize::Zeroizing::new(read_file(name, "private_key_file", path)?),
            None => zeroize::Zeroizing::new(pick(
                config.private_key.expose(),
                samples::MERCHANT_KEY_PEM,
            )),
        };
        if private_pem.is_empty() {
            return Err(invalid(name, "private_key", "is not set"));
        }
        let key = MerchantKey::from_pem(&private_pem)
            .map_err(|e| invalid(name, "private_key", e.to_string()))?;
        let sample_platform = sample_key(samples::PLATFORM_A_KEY_PEM)?.public_key();
        if !defaults.development && is_sample(&key.public_key())? {
            return Err(invalid(
                name,
                "private_key",
                "is the pay sandbox's published sample; set the merchant's own key",
            ));
        }
        let apiv3 = pick(config.apiv3_key.expose(), samples::APIV3_KEY);
        let apiv3_key = ApiV3Key::new(apiv3.as_bytes())
            .map_err(|e| invalid(name, "apiv3_key", e.to_string()))?;
        let public_pem = match (&config.public_key_file, config.public_key.as_str()) {
            (Some(path), _) => Some(read_file(name, "public_key_file", path)?),
            (None, "") => None,
            (None, pem) => Some(pem.to_owned()),
        };
        let public_key = match public_pem {
            None if samples && !config.platform_certificates => {
                Some((samples::PUBLIC_KEY_ID.to_owned(), sample_platform))
            }
            None => None,
            Some(pem) => {
                let key = PlatformKey::from_public_key_pem(&pem)
                    .map_err(|e| invalid(name, "public_key", e.to_string()))?;
                if !defaults.development && is_sample(&key)? {
                    return Err(invalid(
                        name,
                        "public_key",
                        "is the pay sandbox's published sample; set WeChat Pay's key",
                    ));
                }
                let id = pick(&config.public_key_id, samples::PUBLIC_KEY_ID);
                Some((id, key))
            }
        };
        if public_key.is_none() && !config.platform_certificates {
            return Err(invalid(
                name,
                "public_key",
                "set public_key_id + public_key, or platform_certificates = true",
            ));
        }
        let appid = if config.appid.is_empty() {
            defaults.appid.to_owned()
        } else {
            config.appid.clone()
        };
        if appid.is_empty() {
            return Err(invalid(
                name,
                "appid",
                "is not set, and neither is wechat.appid",
            ));
        }
        Ok(Merchant {
            name: name.to_owned(),
            mchid: config.mchid.clone(),
            appid,
            serial_no: pick(&config.serial_no, samples::MERCHANT_SERIAL),
            notify_url: match (config.notify_url.as_str(), defaults.app_base_url) {
                ("", Some(base)) if defaults.development => format!("{base}/api/pay/notify/{name}"),
                (url, _) => url.to_owned(),
            },
            uses_certificates: config.platform_certificates,
            key,
            apiv3_key,
            platform: PlatformKeys::new(public_key),
        })
    }

    /// The `Authorization` header of a request.
    pub fn authorization(&self, method: &str, path_and_query: &str, body: &str) -> String {
        let timestamp = chrono::Utc::now().timestamp();
        let nonce = nonce();
        let message = wechatpay::request_message(method, path_and_query, timestamp, &nonce, body);
        let signature = self.key.sign(message.as_bytes());
        wechatpay::authorization(&self.mchid, &nonce, timestamp, &self.serial_no, &signature)
    }

    /// The `wx.requestPayment` parameters for a prepay, freshly signed.
    pub fn request_payment(&self, prepay_id: &str) -> RequestPayment {
        let time_stamp = chrono::Utc::now().timestamp().to_string();
        let nonce_str = nonce();
        let package = format!("prepay_id={prepay_id}");
        let message = wechatpay::pay_sign_message(&self.appid, &time_stamp, &nonce_str, &package);
        RequestPayment {
            pay_sign: self.key.sign(message.as_bytes()),
            time_stamp,
            nonce_str,
            package,
            sign_type: "RSA".to_owned(),
        }
    }

    /// The APIv3 key, which opens notification resources and certificates.
    pub fn apiv3_key(&self) -> &ApiV3Key {
        &self.apiv3_key
    }

    /// The merchant's public key, as WeChat Pay (or the sandbox) verifies with.
    pub fn public_key(&self) -> PlatformKey {
        self.key.public_key()
    }
}

/// Whether `key` is one of the sandbox's published key pairs (merchant or platform).
fn is_sample(key: &PlatformKey) -> Result<bool, SampleKeyError> {
    for pem in [
        samples::MERCHANT_KEY_PEM,
        samples::PLATFORM_A_KEY_PEM,
        samples::PLATFORM_B_KEY_PEM,
    ] {
        if sample_key(pem)?.public_key() == *key {
            return Ok(true);
        }
    }
    Ok(false)
}

/// One of the sandbox's sample private keys (the samples ship only private keys;
/// the public halves come from them).
pub(crate) fn sample_key(pem: &str) -> Result<MerchantKey, SampleKeyError> {
    MerchantKey::from_pem(pem).map_err(|_| SampleKeyError)
}

/// A sample key shipped with this crate does not parse: a broken build.
#[derive(Debug)]
pub(crate) struct SampleKeyError;

impl From<SampleKeyError> for ConfigIssue {
    fn from(_: SampleKeyError) -> ConfigIssue {
        ConfigIssue::new("pay", "this build's sample keys are damaged")
    }
}

impl From<SampleKeyError> for weapp::Error {
    fn from(_: SampleKeyError) -> weapp::Error {
        weapp::Error::internal("this build's pay sandbox keys are damaged")
    }
}

/// 32 random alphanumeric characters, as WeChat Pay's SDKs use for nonces.
pub fn nonce() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}
