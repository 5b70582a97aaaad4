//! A batch of reservations written as orders, in one PostgreSQL transaction:
//!
//! ```sql
//! BEGIN
//! SELECT qty FROM stock WHERE product_id = $1 FOR UPDATE       -- the units on hand
//! SELECT id FROM orders WHERE id = ANY($1)                     -- written already?
//! INSERT INTO orders (…) SELECT … FROM UNNEST($1::int8[], …)    -- one row per order
//! INSERT INTO order_items (…) SELECT * FROM UNNEST(…)
//! INSERT INTO order_idempotency_keys (…) SELECT … FROM UNNEST(…) ON CONFLICT DO NOTHING
//! INSERT INTO order_outbox (…) SELECT * FROM UNNEST(…) RETURNING id
//! UPDATE stock SET qty = qty - $1 WHERE product_id = $2 AND qty >= $1
//! COMMIT
//! ```
//!
//! Arrays, not multi-row `VALUES`: each statement's text is the same whatever the
//! batch's size, so the connection prepares it once, where a `VALUES` list of 500
//! rows was parsed and planned again for every batch (and the writers share the
//! cores with the buyers' requests).

use std::collections::HashSet;

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Binary, Integer, Nullable, Text};
use diesel_async::RunQueryDsl;
use weapp::db::{AsyncPgConnection, BeginTransaction, Isolation, PrepareOnce};

use super::reservation::Reserved;
use super::reserve::created;
use crate::error::OrderError;
use crate::events;
use crate::model::OrderStatus;
use crate::outbox::NewEvent;
use crate::rows::INSERT_ITEMS;
use crate::schema::{orders, stock};

/// What a batch wrote.
#[derive(Default)]
pub(super) struct Written {
    pub pending: usize,
    /// `(user, units)` of the orders the database had no units for.
    pub refused: Vec<(i64, i64)>,
    /// Buyers of orders found written already: their counts are redone.
    pub recount: Vec<i64>,
    /// The outbox events written, for the outbox worker's hint.
    pub events: Vec<i64>,
}

impl Written {
    /// Adds what another transaction of the same read wrote.
    pub(super) fn add(&mut self, other: Written) {
        self.pending += other.pending;
        self.refused.extend(other.refused);
        self.recount.extend(other.recount);
        self.events.extend(other.events);
    }
}

const INSERT_ORDERS: &str = "INSERT INTO orders (id, user_id, status, total_fen, version, \
     cancel_reason, created_at, updated_at, expires_at) \
     SELECT o.id, o.user_id, o.status, o.total_fen, 0, o.reason, o.created_at, $8, o.expires_at \
     FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::int8[], $5::text[], $6::int8[], \
     $7::int8[]) AS o(id, user_id, status, total_fen, reason, created_at, expires_at)";
/// A key an ordinary order took first keeps that order's answer.
const INSERT_KEYS: &str = "INSERT INTO order_idempotency_keys \
     (user_id, idem_key, request_hash, status, response, created_at) \
     SELECT u.user_id, u.idem_key, u.request_hash, 202, u.response, u.created_at \
     FROM UNNEST($1::int8[], $2::text[], $3::bytea[], $4::text[], $5::int8[]) \
     AS u(user_id, idem_key, request_hash, response, created_at) ON CONFLICT DO NOTHING";
const INSERT_EVENTS: &str = "INSERT INTO order_outbox \
     (topic, payload, state, attempts, next_attempt_at, created_at) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int4[], $5::int8[], \
     $6::int8[]) RETURNING id";

/// An event's id, as `INSERT_EVENTS` returns it.
#[derive(QueryableByName)]
struct EventId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Writes `batch` of `product_id` in one transaction (see the [module docs](self)).
pub(super) async fn write(
    c: &mut AsyncPgConnection,
    product_id: i64,
    batch: &[&Reserved],
) -> Result<Written, OrderError> {
    c.begin_with(Isolation::BackendDefault).await?;
    let result = write_in_transaction(c, product_id, batch).await;
    weapp::db::transaction::finish(c, result).await
}

/// A reservation to write, and whether the database has its units.
struct Row<'a> {
    reserved: &'a Reserved,
    fits: bool,
}

impl Row<'_> {
    fn status(&self) -> &'static str {
        match self.fits {
            true => OrderStatus::Pending.as_str(),
            false => OrderStatus::Cancelled.as_str(),
        }
    }

    /// The 202 a retry with its key is answered.
    fn answer(&self) -> String {
        created(self.reserved.order_id, self.reserved.total_fen)
    }

    fn event(&self, now: i64) -> NewEvent {
        let r = self.reserved;
        match self.fits {
            true => NewEvent::new(
                &events::Created {
                    order_id: r.order_id,
                    user_id: Some(r.user_id),
                    total_fen: r.total_fen,
                },
                now,
            ),
            false => NewEvent::new(
                &events::Cancelled {
                    order_id: r.order_id,
                    user_id: Some(r.user_id),
                    total_fen: r.total_fen,
                    reason: "out_of_stock".to_owned(),
                },
                now,
            ),
        }
    }
}

async fn write_in_transaction(
    c: &mut AsyncPgConnection,
    product_id: i64,
    batch: &[&Reserved],
) -> Result<Written, OrderError> {
    let mut written = Written::default();
    let on_hand: i64 = super::lock_stock(c, product_id).await?;
    let ids: Vec<i64> = batch.iter().map(|r| r.order_id).collect();
    let there: HashSet<i64> = orders::table
        .filter(orders::id.eq_any(&ids))
        .select(orders::id)
        .load::<i64>(c)
        .await?
        .into_iter()
        .collect();
    let mut seen = HashSet::new();
    let mut left = on_hand;
    let mut rows = Vec::new();
    for r in batch {
        if there.contains(&r.order_id) || !seen.insert(r.order_id) {
            written.recount.push(r.user_id);
            continue;
        }
        let fits = r.qty <= left;
        if fits {
            left -= r.qty;
            written.pending += 1;
        } else {
            written.refused.push((r.user_id, r.qty));
        }
        rows.push(Row { reserved: r, fits });
    }
    if rows.is_empty() {
        return Ok(written);
    }
    let now = crate::model::now_ms();
    let column =
        |f: fn(&Reserved) -> i64| -> Vec<i64> { rows.iter().map(|row| f(row.reserved)).collect() };
    let order_ids: Vec<i64> = column(|r| r.order_id);
    let user_ids: Vec<i64> = column(|r| r.user_id);
    let created: Vec<i64> = column(|r| r.created_at);
    diesel::sql_query(INSERT_ORDERS)
        .bind::<Array<BigInt>, _>(&order_ids)
        .bind::<Array<BigInt>, _>(&user_ids)
        .bind::<Array<Text>, _>(rows.iter().map(Row::status).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(column(|r| r.total_fen))
        .bind::<Array<Nullable<Text>>, _>(
            rows.iter()
                .map(|row| (!row.fits).then_some("out_of_stock"))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<BigInt>, _>(&created)
        .bind::<Array<BigInt>, _>(column(|r| r.expires_at))
        .bind::<BigInt, _>(now)
        .prepare_once()
        .execute(c)
        .await?;
    diesel::sql_query(INSERT_ITEMS)
        .bind::<Array<BigInt>, _>(&order_ids)
        .bind::<Array<BigInt>, _>(vec![product_id; rows.len()])
        .bind::<Array<BigInt>, _>(column(|r| r.qty))
        .bind::<Array<BigInt>, _>(column(|r| r.total_fen / r.qty.max(1)))
        .prepare_once()
        .execute(c)
        .await?;
    diesel::sql_query(INSERT_KEYS)
        .bind::<Array<BigInt>, _>(&user_ids)
        .bind::<Array<Text>, _>(
            rows.iter()
                .map(|row| row.reserved.key.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Binary>, _>(
            rows.iter()
                .map(|row| row.reserved.hash.as_slice())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(rows.iter().map(Row::answer).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(&created)
        .prepare_once()
        .execute(c)
        .await?;
    let events: Vec<NewEvent> = rows.iter().map(|row| row.event(now)).collect();
    let event = |f: fn(&NewEvent) -> i64| events.iter().map(f).collect::<Vec<i64>>();
    written.events = diesel::sql_query(INSERT_EVENTS)
        .bind::<Array<Text>, _>(events.iter().map(|e| e.topic).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(
            events
                .iter()
                .map(|e| e.payload.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(events.iter().map(|e| e.state).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(events.iter().map(|e| e.attempts).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(event(|e| e.next_attempt_at))
        .bind::<Array<BigInt>, _>(event(|e| e.created_at))
        .prepare_once()
        .load::<EventId>(c)
        .await?
        .into_iter()
        .map(|e| e.id)
        .collect();
    let taken = on_hand - left;
    if taken > 0 {
        // The stock row is locked: this always holds; kept as the last check.
        let updated = diesel::update(stock::table.find(product_id).filter(stock::qty.ge(taken)))
            .set(stock::qty.eq(stock::qty - taken))
            .execute(c)
            .await?;
        if updated != 1 {
            return Err(OrderError::OutOfStock { product_id });
        }
    }
    Ok(written)
}
