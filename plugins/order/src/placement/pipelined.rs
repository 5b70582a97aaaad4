//! PostgreSQL: placing an order in two round trips, with `COMMIT` in the same
//! pipeline as the stock update.
//!
//! Every order updates the same hot stock row, and that row stays locked from its
//! `UPDATE` until `COMMIT`. Sent one by one, the lock is held across a round trip to
//! the app and however long the app waits for a CPU before it sends `COMMIT` — under
//! load that wait, not the database, limits throughput. Here the app sends:
//!
//! 1. `BEGIN`, the prices of the ordered products and `nextval` of the orders'
//!    sequence (the new order's id), pipelined;
//! 2. the order, its lines, the event (returning its id, for the outbox worker), the
//!    idempotency key, per line
//!    `WITH taken AS (UPDATE stock SET qty = qty - $1 WHERE product_id = $2 AND qty >= $1
//!    RETURNING 1) SELECT 1 / COUNT(*) FROM taken`, and `COMMIT`, pipelined.
//!
//! The stock statement is the guarded `UPDATE` of the other backends with its
//! affected-row check done by the server: no row taken divides by zero, which aborts
//! the transaction, so the `COMMIT` already on the wire ends it as a rollback. The row
//! is then locked only while the server runs the rest of one pipeline. Any failure in
//! the pipeline means nothing was kept; the first one is the cause. Prices are read
//! inside the transaction, so a repeatable-read order is priced from its snapshot.
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

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as QueryError};
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use weapp::db::{AsyncPgConnection, Backend, Isolation, PrepareOnce};

use super::{OrderRequest, Placed, Placement, Placer};
use crate::error::OrderError;
use crate::rows::{NewOrder, OrderWrites, key_taken, prices_of};
use crate::schema::{order_idempotency_keys, order_items, order_outbox, orders};

/// Prices and writes the order in two round trips, retried while it fails
/// transiently.
pub(super) async fn place(
    placer: &Placer,
    c: &mut AsyncPgConnection,
    request: &OrderRequest<'_>,
) -> Result<Placed, OrderError> {
    let ids = request.product_ids();
    weapp::retrying!(
        placer.retry,
        "place order",
        async {
            let (prices, order_id) = begin_order(c, placer.isolation, &ids).await?;
            match Placement::priced(request, &prices, placer.unpaid_timeout_s) {
                Ok(placement) => {
                    let _turn = placer.stock_gate.enter(&ids).await;
                    write(&placement, c, order_id).await
                }
                Err(e) => {
                    rollback(c).await;
                    Err(e)
                }
            }
        }
        .await
    )
}

/// The second round trip, with the transaction begun by the first and the order's
/// id drawn there.
async fn write(
    placement: &Placement<'_>,
    c: &mut AsyncPgConnection,
    order_id: i64,
) -> Result<Placed, OrderError> {
    let written = match placement.written(order_id) {
        Ok(written) => written,
        Err(e) => {
            rollback(c).await;
            return Err(e);
        }
    };
    let writes = OrderWrites {
        items: &written.items,
        event: &written.event,
        key: &placement.key(&written.body),
        lines: placement.request.lines,
    };
    let event_id = write_and_commit(c, order_id, &placement.order(), &writes).await?;
    Ok(Placed {
        body: written.body,
        event_id,
    })
}

/// The stock statement: takes `$1` units of product `$2`, or fails with a division by
/// zero when fewer are left.
pub(crate) const TAKE_STOCK: &str = "WITH taken AS (UPDATE stock SET qty = qty - $1 \
     WHERE product_id = $2 AND qty >= $1 RETURNING 1) SELECT 1 / COUNT(*) AS taken FROM taken";

/// The new order's id, drawn from the orders' sequence before its row is written.
#[derive(QueryableByName)]
struct NextOrderId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// First round trip of one order: begins a transaction and returns the unit prices
/// of the products for sale among `ids` and the new order's id, with the transaction
/// open. On failure the transaction is ended; nothing was written.
async fn begin_order(
    conn: &AsyncPgConnection,
    isolation: Isolation,
    ids: &[i64],
) -> Result<(HashMap<i64, i64>, i64), OrderError> {
    // The sequence behind `orders.id` (BIGSERIAL in the PostgreSQL migration); a
    // refused order leaves a gap, as a rolled-back insert would.
    let order_id = diesel::sql_query("SELECT nextval('orders_id_seq') AS id")
        .prepare_once()
        .get_result::<NextOrderId>(&mut &*conn);
    let (prices, order_id) = begin_with_prices(conn, isolation, ids, order_id).await?;
    Ok((prices, order_id.id))
}

/// A first round trip: `BEGIN`, the unit prices of the products for sale among
/// `ids`, then `draw_ids` (a query on `conn` drawing the new rows' ids), pipelined in
/// that order (the order of first poll). Returns the prices and the ids with the
/// transaction open; on failure the transaction is ended and nothing was written.
pub(crate) async fn begin_with_prices<T>(
    conn: &AsyncPgConnection,
    isolation: Isolation,
    ids: &[i64],
    draw_ids: impl Future<Output = QueryResult<T>>,
) -> Result<(HashMap<i64, i64>, T), OrderError> {
    let begin = diesel::sql_query(isolation.begin_statement(Backend::Postgres))
        .prepare_once()
        .execute(&mut &*conn);
    let prices = prices_of(ids).load::<(i64, i64)>(&mut &*conn);
    let (begun, prices, drawn) = futures_util::join!(begin, prices, draw_ids);
    // Without BEGIN the reads ran on their own and there is nothing to end.
    begun?;
    match (prices, drawn) {
        (Ok(prices), Ok(drawn)) => Ok((prices.into_iter().collect(), drawn)),
        (Err(e), _) | (_, Err(e)) => {
            rollback(conn).await;
            Err(e.into())
        }
    }
}

/// Second round trip: writes the order (as `order_id`) and everything that goes with
/// it, takes its stock and commits; returns the event's id.
async fn write_and_commit(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    order: &NewOrder<'_>,
    w: &OrderWrites<'_>,
) -> Result<i64, OrderError> {
    let shared: &AsyncPgConnection = conn;
    let insert_order = diesel::insert_into(orders::table)
        .values((orders::id.eq(order_id), order))
        .prepare_once()
        .execute(&mut &*shared);
    let items = diesel::insert_into(order_items::table)
        .values(w.items)
        .prepare_once()
        .execute(&mut &*shared);
    let event = diesel::insert_into(order_outbox::table)
        .values(w.event)
        .returning(order_outbox::id)
        .prepare_once()
        .get_result::<i64>(&mut &*shared);
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
    let (inserted, items, event, key, takes, commit) =
        futures_util::join!(insert_order, items, event, key, takes, commit);
    // After the first failure the server answers the rest with "transaction aborted"
    // and the COMMIT with a rollback, so the first failure is the one to report.
    inserted?;
    items?;
    let event_id = event?;
    key.map_err(key_taken)?;
    for (taken, line) in takes.into_iter().zip(w.lines) {
        taken.map_err(|e| out_of_stock(e, line.product_id))?;
    }
    commit?;
    Ok(event_id)
}

/// A division by zero in the stock statement ([`TAKE_STOCK`]) means the product ran
/// short.
pub(crate) fn out_of_stock(e: QueryError, product_id: i64) -> OrderError {
    match &e {
        QueryError::DatabaseError(DatabaseErrorKind::Unknown, info)
            if info.message().contains("division by zero") =>
        {
            OrderError::OutOfStock { product_id }
        }
        _ => OrderError::Query(e),
    }
}

/// Ends the open transaction; a failure leaves the connection for the pool to discard.
pub(crate) async fn rollback(conn: &AsyncPgConnection) {
    if let Err(e) = diesel::sql_query("ROLLBACK").execute(&mut &*conn).await {
        tracing::warn!(error = %e, "rollback failed");
    }
}
