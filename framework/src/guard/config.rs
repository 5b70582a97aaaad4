//! `[guard]`: CORS, signatures and rate limits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigIssue, ConfigSection, Secret};

/// `[guard]` configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    /// Cross-origin requests (web admin pages; mini programs do not need CORS).
    pub cors: CorsConfig,
    /// `X-WX-*` request signatures.
    pub signing: SigningConfig,
    /// Cloud-development callbacks (`X-Tcb-Signature`).
    pub tcb: TcbConfig,
    /// Rate limits by route prefix; the longest matching prefix applies. Setting
    /// the list replaces the defaults ([`default_rate_limits`]) as a whole; `[]`
    /// turns rate limiting off.
    pub rate_limits: Vec<RateLimitRule>,
    /// Reverse proxies (IP addresses) whose `X-Forwarded-For` names the client. From
    /// any other peer the header is ignored, so clients cannot spoof their address.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            cors: CorsConfig::default(),
            signing: SigningConfig::default(),
            tcb: TcbConfig::default(),
            rate_limits: default_rate_limits(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// The limits on by default. Each login spends WeChat's `code2session` quota;
/// profile and phone decrypt under the user's session key; orders hold stock;
/// admin routes are the operator's. Per IP where there is no user yet (generous,
/// since many mini-program users share a carrier NAT), per user after that.
pub fn default_rate_limits() -> Vec<RateLimitRule> {
    let rule = |prefix: &str, per_ip: Option<(u32, f64)>, per_user: Option<(u32, f64)>| {
        let limit = |(burst, per_second)| Limit { burst, per_second };
        RateLimitRule {
            prefix: prefix.to_owned(),
            per_ip: per_ip.map(limit),
            per_user: per_user.map(limit),
        }
    };
    vec![
        rule("/api/auth/login", Some((60, 10.0)), None),
        rule("/api/auth/refresh", Some((60, 10.0)), None),
        rule("/api/auth/profile", None, Some((5, 0.2))),
        rule("/api/auth/phone", None, Some((5, 0.2))),
        rule("/api/orders", None, Some((30, 5.0))),
        rule("/api/admin", Some((30, 5.0)), None),
    ]
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
