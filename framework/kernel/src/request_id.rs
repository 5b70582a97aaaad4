//! The id of the request being handled, visible to everything that runs inside it
//! (error responses, logs) without passing it down every call.
//!
//! The HTTP middleware (`weapp::http::request_context`) sets it; this lives below
//! the HTTP layer so the kernel's error type can read it.

use std::future::Future;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled, if called inside one.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `future` with `id` as the current request id.
pub async fn scope<F: Future>(id: String, future: F) -> F::Output {
    REQUEST_ID.scope(id, future).await
}

/// Runs `f` with `id` as the current request id.
pub fn sync_scope<R>(id: String, f: impl FnOnce() -> R) -> R {
    REQUEST_ID.sync_scope(id, f)
}
