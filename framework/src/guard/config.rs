//! `[guard]`: CORS, signatures and rate limits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigIssue, ConfigSection, Secret};

/// `[guard]` configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    /// Cross-origin requests (web admin pages; mini programs do not need CORS).
    pub cors: CorsConfig,
    /// `X-WX-*` request signatures.
    pub signing: SigningConfig,
    /// Cloud-development callbacks (`X-Tcb-Signature`).
    pub tcb: TcbConfig,
    /// Rate limits by route prefix; the longest matching prefix applies.
    pub rate_limits: Vec<RateLimitRule>,
    /// Reverse proxies (IP addresses) whose `X-Forwarded-For` names the client. From
    /// any other peer the header is ignored, so clients cannot spoof their address.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// `[guard.cors]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Exact origins allowed, e.g. `https://admin.example.com`.
    pub allowed_origins: Vec<String>,
    /// How long browsers may cache a preflight.
    pub max_age_s: u64,
}

impl Default for CorsConfig {
    fn default() -> Self {
        CorsConfig {
            allowed_origins: Vec::new(),
            max_age_s: 600,
        }
    }
}

/// `[guard.signing]`: requests under `prefixes` must carry a valid `X-WX-SIGN`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SigningConfig {
    /// Route prefixes that require a signature.
    pub prefixes: Vec<String>,
    /// Signing secret per `X-WX-APPID`.
    pub secrets: BTreeMap<String, Secret>,
    /// Accepted clock skew, in seconds either way.
    pub max_skew_s: u64,
}

impl Default for SigningConfig {
    fn default() -> Self {
        SigningConfig {
            prefixes: Vec::new(),
            secrets: BTreeMap::new(),
            max_skew_s: 300,
        }
    }
}

/// `[guard.tcb]`: cloud-development callbacks under `prefixes` carry
/// `X-Tcb-Signature` = HMAC-SHA256(secret, timestamp + body) and `X-Tcb-Timestamp`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TcbConfig {
    /// Route prefixes of callbacks.
    pub prefixes: Vec<String>,
    /// The shared secret.
    pub secret: Secret,
}

/// A GCRA limit: `burst` requests at once, refilling `per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Requests allowed at once.
    pub burst: u32,
    /// Sustained requests per second.
    pub per_second: f64,
}

/// Limits for one route prefix.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitRule {
    /// Route prefix, e.g. `/api/auth/login`.
    pub prefix: String,
    /// Per client IP.
    #[serde(default)]
    pub per_ip: Option<Limit>,
    /// Per authenticated user.
    #[serde(default)]
    pub per_user: Option<Limit>,
}

crate::config_section!(GuardConfig);

impl ConfigSection for GuardConfig {
    const NAME: &'static str = "guard";

    fn issues(&self, _config: &Config) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        for (i, rule) in self.rate_limits.iter().enumerate() {
            if !rule.prefix.starts_with('/') {
                issues.push(ConfigIssue {
                    key: format!("guard.rate_limits[{i}].prefix"),
                    reason: "must start with /".into(),
                });
            }
            for limit in [rule.per_ip, rule.per_user].into_iter().flatten() {
                if limit.burst == 0 || limit.per_second <= 0.0 || !limit.per_second.is_finite() {
                    issues.push(ConfigIssue {
                        key: format!("guard.rate_limits[{i}]"),
                        reason: "burst and per_second must be positive".into(),
                    });
                }
            }
        }
        if !self.signing.prefixes.is_empty() && self.signing.secrets.is_empty() {
            issues.push(ConfigIssue {
                key: "guard.signing.secrets".into(),
                reason: "required when guard.signing.prefixes is set".into(),
            });
        }
        if !self.tcb.prefixes.is_empty() && self.tcb.secret.is_empty() {
            issues.push(ConfigIssue {
                key: "guard.tcb.secret".into(),
                reason: "required when guard.tcb.prefixes is set".into(),
            });
        }
        issues
    }
}
