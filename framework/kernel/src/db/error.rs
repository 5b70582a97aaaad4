//! Database errors and how they reach clients.

use actix_web::http::StatusCode;
use diesel::result::{DatabaseErrorKind, Error as QueryError};

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

/// Whether retrying the whole transaction may succeed; see
/// [`is_transient`](super::is_transient).
impl crate::backoff::Transient for DbError {
    fn is_transient(&self) -> bool {
        matches!(self, DbError::Query(e) if super::is_transient(e))
    }
}

impl DbError {
    /// Whether the database could not be reached (no connection in time, or the
    /// connection was lost mid-request): the client may retry later.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            DbError::Unavailable(_)
                | DbError::Query(QueryError::DatabaseError(
                    DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                    _
                ))
        )
    }

    /// Stable code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            e if e.is_unavailable() => "database_unavailable",
            DbError::Query(QueryError::NotFound) => "not_found",
            _ => "internal_error",
        }
    }

    /// HTTP status for clients.
    pub fn status(&self) -> StatusCode {
        match self {
            e if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            DbError::Query(QueryError::NotFound) => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Client-safe message: no SQL, no connection details.
    pub fn public_message(&self) -> &'static str {
        match self {
            e if e.is_unavailable() => "the database is unavailable, try again later",
            DbError::Query(QueryError::NotFound) => "not found",
            _ => "internal server error",
        }
    }
}

impl crate::error::SubsystemError for DbError {
    fn context(&self) -> Option<&'static str> {
        Some("database error")
    }
    fn status(&self) -> StatusCode {
        DbError::status(self)
    }
    fn code(&self) -> &'static str {
        DbError::code(self)
    }
    fn public_message(&self) -> String {
        DbError::public_message(self).to_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_is_unavailability_not_an_internal_error() {
        let closed = DbError::Query(QueryError::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            Box::new("connection closed".to_owned()),
        ));
        assert_eq!(closed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(closed.code(), "database_unavailable");
        // diesel-async reports a PostgreSQL connection lost mid-query this way.
        let lost = DbError::Query(QueryError::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand,
            Box::new("connection closed".to_owned()),
        ));
        assert_eq!(lost.status(), StatusCode::SERVICE_UNAVAILABLE);
        let other = DbError::Query(QueryError::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new("syntax error".to_owned()),
        ));
        assert_eq!(other.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(other.code(), "internal_error");
    }
}
