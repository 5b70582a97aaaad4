//! `[wechat]`: the mini program's credentials and the push settings.

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigIssue, ConfigSection, Secret};

/// `[wechat]` configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WechatConfig {
    /// The mini program's AppID (`wx...`).
    pub appid: String,
    /// The AppSecret; from the environment in production (`WEAPP__WECHAT__SECRET`).
    pub secret: Secret,
    /// Use the built-in sandbox, mounted on the app's own server, instead of WeChat.
    /// Refused in the `production` environment.
    pub sandbox: bool,
    /// WeChat API base URL; default `https://api.weixin.qq.com` (ignored with `sandbox`).
    pub base_url: Option<String>,
    /// Connect timeout in milliseconds.
    pub connect_timeout_ms: u64,
    /// Whole-request timeout in milliseconds.
    pub timeout_ms: u64,
    /// Retries of transient failures.
    pub retry: RetryConfig,
    /// Access-token caching.
    pub token: TokenConfig,
    /// Message push ("server configuration").
    pub push: PushConfig,
    /// Settings of the built-in sandbox.
    pub sandbox_settings: SandboxSettings,
}

impl Default for WechatConfig {
    fn default() -> Self {
        WechatConfig {
            appid: String::new(),
            secret: Secret::default(),
            sandbox: false,
            base_url: None,
            connect_timeout_ms: 2_000,
            timeout_ms: 5_000,
            retry: RetryConfig::default(),
            token: TokenConfig::default(),
            push: PushConfig::default(),
            sandbox_settings: SandboxSettings::default(),
        }
    }
}

/// `[wechat.retry]`: backoff for -1 (busy), 5xx, timeouts and broken connections.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles each time, with jitter.
    pub base_delay_ms: u64,
    /// Cap on one delay.
    pub max_delay_ms: u64,
    /// No retry starts after this long since the first attempt.
    pub deadline_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            base_delay_ms: 100,
            max_delay_ms: 2_000,
            deadline_ms: 10_000,
        }
    }
}

/// `[wechat.token]`: the shared access-token cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenConfig {
    /// Refresh when this fraction of the token's lifetime has passed.
    pub refresh_ratio: f64,
    /// Expiry of the cross-instance refresh lock.
    pub lock_ttl_ms: u64,
    /// How often a waiting instance looks for the fresh token.
    pub poll_ms: u64,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            refresh_ratio: 0.8,
            lock_ttl_ms: 10_000,
            poll_ms: 50,
        }
    }
}

/// `[wechat.sandbox_settings]`: behaviour of the built-in sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxSettings {
    /// Words `msg_sec_check` flags as risky.
    pub risky_words: Vec<String>,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            risky_words: vec!["赌博".into(), "gamble".into()],
        }
    }
}

/// `[wechat.push]`: the Token and EncodingAESKey from the console.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// The Token used in push signatures.
    pub token: Secret,
    /// The 43-character EncodingAESKey.
    pub encoding_aes_key: Secret,
    /// Accept plain-mode pushes (no `Encrypt` field, only `signature`). Off: with a
    /// key configured only safe-mode pushes are taken, so a plain body cannot slip
    /// past the encryption (set the console to safe mode).
    pub allow_plain: bool,
    /// Pushes whose `timestamp` is further than this from our clock are refused, and
    /// each (timestamp, nonce, signature) is accepted once within twice this window.
    pub max_skew_s: u64,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            token: Secret::default(),
            encoding_aes_key: Secret::default(),
            allow_plain: false,
            max_skew_s: 300,
        }
    }
}

crate::config_section!(WechatConfig);

impl ConfigSection for WechatConfig {
    const NAME: &'static str = "wechat";

    fn issues(&self, config: &Config) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if config.is_development() {
            if self.sandbox && !is_loopback(&config.server.host) {
                issues.push(ConfigIssue {
                    key: "wechat.sandbox".into(),
                    reason: format!(
                        "serves only on a loopback server.host (127.0.0.1, ::1, localhost), \
                         not {}: anyone who reaches it can log in as any user",
                        config.server.host
                    ),
                });
            }
        } else {
            if self.sandbox {
                issues.push(ConfigIssue {
                    key: "wechat.sandbox".into(),
                    reason: "must be off outside development (WEAPP_ENV development or test)"
                        .into(),
                });
            }
            if self.appid.is_empty() {
                issues.push(ConfigIssue {
                    key: "wechat.appid".into(),
                    reason: "required outside development".into(),
                });
            }
            if let Some(reason) = self.secret.production_issue() {
                issues.push(ConfigIssue {
                    key: "wechat.secret".into(),
                    reason: reason.into(),
                });
            }
            for (key, value) in [
                ("wechat.push.token", &self.push.token),
                ("wechat.push.encoding_aes_key", &self.push.encoding_aes_key),
            ] {
                if value.is_sample() {
                    issues.push(ConfigIssue {
                        key: key.into(),
                        reason: "is a published sample value; set a real secret".into(),
                    });
                }
            }
        }
        if !(0.1..=0.95).contains(&self.token.refresh_ratio) {
            issues.push(ConfigIssue {
                key: "wechat.token.refresh_ratio".into(),
                reason: "must be between 0.1 and 0.95".into(),
            });
        }
        if self.retry.max_attempts == 0 {
            issues.push(ConfigIssue {
                key: "wechat.retry.max_attempts".into(),
                reason: "must be at least 1".into(),
            });
        }
        if let Some(url) = &self.base_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            issues.push(ConfigIssue {
                key: "wechat.base_url".into(),
                reason: format!("{url} is not an http(s) URL"),
            });
        }
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
}

/// Whether `host` (a `server.host`) only listens on this machine.
fn is_loopback(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl WechatConfig {
    /// Where API calls go when the sandbox is off.
    pub fn api_base_url(&self) -> &str {
        self.base_url
            .as_deref()
            .unwrap_or("https://api.weixin.qq.com")
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
        .map(|crypto| crypto.allow_plain(self.push.allow_plain))
    }
}
