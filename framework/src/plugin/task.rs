//! Background tasks owned by plugins, and the signal that stops them.

use std::future::Future;

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::AppContext;

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

    /// Begins shutdown for every holder of this signal.
    pub fn trigger(&self) {
        self.0.cancel()
    }
}

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

    /// Spawns the task on the current runtime.
    pub(crate) fn spawn(
        self,
        ctx: AppContext,
        shutdown: Shutdown,
    ) -> (String, tokio::task::JoinHandle<()>) {
        let handle = tokio::spawn((self.run)(ctx, shutdown));
        (self.name, handle)
    }
}
