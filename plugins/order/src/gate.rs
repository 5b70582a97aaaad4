//! `StockGate`: how many of this instance's orders may be writing to one product's
//! stock row at once.
//!
//! Every order of a product updates its one stock row, and the database hands that
//! row from transaction to transaction. With many transactions queued on it the
//! hand-over itself slows down (measured with pgbench on one hot row here: 3,240
//! orders/s with 8 clients, 2,600 with 16, 1,950 with 32), so letting every pooled
//! connection pile onto the row makes a sale on one product slower, not faster.
//! Orders therefore pass a gate before their writes: at most
//! `order.stock_writers` at a time per product (per instance), the rest wait in the
//! app, in arrival order, holding no database locks. Products share gates by
//! `product_id % STRIPES`, so the gate costs a fixed amount of memory; two products
//! on one stripe merely share its limit.

use tokio::sync::{Semaphore, SemaphorePermit};

/// Stripes of the gate; products map onto them by id.
const STRIPES: usize = 64;

/// Limits concurrent stock writers per product; see the [module docs](self).
pub(crate) struct StockGate {
    stripes: Option<Vec<Semaphore>>,
}

/// Passage through the gate for one order's products; dropping it lets the next
/// order in.
pub(crate) struct Passage<'a> {
    _permits: Vec<SemaphorePermit<'a>>,
}

impl StockGate {
    /// A gate letting `writers` orders per product through at once; `0` lets every
    /// order through.
    pub(crate) fn new(writers: usize) -> StockGate {
        StockGate {
            stripes: (writers > 0).then(|| (0..STRIPES).map(|_| Semaphore::new(writers)).collect()),
        }
    }

    /// Waits until an order of these products (sorted by id) may write. Stripes are
    /// taken in ascending order, so two orders never wait on each other in a cycle.
    pub(crate) async fn enter(&self, product_ids: &[i64]) -> Passage<'_> {
        let Some(stripes) = &self.stripes else {
            return Passage {
                _permits: Vec::new(),
            };
        };
        let mut wanted: Vec<usize> = product_ids
            .iter()
            .map(|id| id.rem_euclid(STRIPES as i64) as usize)
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut permits = Vec::with_capacity(wanted.len());
        for stripe in wanted {
            // The semaphores are never closed, so acquiring cannot fail.
            if let Ok(permit) = stripes[stripe].acquire().await {
                permits.push(permit);
            }
        }
        Passage { _permits: permits }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[tokio::test]
    async fn a_full_product_waits_until_a_writer_leaves() {
        let gate = StockGate::new(1);
        let first = gate.enter(&[7]).await;
        assert!(gate.enter(&[7]).now_or_never().is_none(), "7 is full");
        assert!(
            gate.enter(&[7 + STRIPES as i64]).now_or_never().is_none(),
            "a product on the same stripe shares its limit"
        );
        assert!(gate.enter(&[8]).now_or_never().is_some(), "8 is free");
        drop(first);
        assert!(gate.enter(&[7]).now_or_never().is_some());
    }

    #[tokio::test]
    async fn an_order_waits_for_every_one_of_its_products() {
        let gate = StockGate::new(2);
        let _a = gate.enter(&[1, 2]).await;
        let b = gate.enter(&[2, 3]).await;
        assert!(
            gate.enter(&[2]).now_or_never().is_none(),
            "2 has two writers"
        );
        assert!(gate.enter(&[3]).now_or_never().is_some(), "3 has one");
        drop(b);
        assert!(gate.enter(&[2, 3]).now_or_never().is_some());
    }

    #[tokio::test]
    async fn zero_writers_means_no_limit() {
        let gate = StockGate::new(0);
        let held: Vec<_> = (0..100).map(|_| gate.enter(&[1]).now_or_never()).collect();
        assert!(held.iter().all(Option::is_some));
    }
}
