//! Ids of events this instance committed and has not delivered yet.
//!
//! Finding due events by scanning the outbox costs the database more the longer the
//! table's recent history is (until vacuum, a delivered row leaves dead index entries
//! behind for every scan to step over). The transaction that writes an event knows
//! its id, so after commit it hands the id to the worker, which claims hinted events
//! by primary key. The scan (the sweep) still runs, less often, for what no hint
//! names: retries, events of a stopped instance, hints dropped when this queue was
//! full.

use std::sync::Mutex;

use tokio::sync::Notify;

/// A queue of committed, undelivered event ids, waking the worker once a batch is in.
///
/// Under load the worker takes what waits, up to `max_batch` ids at once, so when
/// it falls behind its batches grow with the backlog (fewer statements per event)
/// and it catches up; `capacity` should cover the backlog the order path allows
/// (`order.outbox.max_behind`): a dropped hint leaves its event to the sweep, whose
/// scan is the slow way, and a worker left to it would fall further behind.
#[derive(Debug)]
pub(crate) struct OutboxHints {
    ids: Mutex<Vec<i64>>,
    batch_in: Notify,
    batch: usize,
    max_batch: usize,
    capacity: usize,
}

impl OutboxHints {
    /// A queue that wakes its worker at `batch` ids, hands out at most `max_batch`
    /// at once and holds at most `capacity`.
    pub(crate) fn new(batch: usize, max_batch: usize, capacity: usize) -> OutboxHints {
        let batch = batch.max(1);
        OutboxHints {
            ids: Mutex::new(Vec::new()),
            batch_in: Notify::new(),
            batch,
            max_batch: max_batch.max(batch),
            capacity,
        }
    }

    /// Names committed events; call only after their transaction committed.
    pub(crate) fn push(&self, committed: impl IntoIterator<Item = i64>) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        for id in committed {
            if ids.len() >= self.capacity {
                tracing::debug!(
                    event_id = id,
                    "outbox hint queue full; the sweep will find it"
                );
                continue;
            }
            ids.push(id);
        }
        if ids.len() >= self.batch {
            // Stores a permit when the worker is busy, so it comes straight back.
            self.batch_in.notify_one();
        }
    }

    /// Takes the ids waiting, up to `max_batch`, oldest first.
    pub(crate) fn take_batch(&self) -> Vec<i64> {
        self.take(1)
    }

    /// Takes the ids waiting, up to `max_batch`, oldest first, or nothing while
    /// fewer than a batch wait.
    pub(crate) fn take_full_batch(&self) -> Vec<i64> {
        self.take(self.batch)
    }

    fn take(&self, at_least: usize) -> Vec<i64> {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        if ids.len() < at_least {
            return Vec::new();
        }
        let n = ids.len().min(self.max_batch);
        ids.drain(..n).collect()
    }

    /// The size of batch the worker waits for.
    pub(crate) fn batch(&self) -> usize {
        self.batch
    }

    /// How many ids wait.
    pub(crate) fn len(&self) -> usize {
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Resolves once a full batch is waiting.
    pub(crate) async fn batch_in(&self) {
        // A permit left by a push the worker already drained wakes it early: look again.
        while self.len() < self.batch {
            self.batch_in.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn batches_come_out_oldest_first_and_grow_with_the_backlog_up_to_the_most() {
        let hints = OutboxHints::new(3, 5, 100);
        hints.push([1, 2]);
        assert!(hints.take_full_batch().is_empty(), "two of three");
        hints.push([3]);
        assert_eq!(hints.take_full_batch(), vec![1, 2, 3]);
        hints.push(4..=10);
        assert_eq!(
            hints.take_full_batch(),
            vec![4, 5, 6, 7, 8],
            "behind: larger"
        );
        assert!(hints.take_full_batch().is_empty(), "two of three");
        assert_eq!(hints.take_batch(), vec![9, 10]);
        assert!(hints.take_batch().is_empty());
    }

    #[test]
    fn a_full_queue_drops_new_hints_and_keeps_the_old() {
        let hints = OutboxHints::new(10, 1_000, 25);
        hints.push(0..30);
        assert_eq!(hints.len(), 25);
        let taken = hints.take_batch();
        assert_eq!(taken, (0..25).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn the_worker_wakes_when_a_batch_is_in_and_not_before() {
        let hints = std::sync::Arc::new(OutboxHints::new(2, 2, 100));
        hints.push([1]);
        let early = tokio::time::timeout(Duration::from_millis(50), hints.batch_in()).await;
        assert!(early.is_err(), "woke with one id of a batch of two");
        let waiter = tokio::spawn({
            let hints = hints.clone();
            async move { hints.batch_in().await }
        });
        tokio::task::yield_now().await;
        hints.push([2]);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken by the second id")
            .unwrap();
        // Pushed while nobody waited: the next wait returns at once.
        hints.take_batch();
        hints.push([3, 4]);
        tokio::time::timeout(Duration::from_secs(5), hints.batch_in())
            .await
            .expect("a full batch is in");
        // The permit that push left is spent on nothing once the batch is taken.
        hints.take_batch();
        let drained = tokio::time::timeout(Duration::from_millis(50), hints.batch_in()).await;
        assert!(drained.is_err(), "woke for a batch already taken");
    }
}
