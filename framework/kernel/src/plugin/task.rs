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
