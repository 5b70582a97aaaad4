//! Re-encrypting stored values under the active key (`crypto rotate`).
//!
//! Each sealed column is walked in id order, in batches. A value under an old key is
//! opened and re-sealed, then written with a compare-and-set
//! (`UPDATE .. WHERE id = ? AND col = <old bytes>`), so a concurrent write is never
//! overwritten. Values already under the active key are skipped, which makes the
//! command resumable: an interrupted run is simply run again.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Binary, Nullable};
use diesel_async::RunQueryDsl;

use weapp_crypto::{FieldContext, FieldCrypto, KeyRing};

use super::{Backend, Db, DbError};
use crate::with_conn;

/// A sealed column the rotation visits; plugins list theirs in
/// [`Plugin::sealed_columns`](crate::Plugin::sealed_columns).
#[derive(Debug, Clone, Copy)]
pub struct SealedColumnInfo {
    /// Table and column.
    pub context: FieldContext,
    /// The table's integer primary key column.
    pub id_column: &'static str,
}

/// Counts from one rotation run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// Rows read.
    pub scanned: u64,
    /// Values re-sealed under the active key.
    pub rotated: u64,
    /// Values already under the active key (or NULL).
    pub current: u64,
    /// Values changed by someone else between read and write (left for a re-run).
    pub raced: u64,
    /// Values that could not be opened (unknown key, tampered); their ids are logged.
    pub failed: u64,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Nullable<Binary>)]
    value: Option<Vec<u8>>,
}

/// Only plain identifiers are spliced into SQL.
fn identifier(name: &str) -> Result<&str, DbError> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    ok.then_some(name)
        .ok_or_else(|| DbError::Config(format!("`{name}` is not a plain SQL identifier")))
}

fn placeholder(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    }
}

/// Re-seals every value of `columns` that is not under the active key, `batch_size`
/// rows at a time.
pub async fn rotate_keys(
    db: &Db,
    crypto: &FieldCrypto,
    columns: &[SealedColumnInfo],
    batch_size: u32,
) -> Result<RotationReport, DbError> {
    let mut report = RotationReport::default();
    let backend = db.backend();
    for info in columns {
        let table = identifier(info.context.table)?;
        let column = identifier(info.context.column)?;
        let id_column = identifier(info.id_column)?;
        let select = format!(
            "SELECT {id_column} AS id, {column} AS value FROM {table} WHERE {id_column} > {} \
             ORDER BY {id_column} LIMIT {}",
            placeholder(backend, 1),
            batch_size.max(1)
        );
        let update = format!(
            "UPDATE {table} SET {column} = {} WHERE {id_column} = {} AND {column} = {}",
            placeholder(backend, 1),
            placeholder(backend, 2),
            placeholder(backend, 3)
        );
        let mut after = i64::MIN;
        loop {
            let mut conn = db.conn().await?;
            let rows: Vec<Row> = with_conn!(conn, |c| {
                diesel::sql_query(&select)
                    .bind::<BigInt, _>(after)
                    .load(c)
                    .await
            })?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            for row in rows {
                report.scanned += 1;
                let Some(old) = row.value else {
                    report.current += 1;
                    continue;
                };
                let new = match crypto.ring().reseal(&old, &info.context) {
                    Ok(Some(new)) => new,
                    Ok(None) => {
                        report.current += 1;
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(table, column, id = row.id, key = ?KeyRing::key_id_of(&old).ok(), error = %e, "cannot re-seal value");
                        report.failed += 1;
                        continue;
                    }
                };
                let updated = with_conn!(conn, |c| {
                    diesel::sql_query(&update)
                        .bind::<Binary, _>(&new)
                        .bind::<BigInt, _>(row.id)
                        .bind::<Binary, _>(&old)
                        .execute(c)
                        .await
                })?;
                if updated == 1 {
                    report.rotated += 1;
                } else {
                    report.raced += 1;
                }
            }
            tracing::info!(
                table,
                column,
                after,
                rotated = report.rotated,
                "rotation batch done"
            );
        }
    }
    Ok(report)
}
