//! Authentication failures: 401 with a stable code and a `WWW-Authenticate` header.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("an access token is required")]
    MissingToken,
    /// Malformed, wrongly signed, wrong algorithm, issuer or audience.
    #[error("the access token is invalid")]
    InvalidToken,
    /// Past `exp`: refresh it.
    #[error("the access token has expired; use the refresh token")]
    ExpiredToken,
    /// The session was logged out or revoked.
    #[error("the session has ended; log in again")]
    RevokedSession,
    /// Unknown or expired refresh token.
    #[error("the refresh token is invalid")]
    InvalidRefreshToken,
    /// An already used refresh token: the session is revoked.
    #[error("the refresh token was already used; the session is revoked, log in again")]
    RefreshTokenReused,
    /// A server-side failure while authenticating.
    #[error("authentication failed: {0}")]
    Internal(String),
}

impl AuthError {
    /// Stable client-facing code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "missing_token",
            AuthError::InvalidToken => "invalid_token",
            AuthError::ExpiredToken => "expired_token",
            AuthError::RevokedSession => "revoked_session",
            AuthError::InvalidRefreshToken => "invalid_refresh_token",
            AuthError::RefreshTokenReused => "refresh_token_reused",
            AuthError::Internal(_) => "internal_error",
        }
    }
}

impl crate::error::SubsystemError for AuthError {
    fn status(&self) -> StatusCode {
        match self {
            AuthError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    fn code(&self) -> &'static str {
        AuthError::code(self)
    }

    fn challenge(&self) -> Option<String> {
        Some(match self {
            AuthError::MissingToken => r#"Bearer realm="weapp""#.to_owned(),
            _ => format!(
                r#"Bearer realm="weapp", error="invalid_token", error_description="{}""#,
                self.code()
            ),
        })
    }
}

// Extractors fail with `AuthError` itself; it answers like every other `Error`.
impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        crate::error::SubsystemError::status(self)
    }

    fn error_response(&self) -> HttpResponse {
        crate::Error::from(self.clone()).error_response()
    }
}

impl From<crate::kv::KvError> for AuthError {
    fn from(err: crate::kv::KvError) -> Self {
        AuthError::Internal(err.to_string())
    }
}
