//! MySQL/MariaDB and SQLite: an order priced first, then written one statement at a
//! time in a transaction (ids from the auto-increment, the affected rows of each
//! stock update checked by the app):
//!
//! ```sql
//! SELECT id, price_fen FROM products WHERE id IN (...) AND active   -- before the transaction
//! BEGIN
//! INSERT INTO orders (user_id, status, total_fen, version, created_at, updated_at, expires_at)
//!   VALUES (...)                                           -- then its id
//! INSERT INTO order_items (order_id, product_id, qty, price_fen) VALUES (...), ...
//! INSERT INTO order_outbox (topic, payload, state, attempts, next_attempt_at, created_at)
//!   VALUES (...)                                           -- then its id (for the worker)
//! INSERT INTO order_idempotency_keys (user_id, idem_key, request_hash, status, response, created_at)
//!   VALUES (...)                                           -- unique: a replay stops here
//! UPDATE stock SET qty = qty - ? WHERE product_id = ? AND qty >= ?   -- per line, by id
//! COMMIT
//! ```
//!
//! The stock rows are the contended ones (every buyer of a product updates the same
//! row), so they are updated last: each is locked only for its own statement and the
//! commit. Lines are updated in product-id order, so two orders never wait on each
//! other in a cycle.

use weapp::db::{BeginTransaction, Isolation};

use super::{OrderRequest, Placed, Placement, Placer};
use crate::error::OrderError;
use crate::rows::OrderWrites;
use crate::statements::StepwisePlacement;

/// Prices the order, then writes it in a transaction, retried while it fails
/// transiently.
pub(super) async fn place<C>(
    placer: &Placer,
    c: &mut C,
    request: &OrderRequest<'_>,
) -> Result<Placed, OrderError>
where
    C: StepwisePlacement + BeginTransaction,
{
    let ids = request.product_ids();
    let prices = c.prices(&ids).await?.into_iter().collect();
    let placement = Placement::priced(request, &prices, placer.unpaid_timeout_s)?;
    weapp::retrying!(
        placer.retry,
        "place order",
        async {
            let _turn = placer.stock_gate.enter(&ids).await;
            write(&placement, c, placer.isolation).await
        }
        .await
    )
}

/// One transaction: the order's row, then the rest of its writes.
async fn write<C>(
    placement: &Placement<'_>,
    c: &mut C,
    isolation: Isolation,
) -> Result<Placed, OrderError>
where
    C: StepwisePlacement + BeginTransaction,
{
    c.begin_with(isolation).await?;
    let result = async {
        let order_id = c.insert_order(&placement.order()).await?;
        let written = placement.written(order_id)?;
        let writes = OrderWrites {
            items: &written.items,
            event: &written.event,
            key: &placement.key(&written.body),
            lines: placement.request.lines,
        };
        let event_id = c.complete_order(&writes).await?;
        Ok::<_, OrderError>(Placed {
            body: written.body,
            event_id,
        })
    }
    .await;
    weapp::db::transaction::finish(c, result).await
}
