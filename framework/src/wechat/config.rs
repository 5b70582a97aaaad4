//! `[wechat]`: the mini program's credentials and the push settings.

use serde::{Deserialize, Serialize};

use crate::config::{ConfigIssue, Secret};

/// `[wechat]` configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WechatConfig {
    /// The mini program's AppID (`wx...`).
    pub appid: String,
    /// The AppSecret; from the environment in production (`WEAPP__WECHAT__SECRET`).
    pub secret: Secret,
    /// Message push ("server configuration").
    pub push: PushConfig,
}

/// `[wechat.push]`: the Token and EncodingAESKey from the console.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// The Token used in push signatures.
    pub token: Secret,
    /// The 43-character EncodingAESKey.
    pub encoding_aes_key: Secret,
}

impl WechatConfig {
    /// Problems with the values, each naming its key.
    pub(crate) fn issues(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let push = &self.push;
        if push.token.is_empty() != push.encoding_aes_key.is_empty() {
            issues.push(ConfigIssue {
                key: "wechat.push".into(),
                reason: "set both token and encoding_aes_key, or neither".into(),
            });
        }
        if !push.encoding_aes_key.is_empty() {
            if super::PushCrypto::new("t", push.encoding_aes_key.expose(), "").is_err() {
                issues.push(ConfigIssue {
                    key: "wechat.push.encoding_aes_key".into(),
                    reason: "must be the 43-character EncodingAESKey from the console".into(),
                });
            }
            if self.appid.is_empty() {
                issues.push(ConfigIssue {
                    key: "wechat.appid".into(),
                    reason: "required when wechat.push is configured".into(),
                });
            }
        }
        issues
    }

    /// The push crypto, when push is configured.
    pub fn push_crypto(&self) -> Option<super::PushCrypto> {
        if self.push.token.is_empty() {
            return None;
        }
        super::PushCrypto::new(
            self.push.token.expose(),
            self.push.encoding_aes_key.expose(),
            &self.appid,
        )
        .ok()
    }
}
