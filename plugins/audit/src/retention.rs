//! Retention: details older than their rule move to `audit_archive`.
//!
//! The live row keeps everything the chain hashes (including `details_hash`), so
//! `audit verify` still passes after archiving, and the archived details can be
//! checked against the row's `details_hash`.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use weapp::db::{Db, Isolation};
use weapp::{AppContext, Shutdown, transaction};

use crate::config::{AuditConfig, RetentionRule};
use crate::record::AuditError;
use crate::schema::{audit_archive as archive, audit_log as log};

/// Rows archived per transaction.
const BATCH: i64 = 500;

/// Archives the details of rows past their rule at `now` (Unix ms); returns how many.
pub async fn archive_expired(
    db: &Db,
    rules: &[RetentionRule],
    now: i64,
) -> Result<usize, AuditError> {
    let mut archived = 0;
    for rule in rules {
        let cutoff = now.saturating_sub((rule.keep_s as i64).saturating_mul(1000));
        let pattern = rule.like_pattern();
        loop {
            let mut conn = db.conn().await?;
            let moved = transaction!(conn, Isolation::BackendDefault, |c| {
                let rows: Vec<(i64, i64, String, Option<String>)> = log::table
                    .filter(log::action.like(&pattern).escape('\\'))
                    .filter(log::at.lt(cutoff))
                    .filter(log::details.is_not_null())
                    .order(log::id)
                    .select((log::id, log::at, log::action, log::details))
                    .limit(BATCH)
                    .load(c)
                    .await?;
                for (id, at, action, details) in &rows {
                    diesel::insert_into(archive::table)
                        .values((
                            archive::id.eq(id),
                            archive::at.eq(at),
                            archive::action.eq(action),
                            archive::details.eq(details.as_deref().unwrap_or("null")),
                            archive::archived_at.eq(now),
                        ))
                        .execute(c)
                        .await?;
                }
                let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
                diesel::update(log::table.filter(log::id.eq_any(&ids)))
                    .set(log::details.eq(None::<String>))
                    .execute(c)
                    .await?;
                Ok::<_, AuditError>(ids.len())
            })?;
            archived += moved;
            if (moved as i64) < BATCH {
                break;
            }
        }
    }
    Ok(archived)
}

/// The retention task: runs every `audit.retention_interval_ms` until shutdown.
pub(crate) async fn run(ctx: AppContext, shutdown: Shutdown) {
    // on_start has read the section, so it is there.
    let config: std::sync::Arc<AuditConfig> = ctx.config().get().unwrap_or_default();
    let interval = std::time::Duration::from_millis(config.retention_interval_ms.max(1));
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = tokio::time::sleep(interval) => {}
        }
        let now = chrono::Utc::now().timestamp_millis();
        match archive_expired(ctx.db(), &config.retention, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(archived = n, "audit details archived"),
            Err(e) => tracing::warn!(error = %e, "audit retention failed"),
        }
    }
}
