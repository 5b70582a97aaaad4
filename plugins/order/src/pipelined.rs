//! PostgreSQL: placing an order in two round trips, with `COMMIT` in the same
//! pipeline as the stock update.
//!
//! Every order updates the same hot stock row, and that row stays locked from its
//! `UPDATE` until `COMMIT`. Sent one by one, the lock is held across a round trip to
//! the app and however long the app waits for a CPU before it sends `COMMIT` — under
//! load that wait, not the database, limits throughput. Here the app sends:
//!
//! 1. `BEGIN` and `INSERT INTO orders … RETURNING id`, pipelined;
//! 2. the lines, the event, the idempotency key, per line
//!    `WITH taken AS (UPDATE stock SET qty = qty - $1 WHERE product_id = $2 AND qty >= $1
//!    RETURNING 1) SELECT 1 / COUNT(*) FROM taken`, and `COMMIT`, pipelined.
//!
//! The stock statement is the guarded `UPDATE` of the other backends with its
//! affected-row check done by the server: no row taken divides by zero, which aborts
//! the transaction, so the `COMMIT` already on the wire ends it as a rollback. The row
//! is then locked only while the server runs the rest of one pipeline. Any failure in
//! the pipeline means nothing was kept; the first one is the cause.
//!
//! Every statement is prepared once per connection ([`PrepareOnce`]): diesel would
//! prepare these inserts and raw statements on each run, a round trip of its own
//! per statement that holds up the rest of the pipeline (and, for `COMMIT`, with the
//! stock row locked across it).
//!
//! Order on the wire is order of first poll: diesel-async takes its statement cache
//! behind a fair async mutex before sending, and holds it while a statement not yet
//! prepared is prepared, so a cached `COMMIT` cannot overtake a statement polled
//! before it. The oversell and idempotency proofs on PostgreSQL exercise this path
//! from fresh connections (nothing cached yet) as well as warm ones.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as QueryError};
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use weapp::db::{AsyncPgConnection, Backend, Isolation, PrepareOnce};

use crate::backend::{NewOrder, OrderWrites, key_taken};
use crate::error::OrderError;
use crate::model::OrderLine;
use crate::schema::{order_idempotency_keys, order_items, order_outbox, orders};

/// The stock statement: takes `$1` units of product `$2`, or fails with a division by
/// zero when fewer are left.
pub(crate) const TAKE_STOCK: &str = "WITH taken AS (UPDATE stock SET qty = qty - $1 \
     WHERE product_id = $2 AND qty >= $1 RETURNING 1) SELECT 1 / COUNT(*) AS taken FROM taken";

/// Begins a transaction and inserts the order; returns its id, with the transaction
/// open. On failure the transaction is rolled back.
pub(crate) async fn begin_with_order(
    conn: &mut AsyncPgConnection,
    isolation: Isolation,
    order: &NewOrder<'_>,
) -> Result<i64, OrderError> {
    let shared: &AsyncPgConnection = conn;
    let begin_sql = isolation.begin_statement(Backend::Postgres);
    let begin = diesel::sql_query(begin_sql)
        .prepare_once()
        .execute(&mut &*shared);
    let insert = diesel::insert_into(orders::table)
        .values(order)
        .returning(orders::id)
        .prepare_once()
        .get_result::<i64>(&mut &*shared);
    let (begun, inserted) = futures_util::join!(begin, insert);
    match (begun, inserted) {
        (Ok(_), Ok(id)) => Ok(id),
        (Ok(_), Err(e)) => {
            rollback(conn).await;
            Err(e.into())
        }
        (Err(e), inserted) => {
            // Without BEGIN the insert committed on its own: take it back.
            if let Ok(id) = inserted {
                let _ = diesel::delete(orders::table.find(id)).execute(conn).await;
            }
            Err(e.into())
        }
    }
}

/// Writes the rest of the order, takes its stock and commits, in one round trip.
pub(crate) async fn complete_and_commit(
    conn: &mut AsyncPgConnection,
    w: &OrderWrites<'_>,
) -> Result<(), OrderError> {
    let shared: &AsyncPgConnection = conn;
    let items = diesel::insert_into(order_items::table)
        .values(w.items)
        .prepare_once()
        .execute(&mut &*shared);
    let event = diesel::insert_into(order_outbox::table)
        .values(w.event)
        .prepare_once()
        .execute(&mut &*shared);
    let key = diesel::insert_into(order_idempotency_keys::table)
        .values(w.key)
        .prepare_once()
        .execute(&mut &*shared);
    let takes = futures_util::future::join_all(w.lines.iter().map(|line| {
        diesel::sql_query(TAKE_STOCK)
            .bind::<BigInt, _>(line.qty)
            .bind::<BigInt, _>(line.product_id)
            .prepare_once()
            .execute(&mut &*shared)
    }));
    let commit = diesel::sql_query("COMMIT")
        .prepare_once()
        .execute(&mut &*shared);
    let (items, event, key, takes, commit) = futures_util::join!(items, event, key, takes, commit);
    // After the first failure the server answers the rest with "transaction aborted"
    // and the COMMIT with a rollback, so the first failure is the one to report.
    items?;
    event?;
    key.map_err(key_taken)?;
    for (taken, line) in takes.into_iter().zip(w.lines) {
        taken.map_err(|e| out_of_stock(e, line))?;
    }
    commit?;
    Ok(())
}

/// A division by zero in the stock statement means the line's product ran short.
fn out_of_stock(e: QueryError, line: &OrderLine) -> OrderError {
    match &e {
        QueryError::DatabaseError(DatabaseErrorKind::Unknown, info)
            if info.message().contains("division by zero") =>
        {
            OrderError::OutOfStock {
                product_id: line.product_id,
            }
        }
        _ => OrderError::Query(e),
    }
}

/// Ends the open transaction; a failure leaves the connection for the pool to discard.
pub(crate) async fn rollback(conn: &mut AsyncPgConnection) {
    if let Err(e) = diesel::sql_query("ROLLBACK").execute(conn).await {
        tracing::warn!(error = %e, "rollback failed");
    }
}
