//! weapp's kernel: what every feature and plugin builds on, naming none of them.
//!
//! - [`error`]: the one [`Error`] type and the JSON error shape; subsystems convert
//!   their own errors into it ([`error::SubsystemError`]).
//! - [`config`]: layered loading, [`config::Secret`], and typed sections that
//!   features and plugins register ([`config::ConfigSection`]).
//! - [`db`]: pools over PostgreSQL, MySQL/MariaDB and SQLite, transactions,
//!   migrations, and the [`db::sealed::Sealed`] column type.
//! - [`kv`]: the key-value store (Redis or in-memory).
//! - [`queue`]: the lease queue plugins' workers claim rows from (outbox, messages).
//! - [`events`]: the in-process event bus between plugins.
//! - [`plugin`]: the [`Plugin`] trait and its compile-time registry.
//! - [`context`]: the [`AppContext`] shared by handlers, plugins and tasks.
//! - [`clock`]: client timestamps checked against a window, without overflow.
//! - [`backoff`]: how long every retry in the framework waits, and
//!   [`retrying!`] to retry transient failures.
//!
//! The `weapp` crate re-exports all of it; apps and plugins write `weapp::…`.

pub mod backoff;
pub mod clock;
pub mod config;
pub mod context;
pub mod crypto;
pub mod db;
pub mod error;
pub mod events;
pub mod kv;
pub mod plugin;
pub mod queue;
pub mod request_id;
pub mod shutdown;

pub use config::Config;
pub use context::{AppContext, BuildInfo};
pub use error::{Error, Result};
pub use plugin::{BackgroundTask, Plugin};
pub use shutdown::Shutdown;

// Re-exported so the registration macros work in crates that name only weapp.
#[doc(hidden)]
pub use inventory;

/// What the framework's macros expand to, so crates that use them need no
/// dependency of their own on these.
#[doc(hidden)]
pub mod __private {
    pub use diesel;
    pub use diesel_async;
    pub use tokio;
    pub use tracing;
}
