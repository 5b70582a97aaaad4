//! Group commit: orders placed at the same time share one PostgreSQL transaction.
//!
//! Every order of a popular product updates that product's one stock row, and the
//! database hands the row from transaction to transaction: lock, update, commit
//! (with its WAL flush), next. Per order that hand-over, the two round trips and
//! the transaction's own bookkeeping cost more server time than the order's rows.
//! So when orders arrive while others are being written, they queue, and the next
//! free *lane* takes up to `order.group_commit.max_orders` of them at once into one
//! transaction ([`batch`]): one `BEGIN`, one multi-row insert per table, one
//! guarded stock update per product for the batch's total, one `COMMIT`. Under light
//! load a batch holds one order, and nothing waits for a batch to fill.
//!
//! A batch is all or nothing, like each of its orders: if anything in it fails (a
//! product short of stock, a key already used, a serialization failure), the
//! transaction rolls back, nothing of any of its orders is kept, and each order is
//! placed again on its own, with the per-line stock check, the key check and the
//! retries of the [pipelined](super::pipelined) strategy (when a product ran short, only its orders; the
//! rest of the batch tries again together). That path decides exactly which orders get the last
//! units, so group commit never changes an answer, only how many orders one commit
//! carries.
//!
//! [`Combiner`] is the queue and its lanes, independent of what a batch does; the
//! caller of [`Combiner::submit`] that finds a free lane runs the queued batch on a
//! task of its own, so a client that goes away does not cut a batch short.

pub(crate) mod batch;
mod metrics;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Semaphore, oneshot};

/// A job waiting in a [`Combiner`], with the way back to its submitter.
pub(crate) struct Queued<J, R> {
    /// Which submission it is, so a submitter that gives up can withdraw it.
    ticket: u64,
    /// What was submitted.
    pub job: J,
    reply: oneshot::Sender<R>,
}

impl<J, R> Queued<J, R> {
    /// Answers the submitter. Dropping a `Queued` unanswered sends it `None`: the
    /// submitter then does the job on its own.
    pub(crate) fn answer(self, result: R) {
        // The submitter may have gone; then nobody is waiting for the answer.
        let _ = self.reply.send(result);
    }
}

/// Queues jobs and runs them in batches, at most `lanes` batches at a time; see the
/// [module docs](self).
pub(crate) struct Combiner<J, R> {
    lanes: Arc<Semaphore>,
    max_batch: usize,
    queue: Mutex<Waiting<J, R>>,
}

struct Waiting<J, R> {
    next_ticket: u64,
    jobs: VecDeque<Queued<J, R>>,
}

impl<J: Send + 'static, R: Send + 'static> Combiner<J, R> {
    /// A combiner running up to `lanes` batches of up to `max_batch` jobs at once
    /// (both at least 1).
    pub(crate) fn new(lanes: usize, max_batch: usize) -> Combiner<J, R> {
        Combiner {
            lanes: Arc::new(Semaphore::new(lanes.max(1))),
            max_batch: max_batch.max(1),
            queue: Mutex::new(Waiting {
                next_ticket: 0,
                jobs: VecDeque::new(),
            }),
        }
    }

    /// Queues `job` and waits for its answer. Whenever a lane is free, this caller
    /// takes the front of the queue (its own job or others') and hands it to `run` on
    /// a spawned task, which answers each job. `None`: the batch that took the job
    /// dropped it unanswered.
    pub(crate) async fn submit<F, Fut>(&self, job: J, run: F) -> Option<R>
    where
        F: Fn(Vec<Queued<J, R>>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (reply, mut answer) = oneshot::channel();
        let ticket = {
            let mut queue = self.lock();
            let ticket = queue.next_ticket;
            queue.next_ticket += 1;
            queue.jobs.push_back(Queued { ticket, job, reply });
            ticket
        };
        let mut withdraw = Withdraw {
            combiner: self,
            ticket: Some(ticket),
        };
        loop {
            tokio::select! {
                biased;
                result = &mut answer => {
                    withdraw.ticket = None;
                    return result.ok();
                }
                // The semaphore is never closed.
                Ok(lane) = self.lanes.clone().acquire_owned() => {
                    let batch = self.take_batch();
                    if batch.is_empty() {
                        // Ours was taken by a batch already running; it answers.
                        drop(lane);
                        withdraw.ticket = None;
                        return answer.await.ok();
                    }
                    let batch = run(batch);
                    tokio::spawn(async move {
                        batch.await;
                        drop(lane);
                    });
                }
            }
        }
    }

    fn take_batch(&self) -> Vec<Queued<J, R>> {
        let mut queue = self.lock();
        let n = queue.jobs.len().min(self.max_batch);
        queue.jobs.drain(..n).collect()
    }
}

impl<J, R> Combiner<J, R> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting<J, R>> {
        // The queue is consistent after every statement that changes it, so a panic
        // elsewhere while it was locked leaves nothing half done.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Removes a submission from the queue if its submitter stops waiting before a
/// batch took it, so a job nobody waits for is not placed later.
struct Withdraw<'a, J, R> {
    combiner: &'a Combiner<J, R>,
    ticket: Option<u64>,
}

impl<J, R> Drop for Withdraw<'_, J, R> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket {
            let mut queue = self.combiner.lock();
            queue.jobs.retain(|queued| queued.ticket != ticket);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use futures_util::FutureExt;

    use super::*;

    /// A runner that doubles each job after `delay`, recording batch sizes.
    fn doubling(
        sizes: &Arc<Mutex<Vec<usize>>>,
        delay: Duration,
    ) -> impl Fn(Vec<Queued<u32, u32>>) -> futures_util::future::BoxFuture<'static, ()> + Clone
    {
        let sizes = sizes.clone();
        move |batch| {
            let sizes = sizes.clone();
            async move {
                sizes.lock().unwrap().push(batch.len());
                tokio::time::sleep(delay).await;
                for queued in batch {
                    let doubled = queued.job * 2;
                    queued.answer(doubled);
                }
            }
            .boxed()
        }
    }

    #[tokio::test]
    async fn a_lone_job_runs_at_once_in_a_batch_of_one() {
        let combiner = Combiner::new(2, 8);
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let answer = combiner.submit(21, doubling(&sizes, Duration::ZERO)).await;
        assert_eq!(answer, Some(42));
        assert_eq!(*sizes.lock().unwrap(), vec![1]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_queued_behind_a_busy_lane_share_the_next_batch() {
        let combiner = Arc::new(Combiner::new(1, 8));
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let run = doubling(&sizes, Duration::from_millis(50));
        // 20 jobs while the only lane is busy with the first: every one is answered
        // with its own result, in batches of at most 8.
        let submits = (0..20u32).map(|i| {
            let combiner = combiner.clone();
            let run = run.clone();
            async move { (i, combiner.submit(i, run).await) }
        });
        for (i, answer) in futures_util::future::join_all(submits).await {
            assert_eq!(answer, Some(i * 2));
        }
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 20);
        assert!(sizes.iter().all(|&n| n <= 8), "{sizes:?}");
        assert!(sizes.len() < 20, "some jobs shared a batch: {sizes:?}");
    }

    #[tokio::test]
    async fn a_job_dropped_by_its_batch_gets_none() {
        let combiner = Combiner::<u32, u32>::new(1, 8);
        let answer = combiner.submit(1, |batch| async move { drop(batch) }).await;
        assert_eq!(answer, None, "the submitter does the job itself");
    }

    #[tokio::test]
    async fn a_batch_that_panics_answers_none() {
        let combiner = Combiner::<u32, u32>::new(1, 8);
        let answer = combiner
            .submit(1, |batch| async move {
                let _held = batch;
                panic!("the batch failed");
            })
            .await;
        assert_eq!(answer, None);
    }

    #[tokio::test]
    async fn a_submitter_that_gives_up_withdraws_its_queued_job() {
        let combiner = Combiner::<u32, u32>::new(1, 8);
        let ran = Arc::new(AtomicUsize::new(0));
        let counting = |ran: Arc<AtomicUsize>| {
            move |batch: Vec<Queued<u32, u32>>| {
                let ran = ran.clone();
                async move {
                    for queued in batch {
                        ran.fetch_add(1, Ordering::SeqCst);
                        queued.answer(0);
                    }
                }
            }
        };
        // Hold the only lane, so the next job stays queued.
        let lane = combiner.lanes.clone().acquire_owned().await.unwrap();
        let waiting = combiner.submit(7, counting(ran.clone()));
        assert!(waiting.now_or_never().is_none(), "queued, then given up");
        drop(lane);
        assert_eq!(combiner.submit(8, counting(ran.clone())).await, Some(0));
        assert_eq!(
            ran.load(Ordering::SeqCst),
            1,
            "only the job still wanted ran"
        );
    }
}
