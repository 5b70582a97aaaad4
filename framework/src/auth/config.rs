//! `[auth]`: access tokens and sessions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigIssue, ConfigSection, Secret};

/// `[auth]` configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Access-token signing.
    pub jwt: JwtConfig,
    /// Lifetime of a login session and its refresh tokens, in seconds.
    pub session_ttl_s: u64,
    /// In `development` with no `auth.jwt.keys`, a random HS256 secret is generated
    /// into this file on first run (never in other environments).
    pub dev_key_file: String,
    /// Operator credentials for admin routes, by name: `X-Admin-Token: <token>`.
    /// Never a user's JWT; empty means admin routes answer 401.
    pub admin_tokens: BTreeMap<String, Secret>,
    /// How long one instance reuses a user's `GET /api/me` answer, in milliseconds
    /// (0: never). The session is checked on every call all the same; a profile
    /// or phone change is seen at once on the instance that made it, within this
    /// time on the others.
    pub me_cache_ms: u64,
    /// Most users whose answer one instance keeps.
    pub me_cache_entries: usize,
    /// How long one instance trusts a session it found live, in milliseconds (0:
    /// every request checks Redis, the default). For flash sales, where each buyer
    /// sends many requests in a second. A session ended through the app is
    /// forgotten at once everywhere (on the other instances through Redis); while
    /// Redis is away, an ended session may still pass on another instance within
    /// this time.
    pub session_cache_ms: u64,
    /// Most users whose live sessions one instance keeps.
    pub session_cache_entries: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt: JwtConfig::default(),
            session_ttl_s: 30 * 24 * 3600,
            dev_key_file: "data/dev-jwt-key".into(),
            admin_tokens: BTreeMap::new(),
            me_cache_ms: 1_000,
            me_cache_entries: 10_000,
            session_cache_ms: 0,
            session_cache_entries: 100_000,
        }
    }
}

/// Signature algorithm of access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared secret (at least 32 bytes).
    HS256,
    /// RSA PKCS#1 v1.5 with SHA-256; PEM keys.
    RS256,
    /// Ed25519; PEM keys.
    EdDSA,
}

/// `[auth.jwt]`: a key set by `kid`, so keys rotate without logging anyone out: add
/// the new key, make it active, and drop the old one after `ttl_s`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// The one algorithm accepted.
    pub algorithm: JwtAlgorithm,
    /// Signing keys by kid: the HS256 secret, or a PEM private key.
    pub keys: BTreeMap<String, Secret>,
    /// RS256/EdDSA verification keys by kid (PEM public keys).
    pub public_keys: BTreeMap<String, String>,
    /// Kid that signs new tokens; default: the last kid in order.
    pub active_kid: Option<String>,
    /// `iss` claim.
    pub issuer: String,
    /// `aud` claim.
    pub audience: String,
    /// Access-token lifetime in seconds.
    pub ttl_s: u64,
    /// Clock-skew allowance when checking `exp` and `nbf`.
    pub leeway_s: u64,
    /// Most verified tokens one instance keeps, so a token's next uses skip its
    /// signature and claims and only recheck `exp` and `nbf` (0: verify every use).
    /// About 150 bytes each.
    pub verified_cache_entries: usize,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            algorithm: JwtAlgorithm::HS256,
            keys: BTreeMap::new(),
            public_keys: BTreeMap::new(),
            active_kid: None,
            issuer: "weapp".into(),
            audience: "weapp-miniprogram".into(),
            ttl_s: 7200,
            leeway_s: 30,
            verified_cache_entries: 20_000,
        }
    }
}

crate::config_section!(AuthConfig);

/// The shortest admin token accepted outside development: guessing one must be as
/// hard as guessing a 256-bit key.
const MIN_ADMIN_TOKEN_BYTES: usize = 32;

impl ConfigSection for AuthConfig {
    const NAME: &'static str = "auth";

    fn issues(&self, config: &Config) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut bad = |key: String, reason: &str| {
            issues.push(ConfigIssue {
                key,
                reason: reason.to_owned(),
            })
        };
        let jwt = &self.jwt;
        if !config.is_development() {
            if jwt.keys.is_empty() {
                bad(
                    "auth.jwt.keys".into(),
                    "required outside development: a generated key is for development only",
                );
            }
            for (kid, key) in &jwt.keys {
                if let Some(reason) = key.production_issue() {
                    bad(format!("auth.jwt.keys.{kid}"), reason);
                }
            }
            for (name, token) in &self.admin_tokens {
                if let Some(reason) = token.production_issue() {
                    bad(format!("auth.admin_tokens.{name}"), reason);
                } else if token.expose().len() < MIN_ADMIN_TOKEN_BYTES {
                    bad(
                        format!("auth.admin_tokens.{name}"),
                        "needs at least 32 bytes outside development",
                    );
                }
            }
        }
        if let Some(active) = &jwt.active_kid
            && !jwt.keys.contains_key(active)
        {
            bad("auth.jwt.active_kid".into(), "not among auth.jwt.keys");
        }
        for (kid, key) in &jwt.keys {
            if jwt.algorithm == JwtAlgorithm::HS256 && key.expose().len() < 32 {
                bad(
                    format!("auth.jwt.keys.{kid}"),
                    "HS256 secrets need at least 32 bytes",
                );
            }
            if jwt.algorithm != JwtAlgorithm::HS256 && !jwt.public_keys.contains_key(kid) {
                bad(
                    format!("auth.jwt.public_keys.{kid}"),
                    "required for RS256/EdDSA keys",
                );
            }
        }
        if jwt.ttl_s == 0 {
            bad("auth.jwt.ttl_s".into(), "must be at least 1");
        }
        if self.me_cache_ms > 0 && self.me_cache_entries == 0 {
            bad(
                "auth.me_cache_entries".into(),
                "must be at least 1 (or turn the cache off with auth.me_cache_ms = 0)",
            );
        }
        if self.session_cache_ms > 0 && self.session_cache_entries == 0 {
            bad(
                "auth.session_cache_entries".into(),
                "must be at least 1 (or turn the cache off with auth.session_cache_ms = 0)",
            );
        }
        if self.session_cache_ms > 60_000 {
            bad(
                "auth.session_cache_ms".into(),
                "must be at most 60000: an ended session may pass this long while Redis is away",
            );
        }
        if self.session_ttl_s < jwt.ttl_s {
            bad(
                "auth.session_ttl_s".into(),
                "must be at least auth.jwt.ttl_s",
            );
        }
        issues
    }
}
