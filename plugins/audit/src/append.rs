//! Writing chained rows to `audit_log`, the way each backend does it best.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use diesel_async::RunQueryDsl;
use weapp::db::{AsyncMysqlConnection, AsyncPgConnection, PrepareOnce, SqliteConn};

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

    /// Which of `event_ids` the log holds already.
    fn chained_before(
        &mut self,
        event_ids: &[&str],
    ) -> impl std::future::Future<Output = QueryResult<Vec<String>>> + Send;
}

/// `chained_before` for MySQL and SQLite, whose planners probe the unique index for
/// `IN (…)`.
macro_rules! chained_before_by_in_list {
    () => {
        async fn chained_before(&mut self, event_ids: &[&str]) -> QueryResult<Vec<String>> {
            log::table
                .filter(log::event_id.eq_any(event_ids))
                .select(log::event_id.assume_not_null())
                .load::<String>(self)
                .await
        }
    };
}

/// Rows per INSERT on MySQL: eleven bind parameters each, well inside the 65,535 a
/// statement may carry, whatever batch the bus hands over.
const ROWS_PER_INSERT: usize = 1_000;

/// MySQL: one multi-row INSERT per batch (of up to [`ROWS_PER_INSERT`]), not a
/// round trip per row.
impl AppendRows for AsyncMysqlConnection {
    chained_before_by_in_list!();

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

/// PostgreSQL: a column per array, so the statement's text is the same whatever the
/// batch's size and is prepared once per connection (a multi-row `VALUES` list is
/// parsed and planned again for every batch).
const APPEND_ROWS: &str = "INSERT INTO audit_log (id, at, actor, action, target, request_id, \
     details, details_hash, event_id, prev_hash, hash) \
     SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[], \
     $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])";

/// One probe of the `event_id` index per event: for `= ANY($1)` with a batch of
/// hundreds of ids, PostgreSQL's planner reads the whole log instead (5.7 ms for
/// 500 ids in 30,000 rows, and growing with the log), and chaining runs several
/// times a second under load. `LIMIT 1` keeps the lateral subquery from being
/// flattened into a join the planner would hash the same way.
const CHAINED_BEFORE: &str = "SELECT l.event_id FROM UNNEST($1::text[]) AS e(id) \
     CROSS JOIN LATERAL (SELECT event_id FROM audit_log WHERE event_id = e.id LIMIT 1) AS l";

/// An `event_id`, as `CHAINED_BEFORE` answers it.
#[derive(QueryableByName)]
struct ChainedEvent {
    #[diesel(sql_type = Text)]
    event_id: String,
}

impl AppendRows for AsyncPgConnection {
    async fn chained_before(&mut self, event_ids: &[&str]) -> QueryResult<Vec<String>> {
        let found = diesel::sql_query(CHAINED_BEFORE)
            .bind::<Array<Text>, _>(event_ids)
            .prepare_once()
            .load::<ChainedEvent>(self)
            .await?;
        Ok(found.into_iter().map(|e| e.event_id).collect())
    }

    async fn append_rows(&mut self, rows: &[NewLogRow<'_>]) -> QueryResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let int = |f: fn(&NewLogRow<'_>) -> i64| rows.iter().map(f).collect::<Vec<_>>();
        let text =
            |f: for<'r> fn(&'r NewLogRow<'_>) -> &'r str| rows.iter().map(f).collect::<Vec<_>>();
        let maybe = |f: for<'r> fn(&'r NewLogRow<'_>) -> Option<&'r str>| {
            rows.iter().map(f).collect::<Vec<_>>()
        };
        diesel::sql_query(APPEND_ROWS)
            .bind::<Array<BigInt>, _>(int(|r| r.id))
            .bind::<Array<BigInt>, _>(int(|r| r.at))
            .bind::<Array<Text>, _>(text(|r| r.actor))
            .bind::<Array<Text>, _>(text(|r| r.action))
            .bind::<Array<Text>, _>(text(|r| r.target))
            .bind::<Array<Nullable<Text>>, _>(maybe(|r| r.request_id))
            .bind::<Array<Nullable<Text>>, _>(maybe(|r| r.details))
            .bind::<Array<Text>, _>(text(|r| &r.details_hash))
            .bind::<Array<Nullable<Text>>, _>(maybe(|r| r.event_id))
            .bind::<Array<Text>, _>(text(|r| &r.prev_hash))
            .bind::<Array<Text>, _>(text(|r| &r.hash))
            .prepare_once()
            .execute(self)
            .await?;
        Ok(())
    }
}

// diesel-async has no multi-row INSERT for SQLite; its inserts are local calls anyway.
impl AppendRows for SqliteConn {
    chained_before_by_in_list!();

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
