//! Walking the chain: the first edited, inserted or deleted row.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use weapp::db::{Db, DbError};
use weapp::with_conn;

use crate::chain::{Content, GENESIS, row_hash, sm3_hex};
use crate::schema::{audit_chain_head as head, audit_log as log};

/// Rows read per query.
const BATCH: i64 = 1_000;

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tampering {
    /// The row's content no longer matches its hash (or its details their hash).
    Edited {
        /// The row.
        id: i64,
    },
    /// Rows are missing before this one.
    Deleted {
        /// The first missing id.
        first_missing: i64,
        /// The next row present.
        next_present: i64,
    },
    /// The row does not follow the one before it: inserted, or the previous row
    /// was rewritten with a recomputed hash.
    Inserted {
        /// The row.
        id: i64,
    },
    /// The chain head does not end where the rows end: rows were deleted from the
    /// end, or appended outside the log.
    HeadMismatch {
        /// The last row present.
        last_row: i64,
        /// Where the head says the chain ends.
        head: i64,
    },
}

impl std::fmt::Display for Tampering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tampering::Edited { id } => write!(f, "row {id} was edited"),
            Tampering::Deleted {
                first_missing,
                next_present,
            } => write!(
                f,
                "rows {first_missing} to {} were deleted",
                next_present - 1
            ),
            Tampering::Inserted { id } => write!(
                f,
                "row {id} does not follow row {}: inserted, or row {} rewritten",
                id - 1,
                id - 1
            ),
            Tampering::HeadMismatch { last_row, head } => write!(
                f,
                "the chain ends at row {head} but the last row is {last_row}"
            ),
        }
    }
}

/// What a walk found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Rows checked.
    pub rows: u64,
    /// Hash of the last row checked: write it down elsewhere to anchor the chain.
    pub head_hash: String,
    /// The first problem, if any.
    pub tampering: Option<Tampering>,
}

type Row = (
    i64,
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
);

/// Walks the whole chain in id order.
pub async fn verify(db: &Db) -> Result<Verification, DbError> {
    let mut conn = db.conn().await?;
    let mut prev_id = 0;
    let mut prev_hash = GENESIS.to_owned();
    let mut rows = 0;
    loop {
        let batch: Vec<Row> = with_conn!(conn, |c| {
            log::table
                .filter(log::id.gt(prev_id))
                .order(log::id)
                .select((
                    log::id,
                    log::at,
                    log::actor,
                    log::action,
                    log::target,
                    log::request_id,
                    log::details,
                    log::details_hash,
                    log::prev_hash,
                    log::hash,
                ))
                .limit(BATCH)
                .load(c)
                .await
        })?;
        let done = (batch.len() as i64) < BATCH;
        for (id, at, actor, action, target, request_id, details, details_hash, stored_prev, hash) in
            batch
        {
            let found = |tampering| Verification {
                rows,
                head_hash: prev_hash.clone(),
                tampering: Some(tampering),
            };
            if id != prev_id + 1 {
                return Ok(found(Tampering::Deleted {
                    first_missing: prev_id + 1,
                    next_present: id,
                }));
            }
            let content = Content {
                id,
                at,
                actor: &actor,
                action: &action,
                target: &target,
                request_id: request_id.as_deref(),
                details_hash: &details_hash,
            };
            let details_ok = details
                .as_ref()
                .is_none_or(|d| sm3_hex(d.as_bytes()) == details_hash);
            if !details_ok || row_hash(&stored_prev, &content) != hash {
                return Ok(found(Tampering::Edited { id }));
            }
            if stored_prev != prev_hash {
                return Ok(found(Tampering::Inserted { id }));
            }
            prev_id = id;
            prev_hash = hash;
            rows += 1;
        }
        if done {
            break;
        }
    }
    let (head_id, head_hash): (i64, String) = with_conn!(conn, |c| {
        head::table
            .find(1)
            .select((head::last_id, head::last_hash))
            .first(c)
            .await
    })?;
    let tampering =
        (head_id != prev_id || head_hash != prev_hash).then_some(Tampering::HeadMismatch {
            last_row: prev_id,
            head: head_id,
        });
    Ok(Verification {
        rows,
        head_hash: prev_hash,
        tampering,
    })
}

/// Rows whose actor or target is `who`, oldest first (at most 10,000), for a data
/// export: `{id, at, actor, action, target}`.
pub async fn rows_about(db: &Db, who: &str) -> Result<Vec<serde_json::Value>, DbError> {
    let mut conn = db.conn().await?;
    let rows: Vec<(i64, i64, String, String, String)> = with_conn!(conn, |c| {
        log::table
            .filter(log::actor.eq(who).or(log::target.eq(who)))
            .order(log::id)
            .select((log::id, log::at, log::actor, log::action, log::target))
            .limit(10_000)
            .load(c)
            .await
    })?;
    Ok(rows
        .into_iter()
        .map(|(id, at, actor, action, target)| {
            serde_json::json!({"id": id, "at": at, "actor": actor, "action": action, "target": target})
        })
        .collect())
}
