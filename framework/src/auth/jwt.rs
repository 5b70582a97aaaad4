//! Signing and verifying access tokens.
//!
//! Verification trusts nothing in the header but the `kid`: the algorithm must equal
//! the configured one (so `none`, an unexpected algorithm or an RS/HS confusion is
//! refused before any key is used), the kid must name a known key, and `exp`, `nbf`,
//! `iss` and `aud` are checked with a small leeway. A token verified once is kept
//! (`auth.jwt.verified_cache_entries`), so its next uses only recheck `exp` and `nbf`
//! (see `auth/verified_tokens.rs`).

use std::collections::HashMap;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::AuthError;
use super::config::{JwtAlgorithm, JwtConfig};
use super::verified_tokens::VerifiedTokens;

/// The claims of a weapp access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a string.
    pub sub: String,
    /// The session id.
    pub sid: String,
    /// Issued at (unix seconds).
    pub iat: u64,
    /// Not before (unix seconds).
    pub nbf: u64,
    /// Expires at (unix seconds).
    pub exp: u64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
}

/// The configured key set.
pub struct JwtKeys {
    algorithm: Algorithm,
    active_kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_s: u64,
    leeway_s: u64,
    verified: Option<VerifiedTokens>,
}

fn algorithm(a: JwtAlgorithm) -> Algorithm {
    match a {
        JwtAlgorithm::HS256 => Algorithm::HS256,
        JwtAlgorithm::RS256 => Algorithm::RS256,
        JwtAlgorithm::EdDSA => Algorithm::EdDSA,
    }
}

impl JwtKeys {
    /// Builds the key set; `None` when no keys are configured.
    pub fn new(config: &JwtConfig) -> Result<Option<JwtKeys>, String> {
        let Some(active_kid) = config
            .active_kid
            .clone()
            .or_else(|| config.keys.keys().next_back().cloned())
        else {
            return Ok(None);
        };
        let alg = algorithm(config.algorithm);
        let mut decoding = HashMap::new();
        let mut encoding = None;
        for (kid, key) in &config.keys {
            let bytes = key.expose().as_bytes();
            let (enc, dec) = match config.algorithm {
                JwtAlgorithm::HS256 => (
                    EncodingKey::from_secret(bytes),
                    DecodingKey::from_secret(bytes),
                ),
                JwtAlgorithm::RS256 | JwtAlgorithm::EdDSA => {
                    let public = config
                        .public_keys
                        .get(kid)
                        .ok_or(format!("auth.jwt.public_keys.{kid} is missing"))?
                        .as_bytes();
                    let bad = |e: jsonwebtoken::errors::Error| format!("auth.jwt key {kid}: {e}");
                    if config.algorithm == JwtAlgorithm::RS256 {
                        (
                            EncodingKey::from_rsa_pem(bytes).map_err(bad)?,
                            DecodingKey::from_rsa_pem(public).map_err(bad)?,
                        )
                    } else {
                        (
                            EncodingKey::from_ed_pem(bytes).map_err(bad)?,
                            DecodingKey::from_ed_pem(public).map_err(bad)?,
                        )
                    }
                }
            };
            if *kid == active_kid {
                encoding = Some(enc);
            }
            decoding.insert(kid.clone(), dec);
        }
        let mut validation = Validation::new(alg);
        validation.leeway = config.leeway_s;
        validation.validate_nbf = true;
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        Ok(Some(JwtKeys {
            algorithm: alg,
            encoding: encoding.ok_or("auth.jwt.active_kid is not among auth.jwt.keys")?,
            active_kid,
            decoding,
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            ttl_s: config.ttl_s,
            leeway_s: config.leeway_s,
            verified: VerifiedTokens::new(config.verified_cache_entries),
        }))
    }

    /// Signs an access token for a user's session; returns it with its lifetime.
    pub fn issue(&self, user_id: i64, session_id: &str) -> Result<(String, u64), AuthError> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            sid: session_id.to_owned(),
            iat: now,
            nbf: now,
            exp: now + self.ttl_s,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.active_kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        Ok((token, self.ttl_s))
    }

    /// Verifies a token; see the module documentation.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let now = jsonwebtoken::get_current_timestamp();
        let configured = (self.issuer.as_str(), self.audience.as_str());
        if let Some(claims) = self
            .verified
            .as_ref()
            .and_then(|kept| kept.get(token, now, self.leeway_s, configured))
        {
            return Ok(claims);
        }
        let claims = self.verify_signed(token)?;
        if let Some(kept) = &self.verified {
            kept.insert(token, &claims, now, self.leeway_s);
        }
        Ok(claims)
    }

    /// What [`JwtKeys::verify`] does with a token it has not kept: jsonwebtoken's
    /// checks, with the algorithm and kid checked first.
    fn verify_signed(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::InvalidToken)?;
        if header.alg != self.algorithm {
            return Err(AuthError::InvalidToken);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.decoding.get(kid))
            .ok_or(AuthError::InvalidToken)?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::ExpiredToken,
                _ => AuthError::InvalidToken,
            })
    }
}
