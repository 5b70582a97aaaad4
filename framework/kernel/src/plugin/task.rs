//! Background tasks owned by plugins.

use std::future::Future;

use futures_util::future::BoxFuture;

use crate::AppContext;
use crate::shutdown::Shutdown;

type TaskFn = Box<dyn FnOnce(AppContext, Shutdown) -> BoxFuture<'static, ()> + Send>;

/// A named long-running job (queue worker, expiry sweeper...). It should return soon
/// after [`Shutdown::wait`] completes; the app waits up to `server.shutdown_timeout_s`.
pub struct BackgroundTask {
    name: String,
    run: TaskFn,
}

impl BackgroundTask {
    /// A task running `f(ctx, shutdown)`.
    pub fn new<F, Fut>(name: impl Into<String>, f: F) -> Self
    where
        F: FnOnce(AppContext, Shutdown) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        BackgroundTask {
            name: name.into(),
            run: Box::new(move |ctx, shutdown| Box::pin(f(ctx, shutdown))),
        }
    }

    /// The task's name, for logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Spawns the task on the current runtime; the app does this after start-up.
    pub fn spawn(
        self,
        ctx: AppContext,
        shutdown: Shutdown,
    ) -> (String, tokio::task::JoinHandle<()>) {
        let handle = tokio::spawn((self.run)(ctx, shutdown));
        (self.name, handle)
    }
}

/// Exponential backoff for the `attempts`-th failure (1-based): `base_ms`, doubled
/// per further attempt, at most `max_ms`.
pub fn backoff_ms(base_ms: i64, max_ms: i64, attempts: i32) -> i64 {
    let exponent = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0);
    let base = u64::try_from(base_ms).unwrap_or(0);
    let max = u64::try_from(max_ms).unwrap_or(0);
    i64::try_from(crate::backoff::exponential_ms(base, max, exponent.min(20))).unwrap_or(i64::MAX)
}

/// A random positive 63-bit token naming one worker's claim on queued rows, so it
/// can tell the rows it won from those another worker (or instance) took.
pub fn claim_token() -> i64 {
    (uuid::Uuid::new_v4().as_u64_pair().0 >> 1) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff_ms(500, 10_000, 1), 500);
        assert_eq!(backoff_ms(500, 10_000, 3), 2_000);
        assert_eq!(backoff_ms(500, 10_000, 30), 10_000);
        assert_eq!(backoff_ms(500, 10_000, 0), 500);
    }
}
