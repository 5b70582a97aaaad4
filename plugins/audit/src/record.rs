//! Appending to the chain.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as QueryError};
use diesel_async::RunQueryDsl;
use serde_json::Value;
use weapp::backoff::Transient;
use weapp::db::{Db, DbError, Isolation, RetryPolicy};
use weapp::{transaction, with_conn};

use crate::append::{AppendRows, NewLogRow};
use crate::chain::{row_hash, sm3_hex};
use crate::schema::{audit_chain_head as head, audit_pending as pending};

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
}

/// A deadlock or serialization failure: the chaining transaction is tried again.
impl Transient for AuditError {
    fn is_transient(&self) -> bool {
        match self {
            AuditError::Query(e) => e.is_transient(),
            AuditError::Db(e) => e.is_transient(),
            AuditError::Invalid(_) => false,
        }
    }
}

impl From<AuditError> for weapp::Error {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::Db(e) => e.into(),
            AuditError::Query(e) => DbError::Query(e).into(),
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

/// An event as a row to chain: `(id, at, actor, action, target, request_id, details,
/// event_id)`; `id` is the staging row's (0 for rows chained straight from the bus).
type PendingRow = (
    i64,
    i64,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
);

/// Checks `event` and turns it into a row stamped now.
fn row_of(event: &AuditEvent) -> Result<PendingRow, AuditError> {
    check("actor", &event.actor, 64)?;
    check("action", &event.action, 64)?;
    check("target", &event.target, 128)?;
    let request_id = event
        .request_id
        .clone()
        .filter(|id| !id.is_empty() && id.len() <= 64);
    Ok((
        0,
        chrono::Utc::now().timestamp_millis(),
        event.actor.clone(),
        event.action.clone(),
        event.target.clone(),
        request_id,
        event.details.to_string(),
        event.event_id.clone(),
    ))
}

/// Records `event`: a plain insert into `audit_pending` (no lock shared with other
/// requests), chained into `audit_log` by [`chain_pending`] shortly after. Returns
/// `false` when its event id was recorded before.
pub async fn append(db: &Db, event: &AuditEvent) -> Result<bool, AuditError> {
    let (_, at, actor, action, target, request_id, details, event_id) = row_of(event)?;
    let mut conn = db.conn().await?;
    let inserted = with_conn!(conn, |c| {
        diesel::insert_into(pending::table)
            .values((
                pending::at.eq(at),
                pending::actor.eq(&actor),
                pending::action.eq(&action),
                pending::target.eq(&target),
                pending::request_id.eq(&request_id),
                pending::details.eq(&details),
                pending::event_id.eq(&event_id),
            ))
            .execute(c)
            .await
    });
    match inserted {
        Ok(_) => Ok(true),
        Err(QueryError::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
            if event.event_id.is_some() =>
        {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// Chains a batch of events (from the bus) straight into the log in one transaction,
/// without staging: one lock of the chain head for the whole batch. Events already
/// in the log (redelivered) are skipped; events that fail validation are logged and
/// left out, so they cannot hold the rest back. Returns how many rows were given.
pub async fn chain_events(db: &Db, events: &[AuditEvent]) -> Result<usize, AuditError> {
    let rows: Vec<PendingRow> = events
        .iter()
        .filter_map(|event| {
            row_of(event)
                .inspect_err(|e| {
                    tracing::error!(event_id = ?event.event_id, error = %e, "audit row left out");
                })
                .ok()
        })
        .collect();
    if rows.is_empty() {
        return Ok(0);
    }
    chain(db, Some(&rows)).await
}

/// Rows chained per transaction.
const CHAIN_BATCH: i64 = 500;

/// Moves recorded rows into the chain, oldest first, in batches: each batch takes the
/// chain-head lock once, numbers and hashes its rows, and removes them from
/// `audit_pending` in the same transaction. Returns how many rows were chained.
pub async fn chain_pending(db: &Db) -> Result<usize, AuditError> {
    chain(db, None).await
}

/// Chains `given` rows, or else staged rows batch by batch until none are left.
async fn chain(db: &Db, given: Option<&[PendingRow]>) -> Result<usize, AuditError> {
    let retry = RetryPolicy::default();
    let mut total = 0;
    loop {
        let n = weapp::retrying!(retry, "chain audit rows", chain_batch(db, given).await)?;
        total += n;
        if given.is_some() || (n as i64) < CHAIN_BATCH {
            return Ok(total);
        }
    }
}

/// One transaction: chains `given` rows, or the oldest batch of staged rows;
/// returns how many rows it took.
async fn chain_batch(db: &Db, given: Option<&[PendingRow]>) -> Result<usize, AuditError> {
    let mut conn = db.conn().await?;
    // The chainer runs every few hundred milliseconds: with nothing staged it must
    // not take the head lock, write, or read the log.
    if given.is_none() {
        let staged: bool = with_conn!(conn, |c| {
            diesel::select(diesel::dsl::exists(pending::table.select(pending::id)))
                .get_result(c)
                .await
        })?;
        if !staged {
            return Ok(0);
        }
    }
    transaction!(conn, Isolation::BackendDefault, |c| {
        // Taking the head row's lock first serialises chaining on every backend.
        diesel::update(head::table.find(1))
            .set(head::last_id.eq(head::last_id))
            .execute(c)
            .await?;
        let (mut last_id, mut last_hash): (i64, String) = head::table
            .find(1)
            .select((head::last_id, head::last_hash))
            .first(c)
            .await?;
        let rows: Vec<PendingRow> = match given {
            Some(rows) => rows.to_vec(),
            None => {
                pending::table
                    .order(pending::id)
                    .select((
                        pending::id,
                        pending::at,
                        pending::actor,
                        pending::action,
                        pending::target,
                        pending::request_id,
                        pending::details,
                        pending::event_id,
                    ))
                    .limit(CHAIN_BATCH)
                    .load(c)
                    .await?
            }
        };
        let event_ids: Vec<&str> = rows.iter().filter_map(|r| r.7.as_deref()).collect();
        // An event redelivered after it was chained is staged again; skip it.
        // Also holds the ids chained by this batch, so a batch naming one event
        // twice chains it once. A set: a batch from a consumer that is behind holds
        // thousands of events.
        let mut chained_before: std::collections::HashSet<String> = if event_ids.is_empty() {
            Default::default()
        } else {
            c.chained_before(&event_ids).await?.into_iter().collect()
        };
        let mut chained = Vec::with_capacity(rows.len());
        for (_, at, actor, action, target, request_id, details, event_id) in &rows {
            if event_id
                .as_ref()
                .is_some_and(|e| chained_before.contains(e.as_str()))
            {
                continue;
            }
            let mut row = NewLogRow {
                id: last_id + 1,
                at: *at,
                actor,
                action,
                target,
                request_id: request_id.as_deref(),
                details: Some(details),
                details_hash: sm3_hex(details.as_bytes()),
                event_id: event_id.as_deref(),
                prev_hash: last_hash,
                // Set below: the hash covers the row's other fields.
                hash: String::new(),
            };
            row.hash = row_hash(&row.prev_hash, &row.content());
            last_id = row.id;
            last_hash = row.hash.clone();
            chained.push(row);
            chained_before.extend(event_id.clone());
        }
        c.append_rows(&chained).await?;
        if given.is_none() {
            let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
            diesel::delete(pending::table.filter(pending::id.eq_any(&ids)))
                .execute(c)
                .await?;
        }
        diesel::update(head::table.find(1))
            .set((head::last_id.eq(last_id), head::last_hash.eq(&last_hash)))
            .execute(c)
            .await?;
        Ok::<_, AuditError>(rows.len())
    })
}

/// The chaining task: chains recorded rows every `audit.chain_interval_ms`, and once
/// more at shutdown so nothing recorded stays unchained.
pub(crate) async fn run_chainer(ctx: weapp::AppContext, shutdown: weapp::Shutdown) {
    // on_start has read the section, so it is there.
    let config: std::sync::Arc<crate::config::AuditConfig> = ctx.config().get().unwrap_or_default();
    let interval = std::time::Duration::from_millis(config.chain_interval_ms.max(1));
    loop {
        let stopping = tokio::select! {
            _ = shutdown.wait() => true,
            _ = tokio::time::sleep(interval) => false,
        };
        if let Err(e) = chain_pending(ctx.db()).await {
            tracing::warn!(error = %e, "chaining audit rows failed");
        }
        if stopping {
            break;
        }
    }
}
