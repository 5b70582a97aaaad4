//! The outbox worker: hinted events in batches, and a sweep now and then.

use std::time::Duration;

use tokio::time::Instant;
use weapp::{AppContext, Shutdown};

use super::Outbox;
use crate::error::OrderError;

/// Delivers events until shutdown.
///
/// Hinted events go out once a batch is in or `order.outbox.poll_interval_ms` has
/// passed, whichever comes first: under load each batch is full, and a lone event
/// waits no longer than the poll interval; a worker behind takes what waits, up to
/// `order.outbox.max_batch_size` at once. Every `order.outbox.sweep_interval_ms`
/// the worker also sweeps the outbox, batch after batch while batches come back
/// full.
pub(crate) async fn run_worker(outbox: &Outbox, ctx: &AppContext, shutdown: Shutdown) {
    let settings = &outbox.config;
    let poll = Duration::from_millis(settings.poll_interval_ms);
    let sweep_every = Duration::from_millis(settings.sweep_interval_ms);
    let full = outbox.hints.batch();
    let mut next_sweep = Instant::now();
    let mut timed_out = true;
    while !shutdown.is_shutting_down() {
        // Woken by a full batch, the rest stays for the next one.
        let only_full = !timed_out;
        drain(full, || outbox.deliver_hinted(ctx, only_full)).await;
        if Instant::now() >= next_sweep {
            drain(full, || outbox.deliver_due(ctx)).await;
            next_sweep = Instant::now() + sweep_every;
        }
        let pause = poll.min(next_sweep.saturating_duration_since(Instant::now()));
        timed_out = tokio::select! {
            _ = shutdown.wait() => break,
            _ = outbox.hints.batch_in() => false,
            _ = tokio::time::sleep(pause) => true,
        };
    }
}

/// Counts the events not handled yet every `order.outbox.sweep_interval_ms` until
/// shutdown: a task of its own, since under overload the delivery loop above keeps
/// draining full batches and would count too seldom.
pub(crate) async fn run_backlog_counter(outbox: &Outbox, ctx: &AppContext, shutdown: Shutdown) {
    let every = Duration::from_millis(outbox.config.sweep_interval_ms);
    while !shutdown.is_shutting_down() {
        if let Err(e) = outbox.refresh_backlog(ctx).await {
            tracing::warn!(error = %e, "could not count the events not handled yet");
        }
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Runs `batch` until it comes back short of `full` or fails (logged).
async fn drain<F, Fut>(full: usize, mut batch: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<usize, OrderError>>,
{
    loop {
        match batch().await {
            Ok(n) if n >= full => continue,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "outbox delivery failed");
                return;
            }
        }
    }
}
