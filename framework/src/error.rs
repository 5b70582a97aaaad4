//! The framework's one error type and the JSON shape every error response has.
//!
//! Every failure a client can see becomes `{"code", "message", "request_id"}` with a
//! stable, machine-readable `code`. Server-side failures (5xx) never echo internal
//! details to the client: those are logged with the request id instead.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::config::ConfigError;
use crate::crypto::FieldError;
use crate::db::DbError;
use crate::kv::KvError;
use crate::plugin::PluginError;

/// The `Content-Type` of every JSON response weapp writes.
pub const JSON_UTF8: &str = "application/json; charset=utf-8";

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The framework error: anything a handler, plugin or the app builder can fail with.
#[derive(thiserror::Error)]
pub enum Error {
    /// A client-facing error with an explicit status and stable code.
    #[error("{message}")]
    Http {
        /// HTTP status of the response.
        status: StatusCode,
        /// Stable machine-readable code, e.g. `out_of_stock`.
        code: &'static str,
        /// Human-readable explanation, safe to show to the client.
        message: String,
    },
    /// The configuration is invalid; raised at start-up.
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    /// Plugins could not be resolved (duplicate, missing dependency, cycle).
    #[error("plugin error: {0}")]
    Plugin(#[from] PluginError),
    /// The database failed or could not give a connection in time.
    #[error("database error: {0}")]
    Db(#[from] DbError),
    /// The key-value store failed or is unreachable.
    #[error("key-value store error: {0}")]
    Kv(#[from] KvError),
    /// The request is not authenticated (401 with `WWW-Authenticate`).
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// A stored sealed value could not be opened, or crypto is not configured.
    #[error("field encryption: {0}")]
    Field(#[from] FieldError),
    /// Binding or running the HTTP server failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    /// Any other server-side failure; the message is logged, never sent to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

// Debug shows the Display chain so `fn main() -> weapp::Result<()>` prints a readable line.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            write!(f, "\n  caused by: {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl Error {
    /// A client-facing error with any status.
    pub fn http(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Error::Http {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::http(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 Not Found with code `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::http(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409 Conflict.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::http(StatusCode::CONFLICT, code, message)
    }

    /// 422 Unprocessable Entity.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::http(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 503 Service Unavailable.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::http(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// Any other server-side failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }

    /// The stable code sent to clients.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Http { code, .. } => code,
            Error::Db(e) => e.code(),
            Error::Kv(_) => "kv_unavailable",
            Error::Auth(e) => e.code(),
            Error::Field(FieldError::NotConfigured) => "crypto_not_configured",
            Error::Config(_)
            | Error::Plugin(_)
            | Error::Field(_)
            | Error::Io(_)
            | Error::Internal(_) => "internal_error",
        }
    }

    /// The client-safe message: 5xx details stay in the logs.
    fn public_message(&self) -> String {
        match self {
            Error::Http { message, .. } => message.clone(),
            Error::Db(e) => e.public_message().to_owned(),
            Error::Kv(_) => "the key-value store is unavailable, try again later".to_owned(),
            Error::Field(FieldError::NotConfigured) => {
                "field encryption is not configured (crypto.keys)".to_owned()
            }
            _ => "internal server error".to_owned(),
        }
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::Http { status, .. } => *status,
            Error::Db(e) => e.status(),
            Error::Kv(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Auth(e) => e.status_code(),
            Error::Field(FieldError::NotConfigured) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Error::Auth(e) = self {
            return e.error_response();
        }
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(code = self.code(), error = %self, "request failed");
        }
        let mut response = error_response(status, self.code(), &self.public_message());
        if status == StatusCode::UNAUTHORIZED {
            // RFC 9110: every 401 names its scheme.
            let challenge = format!(
                r#"Bearer realm="weapp", error_description="{}""#,
                self.code()
            );
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .insert(actix_web::http::header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// The request id, also sent as the `X-Request-Id` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Builds an error response in the framework's JSON shape for the current request.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    let body = ErrorBody {
        code: code.to_owned(),
        message: message.to_owned(),
        request_id: crate::http::current_request_id(),
    };
    let json = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = HttpResponse::build(status);
    response.insert_header((CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8)));
    response.body(json)
}

/// The code used when a response with this status carries no code of its own.
pub fn default_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        406 => "not_acceptable",
        408 => "request_timeout",
        409 => "conflict",
        411 => "length_required",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        422 => "unprocessable_entity",
        429 => "too_many_requests",
        431 => "headers_too_large",
        503 => "service_unavailable",
        504 => "gateway_timeout",
        s if s >= 500 => "internal_error",
        _ => "client_error",
    }
}
