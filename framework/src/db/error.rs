//! Database errors and how they reach clients.

use actix_web::http::StatusCode;
use diesel::result::Error as QueryError;

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had in time, or the server is unreachable.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A query failed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A migration could not be applied or does not match what was applied before.
    #[error("migration failed: {0}")]
    Migration(String),
    /// The database configuration cannot be used.
    #[error("database configuration: {0}")]
    Config(String),
}

impl DbError {
    /// Whether retrying the whole transaction may succeed; see
    /// [`is_transient`](super::is_transient).
    pub fn is_transient(&self) -> bool {
        matches!(self, DbError::Query(e) if super::is_transient(e))
    }

    /// Stable code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            DbError::Unavailable(_) => "database_unavailable",
            DbError::Query(QueryError::NotFound) => "not_found",
            _ => "internal_error",
        }
    }

    /// HTTP status for clients.
    pub fn status(&self) -> StatusCode {
        match self {
            DbError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            DbError::Query(QueryError::NotFound) => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Client-safe message: no SQL, no connection details.
    pub fn public_message(&self) -> &'static str {
        match self {
            DbError::Unavailable(_) => "the database is unavailable, try again later",
            DbError::Query(QueryError::NotFound) => "not found",
            _ => "internal server error",
        }
    }
}

impl<E: std::fmt::Display> From<bb8::RunError<E>> for DbError {
    fn from(err: bb8::RunError<E>) -> Self {
        match err {
            bb8::RunError::TimedOut => {
                DbError::Unavailable("timed out waiting for a pooled connection".into())
            }
            bb8::RunError::User(e) => DbError::Unavailable(e.to_string()),
        }
    }
}
