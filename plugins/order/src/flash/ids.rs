//! Order ids for reservations, taken from the orders table's own sequence a block at
//! a time: the buyer learns the id at once, and it can never collide with an order
//! placed the ordinary way. Ids of a block this instance never used are gaps.

use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use tokio::sync::Mutex;
use weapp::db::Db;

use crate::error::OrderError;

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The ids this instance set aside, smallest last (taken with `pop`).
pub(super) struct OrderIds {
    block: i64,
    pool: Mutex<Vec<i64>>,
}

impl OrderIds {
    pub(super) fn new(block: i64) -> OrderIds {
        OrderIds {
            block,
            pool: Mutex::new(Vec::new()),
        }
    }

    /// The next id, from the pool or a new block.
    pub(super) async fn next(&self, db: &Db) -> Result<i64, OrderError> {
        let mut pool = self.pool.lock().await;
        if let Some(id) = pool.pop() {
            return Ok(id);
        }
        let mut conn = db.conn().await?;
        let c = super::postgres(&mut conn)?;
        let ids: Vec<Id> =
            diesel::sql_query("SELECT nextval('orders_id_seq') AS id FROM generate_series(1, $1)")
                .bind::<BigInt, _>(self.block)
                .load(c)
                .await?;
        pool.extend(ids.iter().rev().map(|i| i.id));
        pool.pop()
            .ok_or_else(|| OrderError::Invalid("the order id sequence gave no id".to_owned()))
    }

    /// Puts back an id no reservation used, for the next one.
    pub(super) fn give_back(&self, id: i64) {
        if let Ok(mut pool) = self.pool.try_lock() {
            pool.push(id);
        }
    }
}
