//! The framework's one error type and the JSON shape every error response has.
//!
//! Every failure a client can see becomes `{"code", "message", "request_id"}` with a
//! stable, machine-readable `code`. Server-side failures (5xx) never echo internal
//! details to the client: those are logged with the request id instead.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// The `Content-Type` of every JSON response weapp writes.
pub const JSON_UTF8: &str = "application/json; charset=utf-8";

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The framework error: anything a handler, plugin or the app builder can fail with.
///
/// It names no subsystem: a subsystem (database, key-value store, configuration,
/// authentication, a plugin...) implements [`SubsystemError`] for its own error type,
/// next to that type, and converts with `Error::from`. That keeps this file at the
/// bottom of the layers, where every other module may import it.
pub enum Error {
    /// A client-facing error with an explicit status and stable code.
    Http {
        /// HTTP status of the response.
        status: StatusCode,
        /// Stable machine-readable code, e.g. `out_of_stock`.
        code: &'static str,
        /// Human-readable explanation, safe to show to the client.
        message: String,
    },
    /// A subsystem's failure; the subsystem decides status, code and what the
    /// client may read.
    Subsystem(Box<dyn SubsystemError>),
    /// Binding or running the HTTP server failed.
    Io(std::io::Error),
    /// Any other server-side failure; the message is logged, never sent to the client.
    Internal(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Http { message, .. } => f.write_str(message),
            Error::Subsystem(e) => match e.context() {
                Some(context) => write!(f, "{context}: {e}"),
                None => write!(f, "{e}"),
            },
            Error::Io(e) => write!(f, "server error: {e}"),
            Error::Internal(message) => write!(f, "internal error: {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Subsystem(e) => Some(e.as_ref()),
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::Io(err)
    }
}

/// A subsystem's error type as clients see it. The defaults describe a server-side
/// failure: 500 `internal_error`, details only in the log.
pub trait SubsystemError: std::error::Error + Send + Sync + 'static {
    /// What failed, prefixed to the log line (e.g. `database error`); `None` for
    /// errors whose own message says it.
    fn context(&self) -> Option<&'static str> {
        None
    }

    /// HTTP status of the response.
    fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    /// Stable machine-readable code.
    fn code(&self) -> &'static str {
        "internal_error"
    }

    /// What the client may read; by default the error's message for 4xx and a
    /// generic sentence for 5xx, whose details stay in the log.
    fn public_message(&self) -> String {
        if self.status().is_server_error() {
            "internal server error".to_owned()
        } else {
            self.to_string()
        }
    }

    /// The `WWW-Authenticate` challenge of a 401; `None` gives the generic one.
    fn challenge(&self) -> Option<String> {
        None
    }
}

impl<E: SubsystemError> From<E> for Error {
    fn from(err: E) -> Self {
        Error::Subsystem(Box::new(err))
    }
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

    /// The subsystem error inside, if it is an `E`.
    pub fn downcast_ref<E: SubsystemError>(&self) -> Option<&E> {
        match self {
            Error::Subsystem(inner) => (inner.as_ref() as &dyn std::error::Error).downcast_ref(),
            _ => None,
        }
    }

    /// The stable code sent to clients.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Http { code, .. } => code,
            Error::Subsystem(e) => e.code(),
            Error::Io(_) | Error::Internal(_) => "internal_error",
        }
    }

    /// This error's response with `Retry-After: <seconds>` (at least 1): a 429 or
    /// 503 that tells the client when to come back.
    pub fn retry_after_response(&self, seconds: u64) -> HttpResponse {
        let mut response = self.error_response();
        if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
            response.headers_mut().insert(RETRY_AFTER, value);
        }
        response
    }

    /// The client-safe message: 5xx details stay in the logs.
    fn public_message(&self) -> String {
        match self {
            Error::Http { message, .. } => message.clone(),
            Error::Subsystem(e) => e.public_message(),
            _ => "internal server error".to_owned(),
        }
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::Http { status, .. } => *status,
            Error::Subsystem(e) => e.status(),
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(code = self.code(), error = %self, "request failed");
        }
        let mut response = error_response(status, self.code(), &self.public_message());
        if status == StatusCode::UNAUTHORIZED {
            // RFC 9110: every 401 names its scheme.
            let challenge = match self {
                Error::Subsystem(e) => e.challenge(),
                _ => None,
            }
            .unwrap_or_else(|| {
                format!(
                    r#"Bearer realm="weapp", error_description="{}""#,
                    self.code()
                )
            });
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.headers_mut().insert(WWW_AUTHENTICATE, value);
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
        request_id: crate::request_id::current(),
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
