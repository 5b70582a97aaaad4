//! Appending to the chain.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as QueryError};
use diesel_async::RunQueryDsl;
use serde_json::Value;
use weapp::db::{Db, DbError, Isolation, RetryPolicy};
use weapp::transaction;

use crate::chain::{Content, row_hash, sm3_hex};
use crate::schema::{audit_chain_head as head, audit_log as log};

/// Keys whose values are personal data; [`AuditEvent::details`] replaces them with
/// `"[redacted]"` wherever they appear, so the log never holds them in clear.
pub const PERSONAL_KEYS: &[&str] = &[
    "phone",
    "phone_number",
    "purephonenumber",
    "openid",
    "unionid",
    "session_key",
    "nickname",
    "avatar_url",
    "name",
    "id_card",
    "address",
    "email",
    // WeChat pushes name the user by openid in these.
    "fromusername",
    "tousername",
];

/// Something worth an audit row.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// Who acted: `user:42`, `admin`, `payment`, `system` (at most 64 bytes).
    pub actor: String,
    /// What happened: `auth.login`, `order.paid` (at most 64 bytes).
    pub action: String,
    /// To what: `order:17`, `user:42` (at most 128 bytes).
    pub target: String,
    /// The request that caused it; taken from the current request when absent.
    pub request_id: Option<String>,
    /// Facts, personal keys redacted.
    pub details: Value,
    /// The id of the event this records, so recording it twice adds one row.
    pub event_id: Option<String>,
}

impl AuditEvent {
    /// An event with empty details, stamped with the current request's id.
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
    ) -> Self {
        AuditEvent {
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            request_id: weapp::http::current_request_id(),
            details: Value::Object(Default::default()),
            event_id: None,
        }
    }

    /// Sets the details, redacting [`PERSONAL_KEYS`].
    pub fn details(mut self, mut details: Value) -> Self {
        redact(&mut details);
        self.details = details;
        self
    }

    /// Marks the row as recording event `id` (recorded at most once).
    pub fn event_id(mut self, id: impl Into<String>) -> Self {
        self.event_id = Some(id.into());
        self
    }
}

/// Replaces the values of personal keys, at any depth.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if PERSONAL_KEYS.contains(&key.to_ascii_lowercase().as_str()) {
                    *inner = Value::String("[redacted]".into());
                } else {
                    redact(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// Why a row was not appended.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A statement failed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// No connection.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A field is too long or empty.
    #[error("invalid audit event: {0}")]
    Invalid(String),
    /// The event id was recorded before.
    #[error("already recorded")]
    Duplicate,
}

impl From<AuditError> for weapp::Error {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::Db(e) => weapp::Error::Db(e),
            AuditError::Query(e) => weapp::Error::Db(DbError::Query(e)),
            e => weapp::Error::internal(e.to_string()),
        }
    }
}

fn check(field: &str, value: &str, max: usize) -> Result<(), AuditError> {
    if value.is_empty() || value.len() > max {
        return Err(AuditError::Invalid(format!(
            "{field} must be 1 to {max} bytes"
        )));
    }
    Ok(())
}

/// Appends `event`; returns its row id, or `None` when its event id was recorded
/// before. Appends are serialised on the chain head row, so rows are numbered 1, 2,
/// 3... in the order they were committed.
pub async fn append(db: &Db, event: &AuditEvent) -> Result<Option<i64>, AuditError> {
    check("actor", &event.actor, 64)?;
    check("action", &event.action, 64)?;
    check("target", &event.target, 128)?;
    let request_id = event
        .request_id
        .as_deref()
        .filter(|id| !id.is_empty() && id.len() <= 64);
    let details = event.details.to_string();
    let details_hash = sm3_hex(details.as_bytes());
    let retry = RetryPolicy::default();
    let mut conn = db.conn().await?;
    let mut tries = 0;
    loop {
        tries += 1;
        let at = chrono::Utc::now().timestamp_millis();
        let appended = transaction!(conn, Isolation::BackendDefault, |c| {
            // Taking the head row's lock first serialises appends on every backend.
            diesel::update(head::table.find(1))
                .set(head::last_id.eq(head::last_id))
                .execute(c)
                .await?;
            let (last_id, last_hash): (i64, String) = head::table
                .find(1)
                .select((head::last_id, head::last_hash))
                .first(c)
                .await?;
            let id = last_id + 1;
            let content = Content {
                id,
                at,
                actor: &event.actor,
                action: &event.action,
                target: &event.target,
                request_id,
                details_hash: &details_hash,
            };
            let hash = row_hash(&last_hash, &content);
            diesel::insert_into(log::table)
                .values((
                    log::id.eq(id),
                    log::at.eq(at),
                    log::actor.eq(&event.actor),
                    log::action.eq(&event.action),
                    log::target.eq(&event.target),
                    log::request_id.eq(request_id),
                    log::details.eq(Some(&details)),
                    log::details_hash.eq(&details_hash),
                    log::event_id.eq(event.event_id.as_deref()),
                    log::prev_hash.eq(&last_hash),
                    log::hash.eq(&hash),
                ))
                .execute(c)
                .await
                .map_err(|e| match e {
                    QueryError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
                        if event.event_id.is_some() =>
                    {
                        AuditError::Duplicate
                    }
                    e => AuditError::Query(e),
                })?;
            diesel::update(head::table.find(1))
                .set((head::last_id.eq(id), head::last_hash.eq(&hash)))
                .execute(c)
                .await?;
            Ok::<_, AuditError>(id)
        });
        match appended {
            Ok(id) => return Ok(Some(id)),
            Err(AuditError::Duplicate) => return Ok(None),
            Err(AuditError::Query(e)) if weapp::db::is_transient(&e) => {
                match retry.backoff(tries) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(AuditError::Query(e)),
                }
            }
            Err(e) => return Err(e),
        }
    }
}
