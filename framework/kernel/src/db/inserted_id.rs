//! Inserting a row and learning the id the database gave it, the same way on every
//! backend: `INSERT … RETURNING id` on PostgreSQL and SQLite, and on MySQL/MariaDB
//! (which has no `RETURNING`) the insert, then the session's `LAST_INSERT_ID()`.
//!
//! [`insert_returning_id!`](crate::insert_returning_id) declares a trait with one
//! such insert and implements it for the three connection types, so a transaction
//! body written once (in [`with_conn!`](crate::with_conn) or
//! [`transaction!`](crate::transaction)) calls `c.insert_order(&row).await?` whatever
//! the backend:
//!
//! ```
//! use diesel::prelude::*;
//!
//! diesel::table! {
//!     notes (id) {
//!         id -> BigInt,
//!         body -> Text,
//!     }
//! }
//!
//! #[derive(Insertable)]
//! #[diesel(table_name = notes)]
//! struct NewNote<'a> {
//!     body: &'a str,
//! }
//!
//! weapp::insert_returning_id! {
//!     /// Writing notes.
//!     trait InsertNote { fn insert_note(&NewNote<'_>) } => notes::table, notes::id;
//! }
//! ```

use diesel::result::QueryResult;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;

use super::AsyncMysqlConnection;

/// MySQL/MariaDB: the id the last insert on this connection generated.
pub async fn mysql_last_insert_id(c: &mut AsyncMysqlConnection) -> QueryResult<i64> {
    diesel::select(diesel::dsl::sql::<BigInt>(
        "CAST(LAST_INSERT_ID() AS SIGNED)",
    ))
    .get_result(c)
    .await
}

/// Declares a trait with one insert returning the new row's id, implemented for the
/// three connection types; see the [module docs](crate::db::inserted_id).
#[macro_export]
macro_rules! insert_returning_id {
    // `INSERT … RETURNING id`, on the connections whose backend has it.
    (@returning $trait:ident, $method:ident, $row:ty, $table:expr, $id:expr, $($conn:ty),+) => {$(
        impl $trait for $conn {
            async fn $method(&mut self, row: &$row) -> $crate::__private::diesel::QueryResult<i64> {
                // Fully qualified: the caller's scope may hold diesel's blocking
                // `RunQueryDsl` as well.
                $crate::__private::diesel_async::RunQueryDsl::get_result(
                    $crate::__private::diesel::insert_into($table)
                        .values(row)
                        .returning($id),
                    self,
                )
                .await
            }
        }
    )+};
    (
        $(#[$meta:meta])*
        $vis:vis trait $trait:ident { fn $method:ident(&$row:ty) } => $table:expr, $id:expr $(;)?
    ) => {
        $(#[$meta])*
        $vis trait $trait {
            /// Inserts `row`; returns the id the database gave it.
            fn $method(
                &mut self,
                row: &$row,
            ) -> impl ::std::future::Future<Output = $crate::__private::diesel::QueryResult<i64>> + Send;
        }

        $crate::insert_returning_id!(@returning $trait, $method, $row, $table, $id,
            $crate::db::AsyncPgConnection, $crate::db::SqliteConn);

        impl $trait for $crate::db::AsyncMysqlConnection {
            async fn $method(&mut self, row: &$row) -> $crate::__private::diesel::QueryResult<i64> {
                $crate::__private::diesel_async::RunQueryDsl::execute(
                    $crate::__private::diesel::insert_into($table).values(row),
                    self,
                )
                .await?;
                $crate::db::inserted_id::mysql_last_insert_id(self).await
            }
        }
    };
}
