//! Running the queue's SQL on any backend.
//!
//! The queue's statements are raw SQL over a table named at run time, written once
//! with `?` placeholders (MySQL's and SQLite's) and numbered `$1, $2, …` for
//! PostgreSQL. On PostgreSQL every statement has a fixed text per queue, so each is
//! prepared once per connection ([`PrepareOnce`]); on MySQL and SQLite some list
//! their ids inline (`IN (?, ?, …)`), so none is kept prepared.

use diesel::QueryableByName;
use diesel::mysql::Mysql;
use diesel::pg::Pg;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::result::QueryResult;
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use diesel::sqlite::Sqlite;
use diesel_async::RunQueryDsl;

use crate::db::{DbConn, PrepareOnce};

/// A value bound to the next placeholder.
#[derive(Debug, Clone, Copy)]
pub(super) enum Value<'a> {
    Int(i64),
    OptInt(Option<i64>),
    Text(&'a str),
    /// PostgreSQL: one `BIGINT[]` (for `= ANY(?)`). Elsewhere each id fills a
    /// placeholder of its own, as an `IN (…)` list would need.
    Ids(&'a [i64]),
}

/// A row of one id, for reading due ids.
#[derive(Debug, QueryableByName)]
pub(super) struct Id {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
}

/// `sql` with its `?` placeholders numbered for PostgreSQL. The queue's SQL holds
/// no `?` but its placeholders (state names are plain words).
pub(super) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

fn pg_query<'a>(sql: &str, values: &[Value<'a>]) -> BoxedSqlQuery<'a, Pg, SqlQuery> {
    let mut query = diesel::sql_query(numbered(sql)).into_boxed();
    for value in values {
        query = match *value {
            Value::Int(v) => query.bind::<BigInt, _>(v),
            Value::OptInt(v) => query.bind::<Nullable<BigInt>, _>(v),
            Value::Text(v) => query.bind::<Text, _>(v),
            Value::Ids(ids) => query.bind::<Array<BigInt>, _>(ids),
        };
    }
    query
}

/// The same binding for the backends without arrays.
macro_rules! listed_query {
    ($name:ident, $db:ty) => {
        fn $name<'a>(sql: &str, values: &[Value<'a>]) -> BoxedSqlQuery<'a, $db, SqlQuery> {
            let mut query = diesel::sql_query(sql).into_boxed();
            for value in values {
                query = match *value {
                    Value::Int(v) => query.bind::<BigInt, _>(v),
                    Value::OptInt(v) => query.bind::<Nullable<BigInt>, _>(v),
                    Value::Text(v) => query.bind::<Text, _>(v),
                    Value::Ids(ids) => ids.iter().fold(query, |q, id| q.bind::<BigInt, _>(*id)),
                };
            }
            query
        }
    };
}
listed_query!(mysql_query, Mysql);
listed_query!(sqlite_query, Sqlite);

/// Runs a statement; returns the rows it changed.
pub(super) async fn execute(
    conn: &mut DbConn,
    sql: &str,
    values: &[Value<'_>],
) -> QueryResult<usize> {
    match conn {
        DbConn::Postgres(c) => pg_query(sql, values).prepare_once().execute(&mut **c).await,
        DbConn::Mysql(c) => mysql_query(sql, values).execute(&mut **c).await,
        DbConn::Sqlite(c) => sqlite_query(sql, values).execute(&mut **c).await,
    }
}

/// Runs a query; returns its rows.
pub(super) async fn load<R>(
    conn: &mut DbConn,
    sql: &str,
    values: &[Value<'_>],
) -> QueryResult<Vec<R>>
where
    R: QueryableByName<Pg> + QueryableByName<Mysql> + QueryableByName<Sqlite> + Send + 'static,
{
    match conn {
        DbConn::Postgres(c) => pg_query(sql, values).prepare_once().load(&mut **c).await,
        DbConn::Mysql(c) => mysql_query(sql, values).load(&mut **c).await,
        DbConn::Sqlite(c) => sqlite_query(sql, values).load(&mut **c).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(
            numbered("UPDATE t SET a = ? WHERE id = ANY(?) AND b < ?"),
            "UPDATE t SET a = $1 WHERE id = ANY($2) AND b < $3"
        );
    }
}
