//! A batch of orders in one PostgreSQL transaction, in two pipelined round trips:
//!
//! ```sql
//! -- 1
//! BEGIN                     -- or BEGIN TRANSACTION ISOLATION LEVEL … per order.isolation
//! SELECT id, price_fen FROM products WHERE id = ANY($1) AND active = $2
//! SELECT nextval('orders_id_seq') AS order_id, nextval('order_outbox_id_seq') AS event_id
//!   FROM generate_series(1, $1)                              -- an id pair per order
//! -- 2
//! INSERT INTO orders (…) SELECT … FROM UNNEST($1::int8[], …)  -- one row per order
//! INSERT INTO order_items (…) SELECT * FROM UNNEST(…)          -- every line
//! INSERT INTO order_outbox (id, …) SELECT * FROM UNNEST(…)     -- one event per order
//! INSERT INTO order_idempotency_keys (…) SELECT * FROM UNNEST(…)
//! WITH taken AS (UPDATE stock SET qty = qty - $1 WHERE product_id = $2 AND qty >= $1
//!   RETURNING 1) SELECT 1 / COUNT(*) AS taken FROM taken     -- per product, the batch's total
//! COMMIT
//! ```
//!
//! The arrays keep each statement's text fixed whatever the batch size, so each is
//! prepared once per connection. The stock statement is the single-order one with the
//! batch's units of the product: it succeeds only if all of them are there, and
//! otherwise divides by zero, which ends the transaction with the rest.
//!
//! Orders whose products are not for sale (or whose total overflows) are left out of
//! the batch and refused as they would be alone, once the transaction has ended. When
//! a product runs short, the orders of that product are placed on their own (where
//! each learns whether a unit is left for it) and the rest of the batch tries again
//! without them, so one sold-out product does not push every order of the shop onto
//! the one-by-one path. Any other failure answers nobody: each order is then placed on
//! its own (see the [module docs](super)).

use std::collections::{BTreeMap, HashMap};

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Binary, Integer, Text};
use diesel_async::RunQueryDsl;
use weapp::db::{AsyncPgConnection, Db, DbConn, Isolation, PrepareOnce};

use super::Queued;
use crate::error::OrderError;
use crate::idempotency::IdempotencyKey;
use crate::model::{OrderLine, OrderStatus};
use crate::placement::pipelined::{TAKE_STOCK, begin_with_prices, out_of_stock, rollback};
use crate::placement::{OrderRequest, Placed, Placement, Written};
use crate::rows::{INSERT_ITEMS, NewItem, key_taken};

/// One order waiting for a batch: what `POST /api/orders` asked for, owned.
pub(crate) struct GroupedOrder {
    pub user_id: i64,
    pub key: IdempotencyKey,
    pub hash: Vec<u8>,
    /// Sorted by product.
    pub lines: Vec<OrderLine>,
}

impl GroupedOrder {
    fn request(&self) -> OrderRequest<'_> {
        OrderRequest {
            user_id: self.user_id,
            key: &self.key,
            hash: &self.hash,
            lines: &self.lines,
        }
    }
}

/// What a batch answers each order: placed, or refused before any write.
pub(crate) type Answer = Result<Placed, OrderError>;

/// What a batch needs of the plugin's configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchSettings {
    pub isolation: Isolation,
    pub unpaid_timeout_s: u64,
}

/// Places `batch` in one transaction and answers each order. If a product ran short,
/// its orders are left to be placed alone and the rest try again (up to [`ATTEMPTS`]
/// transactions in all); after any other failure every unanswered order is placed
/// alone.
pub(crate) async fn place_batch(
    db: Db,
    settings: BatchSettings,
    batch: Vec<Queued<GroupedOrder, Answer>>,
) {
    let size = batch.len();
    let mut conn = match db.conn().await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::debug!(error = %e, size, "no connection for a batch of orders");
            return;
        }
    };
    let DbConn::Postgres(c) = &mut conn else {
        return;
    };
    let mut batch = batch;
    for attempt in 1..=ATTEMPTS {
        let Err(unplaced) = place(c, settings, batch).await else {
            return;
        };
        super::metrics::metrics().rolled_back.inc();
        tracing::debug!(error = %unplaced.error, size, attempt, "a batch of orders rolled back");
        // A product that ran short fails every batch that orders it. Its orders are
        // placed alone (each learns whether a unit is left for it); the others try
        // again together rather than all falling back to one transaction each.
        let OrderError::OutOfStock { product_id } = unplaced.error else {
            return;
        };
        let (rest, _placed_alone): (Vec<_>, Vec<_>) = unplaced
            .orders
            .into_iter()
            .partition(|q| q.job.lines.iter().all(|l| l.product_id != product_id));
        if rest.is_empty() {
            return;
        }
        batch = rest;
    }
}

/// Tries per batch: each retry leaves out the orders of a product that ran short.
const ATTEMPTS: usize = 3;

/// Why a batch rolled back, and its orders that got no answer.
struct Unplaced {
    error: OrderError,
    orders: Vec<Queued<GroupedOrder, Answer>>,
}

/// An order of the batch with everything its rows need.
struct Priced {
    queued: Queued<GroupedOrder, Answer>,
    order_id: i64,
    event_id: i64,
    total: i64,
    now: i64,
    expires_at: i64,
    written: Written,
}

async fn place(
    c: &mut AsyncPgConnection,
    settings: BatchSettings,
    batch: Vec<Queued<GroupedOrder, Answer>>,
) -> Result<(), Unplaced> {
    let mut product_ids: Vec<i64> = batch
        .iter()
        .flat_map(|q| q.job.lines.iter().map(|l| l.product_id))
        .collect();
    product_ids.sort_unstable();
    product_ids.dedup();
    let (prices, ids) = match begin(c, settings.isolation, &product_ids, batch.len()).await {
        Ok(begun) => begun,
        Err(error) => {
            return Err(Unplaced {
                error,
                orders: batch,
            });
        }
    };

    let mut priced = Vec::with_capacity(batch.len());
    let mut refused = Vec::new();
    for (queued, (order_id, event_id)) in batch.into_iter().zip(ids) {
        let request = queued.job.request();
        let placement = Placement::priced(&request, &prices, settings.unpaid_timeout_s)
            .and_then(|p| Ok((p.total, p.now, p.expires_at, p.written(order_id)?)));
        match placement {
            Ok((total, now, expires_at, written)) => priced.push(Priced {
                queued,
                order_id,
                event_id,
                total,
                now,
                expires_at,
                written,
            }),
            Err(e) => refused.push((queued, e)),
        }
    }
    let outcome = write(c, priced).await;
    // Only now that the transaction has ended: a client that got its refusal may
    // look at the database at once.
    for (queued, e) in refused {
        queued.answer(Err(e));
    }
    outcome
}

/// Writes and commits the priced orders and answers them, or ends the transaction
/// and hands back the orders it did not answer.
async fn write(c: &mut AsyncPgConnection, mut priced: Vec<Priced>) -> Result<(), Unplaced> {
    // Keys in one order everywhere: two batches that share keys (a client's retries
    // racing) then wait on each other's key in turn instead of deadlocking.
    priced.sort_unstable_by(|a, b| {
        let (a, b) = (&a.queued.job, &b.queued.job);
        (a.user_id, a.key.as_str()).cmp(&(b.user_id, b.key.as_str()))
    });
    let units = match units_per_product(&priced) {
        Some(units) if !priced.is_empty() => units,
        // Nobody left to place, or more units than a row can count: the orders are
        // placed alone, with their own totals.
        _ => {
            rollback(c).await;
            return Ok(());
        }
    };
    if let Err(error) = write_and_commit(c, &priced, &units).await {
        return Err(Unplaced {
            error,
            orders: priced.into_iter().map(|p| p.queued).collect(),
        });
    }
    super::metrics::metrics()
        .batch_orders
        .observe(priced.len() as f64);
    for order in priced {
        let placed = Placed {
            body: order.written.body,
            event_id: order.event_id,
        };
        order.queued.answer(Ok(placed));
    }
    Ok(())
}

/// Units of each product the batch takes, by product id (the order in which the
/// stock rows are locked); `None` if a sum overflows.
fn units_per_product(orders: &[Priced]) -> Option<BTreeMap<i64, i64>> {
    let mut units: BTreeMap<i64, i64> = BTreeMap::new();
    for line in orders.iter().flat_map(|o| &o.queued.job.lines) {
        let total = units.entry(line.product_id).or_default();
        *total = total.checked_add(line.qty)?;
    }
    Some(units)
}

/// One column of the batch's rows, in the batch's order.
fn column<'a, T>(orders: &'a [Priced], f: impl Fn(&'a Priced) -> T) -> Vec<T> {
    orders.iter().map(f).collect()
}

/// A pair of new ids.
#[derive(QueryableByName)]
struct NewIds {
    #[diesel(sql_type = BigInt)]
    order_id: i64,
    #[diesel(sql_type = BigInt)]
    event_id: i64,
}

/// First round trip: begins the transaction, reads the prices of `product_ids` and
/// draws `orders` (order id, event id) pairs. On failure the transaction is ended.
async fn begin(
    conn: &AsyncPgConnection,
    isolation: Isolation,
    product_ids: &[i64],
    orders: usize,
) -> Result<(HashMap<i64, i64>, Vec<(i64, i64)>), OrderError> {
    let ids = diesel::sql_query(
        "SELECT nextval('orders_id_seq') AS order_id, \
         nextval('order_outbox_id_seq') AS event_id FROM generate_series(1, $1)",
    )
    .bind::<BigInt, _>(i64::try_from(orders).unwrap_or(i64::MAX))
    .prepare_once()
    .load::<NewIds>(&mut &*conn);
    let (prices, ids) = begin_with_prices(conn, isolation, product_ids, ids).await?;
    Ok((
        prices,
        ids.into_iter().map(|i| (i.order_id, i.event_id)).collect(),
    ))
}

const INSERT_ORDERS: &str = "INSERT INTO orders \
     (id, user_id, status, total_fen, version, created_at, updated_at, expires_at) \
     SELECT o.id, o.user_id, $6, o.total_fen, 0, o.at, o.at, o.expires_at \
     FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[]) \
     AS o(id, user_id, total_fen, at, expires_at)";
const INSERT_EVENTS: &str = "INSERT INTO order_outbox \
     (id, topic, payload, state, attempts, next_attempt_at, created_at) \
     SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::int4[], \
     $6::int8[], $7::int8[])";
const INSERT_KEYS: &str = "INSERT INTO order_idempotency_keys \
     (user_id, idem_key, request_hash, status, response, created_at) \
     SELECT u.user_id, u.idem_key, u.request_hash, 201, u.response, u.created_at \
     FROM UNNEST($1::int8[], $2::text[], $3::bytea[], $4::text[], $5::int8[]) \
     AS u(user_id, idem_key, request_hash, response, created_at)";

/// Second round trip: every row of every order, the stock of each product for the
/// batch's total, and `COMMIT`. The first failure is the cause; after it the server
/// refuses the rest and the `COMMIT` rolls back.
async fn write_and_commit(
    c: &mut AsyncPgConnection,
    orders: &[Priced],
    units: &BTreeMap<i64, i64>,
) -> Result<(), OrderError> {
    let items: Vec<&NewItem> = orders.iter().flat_map(|o| &o.written.items).collect();
    let item = |f: fn(&NewItem) -> i64| items.iter().map(|i| f(i)).collect::<Vec<i64>>();

    let shared: &AsyncPgConnection = c;
    let insert_orders = diesel::sql_query(INSERT_ORDERS)
        .bind::<Array<BigInt>, _>(column(orders, |o| o.order_id))
        .bind::<Array<BigInt>, _>(column(orders, |o| o.queued.job.user_id))
        .bind::<Array<BigInt>, _>(column(orders, |o| o.total))
        .bind::<Array<BigInt>, _>(column(orders, |o| o.now))
        .bind::<Array<BigInt>, _>(column(orders, |o| o.expires_at))
        .bind::<Text, _>(OrderStatus::Pending.as_str())
        .prepare_once()
        .execute(&mut &*shared);
    let insert_items = diesel::sql_query(INSERT_ITEMS)
        .bind::<Array<BigInt>, _>(item(|i| i.order_id))
        .bind::<Array<BigInt>, _>(item(|i| i.product_id))
        .bind::<Array<BigInt>, _>(item(|i| i.qty))
        .bind::<Array<BigInt>, _>(item(|i| i.price_fen))
        .prepare_once()
        .execute(&mut &*shared);
    let insert_events = diesel::sql_query(INSERT_EVENTS)
        .bind::<Array<BigInt>, _>(column(orders, |o| o.event_id))
        .bind::<Array<Text>, _>(column(orders, |o| o.written.event.topic))
        .bind::<Array<Text>, _>(column(orders, |o| o.written.event.payload.as_str()))
        .bind::<Array<Text>, _>(column(orders, |o| o.written.event.state))
        .bind::<Array<Integer>, _>(column(orders, |o| o.written.event.attempts))
        .bind::<Array<BigInt>, _>(column(orders, |o| o.written.event.next_attempt_at))
        .bind::<Array<BigInt>, _>(column(orders, |o| o.written.event.created_at))
        .prepare_once()
        .execute(&mut &*shared);
    let insert_keys = diesel::sql_query(INSERT_KEYS)
        .bind::<Array<BigInt>, _>(column(orders, |o| o.queued.job.user_id))
        .bind::<Array<Text>, _>(column(orders, |o| o.queued.job.key.as_str()))
        .bind::<Array<Binary>, _>(column(orders, |o| o.queued.job.hash.as_slice()))
        .bind::<Array<Text>, _>(column(orders, |o| o.written.body.as_str()))
        .bind::<Array<BigInt>, _>(column(orders, |o| o.now))
        .prepare_once()
        .execute(&mut &*shared);
    let takes = futures_util::future::join_all(units.iter().map(|(&product_id, &qty)| {
        diesel::sql_query(TAKE_STOCK)
            .bind::<BigInt, _>(qty)
            .bind::<BigInt, _>(product_id)
            .prepare_once()
            .execute(&mut &*shared)
    }));
    let commit = diesel::sql_query("COMMIT")
        .prepare_once()
        .execute(&mut &*shared);
    let (orders, items, events, keys, takes, commit) = futures_util::join!(
        insert_orders,
        insert_items,
        insert_events,
        insert_keys,
        takes,
        commit
    );
    orders?;
    items?;
    events?;
    keys.map_err(key_taken)?;
    for (taken, &product_id) in takes.into_iter().zip(units.keys()) {
        taken.map_err(|e| out_of_stock(e, product_id))?;
    }
    commit?;
    Ok(())
}
