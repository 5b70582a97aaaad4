//! Writing chained rows to `audit_log`, the way each backend does it best.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use weapp::db::{AsyncMysqlConnection, AsyncPgConnection, SqliteConn};

use crate::chain::Content;
use crate::schema::audit_log as log;

/// A chained row of `audit_log`, hashes computed.
#[derive(Debug, Insertable)]
#[diesel(table_name = log, treat_none_as_null = true)]
pub(crate) struct NewLogRow<'a> {
    pub id: i64,
    pub at: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub request_id: Option<&'a str>,
    pub details: Option<&'a str>,
    pub details_hash: String,
    pub event_id: Option<&'a str>,
    pub prev_hash: String,
    pub hash: String,
}

impl NewLogRow<'_> {
    /// The fields its `hash` covers.
    pub(crate) fn content(&self) -> Content<'_> {
        Content {
            id: self.id,
            at: self.at,
            actor: self.actor,
            action: self.action,
            target: self.target,
            request_id: self.request_id,
            details_hash: &self.details_hash,
        }
    }
}

/// Appends a batch of chained rows inside the chaining transaction.
pub(crate) trait AppendRows: Send {
    /// Inserts `rows` (in chain order).
    fn append_rows(
        &mut self,
        rows: &[NewLogRow<'_>],
    ) -> impl std::future::Future<Output = QueryResult<()>> + Send;
}

/// Rows per INSERT: eleven bind parameters each, well inside the 65,535 a
/// statement may carry on PostgreSQL and MySQL, whatever batch the bus hands over.
const ROWS_PER_INSERT: usize = 1_000;

/// PostgreSQL and MySQL: one multi-row INSERT per batch (of up to
/// [`ROWS_PER_INSERT`]), not a round trip per row.
macro_rules! append_in_one_insert {
    ($($conn:ty),+) => {$(
        impl AppendRows for $conn {
            async fn append_rows(&mut self, rows: &[NewLogRow<'_>]) -> QueryResult<()> {
                for chunk in rows.chunks(ROWS_PER_INSERT) {
                    diesel::insert_into(log::table)
                        .values(chunk)
                        .execute(self)
                        .await?;
                }
                Ok(())
            }
        }
    )+};
}

append_in_one_insert!(AsyncPgConnection, AsyncMysqlConnection);

// diesel-async has no multi-row INSERT for SQLite; its inserts are local calls anyway.
impl AppendRows for SqliteConn {
    async fn append_rows(&mut self, rows: &[NewLogRow<'_>]) -> QueryResult<()> {
        for row in rows {
            diesel::insert_into(log::table)
                .values(row)
                .execute(self)
                .await?;
        }
        Ok(())
    }
}
