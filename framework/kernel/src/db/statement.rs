//! Statements that the connection prepares once and reuses.
//!
//! diesel marks every [`diesel::sql_query`], every `INSERT` of an `Insertable` value
//! and every `UPDATE` as unsafe to cache, because their text can take many forms (a
//! `None` field becomes `DEFAULT`, a batch insert grows with its rows). diesel-async
//! then prepares such a statement on each run: a round trip of its own, taken while
//! the connection's statement cache is locked, so statements queued behind it in a
//! pipeline wait for it too, and the server parses and plans it every time. On a hot
//! path that is most of the cost. [`PrepareOnce::prepare_once`] marks a query as
//! cacheable: it is prepared on first use per connection and then reused, keyed by
//! its SQL text and bind types, so each form of the text gets its own statement.
//!
//! ```
//! use diesel::sql_types::BigInt;
//! use weapp::db::PrepareOnce;
//!
//! let take = diesel::sql_query("UPDATE stock SET qty = qty - $1 WHERE product_id = $2")
//!     .bind::<BigInt, _>(1_i64)
//!     .bind::<BigInt, _>(7_i64)
//!     .prepare_once();
//! # let _ = take;
//! ```
//!
//! Only for queries whose text takes a few forms (a constant, a struct insert, a
//! batch insert of bounded size): each distinct text stays prepared on every
//! connection that ran it, so text built from input would grow that cache without
//! bound.

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::QueryResult;

/// A query the connection prepares on first use and then reuses, keyed by its SQL
/// text and bind types.
#[derive(Debug, Clone, Copy)]
pub struct PreparedOnce<Q>(Q);

/// Marks a raw SQL query with a fixed text as cacheable: [`PreparedOnce`].
pub trait PrepareOnce: Sized {
    /// Wraps the query so the connection prepares it once and reuses it.
    fn prepare_once(self) -> PreparedOnce<Self> {
        PreparedOnce(self)
    }
}

impl<Q> PrepareOnce for Q {}

impl<Q, DB> QueryFragment<DB> for PreparedOnce<Q>
where
    Q: QueryFragment<DB>,
    DB: Backend,
{
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    // The point of the wrapper: the inner query says "unsafe" because its text could
    // vary; the caller vouches that it does not.
    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

/// No static id: the statement cache keys it by its SQL text and bind types.
impl<Q> QueryId for PreparedOnce<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// Loads rows as the inner query does (`INSERT … RETURNING`, `SELECT`).
impl<Q: Query> Query for PreparedOnce<Q> {
    type SqlType = Q::SqlType;
}
