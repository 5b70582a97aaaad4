//! What can go wrong calling WeChat Pay, and how callers of our API see it.

use weapp::actix_web::http::StatusCode;

/// A failed WeChat Pay call.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    /// WeChat Pay answered with an error: its HTTP status and `{code, message}`.
    #[error("WeChat Pay refused the call: {status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// WeChat Pay's error code, e.g. `PARAM_ERROR`, `ORDER_NOT_EXIST`.
        code: String,
        /// WeChat Pay's message.
        message: String,
    },
    /// The answer is not signed by a WeChat Pay key we trust, or is stale.
    #[error("WeChat Pay's answer does not verify: {0}")]
    Unverified(&'static str),
    /// No connection, a timeout, or a broken body.
    #[error("WeChat Pay is unreachable: {0}")]
    Transport(String),
    /// A verified answer that is not what the API documents.
    #[error("WeChat Pay's answer is not understood: {0}")]
    Unexpected(String),
}

impl PayError {
    /// WeChat Pay's error code, if it answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            PayError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl From<reqwest::Error> for PayError {
    fn from(err: reqwest::Error) -> Self {
        PayError::Transport(err.without_url().to_string())
    }
}

impl From<PayError> for weapp::Error {
    fn from(err: PayError) -> Self {
        match &err {
            PayError::Transport(_) => weapp::Error::http(
                StatusCode::BAD_GATEWAY,
                "pay_unavailable",
                "WeChat Pay is unavailable, try again later",
            ),
            _ => {
                tracing::warn!(error = %err, "WeChat Pay call failed");
                weapp::Error::http(StatusCode::BAD_GATEWAY, "pay_error", err.to_string())
            }
        }
    }
}
