//! The signal that stops background work when the server shuts down.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Tells background tasks that the server is shutting down. Cheap to clone.
#[derive(Clone, Default)]
pub struct Shutdown(CancellationToken);

impl Shutdown {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Completes once shutdown has begun; use it in `tokio::select!` beside the work.
    pub async fn wait(&self) {
        self.0.cancelled().await
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Runs `batch` until shutdown, the loop of a queue worker: again at once while a
    /// batch was full (`Ok(n)`, `n >= full`: more is likely waiting), after `idle`
    /// when it was not, found nothing, or failed (the failure logged with `what`).
    ///
    /// Waiting after a partial batch keeps the worst-case delay at `idle`, as when
    /// idle, while under load the batches fill up: a queue polled again at once would
    /// pay its per-batch statements for every one or two rows.
    pub async fn drain<F, Fut, E>(
        &self,
        what: &'static str,
        idle: Duration,
        full: usize,
        mut batch: F,
    ) where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<usize, E>>,
        E: Display,
    {
        while !self.is_shutting_down() {
            let pause = match batch().await {
                Ok(n) if n >= full.max(1) => Duration::ZERO,
                Ok(_) => idle,
                Err(e) => {
                    tracing::warn!(error = %e, "{what} failed");
                    idle
                }
            };
            if !pause.is_zero() {
                tokio::select! {
                    _ = self.wait() => break,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }

    /// Begins shutdown for every holder of this signal.
    pub fn trigger(&self) {
        self.0.cancel()
    }
}

/// Fires when the server begins to stop (SIGTERM, SIGINT, or [`Stopping::begin`]),
/// before in-flight requests drain: long-lived connections such as WebSockets close
/// then, so the drain does not wait out `server.shutdown_timeout_s` on them. The app
/// keeps one in its context; [`Shutdown`] fires later, once the server has stopped.
#[derive(Clone, Default)]
pub struct Stopping(CancellationToken);

impl Stopping {
    /// Completes once the server has begun to stop.
    pub async fn wait(&self) {
        self.0.cancelled().await
    }

    /// Whether the server has begun to stop.
    pub fn has_begun(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Stops the server gracefully, as SIGTERM does.
    pub fn begin(&self) {
        self.0.cancel()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_worker_goes_on_at_once_only_after_a_full_batch() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        let calls = Arc::new(AtomicUsize::new(0));
        let shutdown = Shutdown::default();
        let worker = {
            let (calls, shutdown) = (calls.clone(), shutdown.clone());
            tokio::spawn(async move {
                // Full, full, partial: the third batch must be followed by the idle wait.
                let sizes = [3usize, 3, 1];
                shutdown
                    .drain("test queue", Duration::from_secs(60), 3, || {
                        let n = calls.fetch_add(1, Ordering::SeqCst);
                        let size = sizes.get(n).copied().unwrap_or(0);
                        async move { Ok::<_, String>(size) }
                    })
                    .await;
            })
        };
        for _ in 0..100 {
            if calls.load(Ordering::SeqCst) >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "no fourth batch before `idle`"
        );
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(5), worker)
            .await
            .expect("the worker stops on shutdown")
            .expect("the worker did not panic");
    }
}
