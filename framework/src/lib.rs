//! weapp: a framework for WeChat Mini Program (小程序) backends.
//!
//! Start with [`App`]: it loads [`config`], collects the [`plugin`]s linked into the
//! binary, connects the [`db`] and the [`kv`] store, and serves HTTP with actix-web.
//! Handlers receive the shared [`AppContext`] and fail with the one [`Error`] type,
//! which every client sees as `{"code", "message", "request_id"}`.
//!
//! # Layers
//! Imports only point down, so each layer can be read without the ones above it:
//! 1. [`crypto`]'s core, the `weapp-crypto` crate: bytes in, bytes out;
//! 2. the kernel, the `weapp-kernel` crate: [`error`], [`config`], [`db`], [`kv`],
//!    [`events`], [`plugin`], [`context`] (re-exported here);
//! 3. the features in this crate, each with its own config section: [`http`],
//!    [`observe`], [`content`], [`tls`], then [`auth`], [`wechat`], [`guard`],
//!    [`api`], [`health`], [`realtime`];
//! 4. the application: [`app`], [`cli`], [`testing`] (with the `sandbox` feature).
//!
//! Plugins and apps sit on top. The compiler holds the crate boundaries; the
//! architecture test (`tests/api/architecture.rs`) holds the order inside this crate.

pub use weapp_kernel::{
    backoff, clock, config, context, crypto, db, error, events, kv, plugin, queue, request_id,
    shutdown,
};

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod content;
pub mod guard;
pub mod health;
pub mod http;
pub mod observe;
pub mod profiling;
pub mod realtime;
pub mod sdk;
#[cfg(feature = "sandbox")]
pub mod testing;
pub mod tls;
pub mod wechat;

pub use app::{App, FRAMEWORK_GIT_HASH, Server};
pub use weapp_kernel::{
    AppContext, BackgroundTask, Config, Error, Plugin, Result, Shutdown, config_section,
    insert_returning_id, migration, register_plugin, retrying, sealed_column, transaction,
    with_conn,
};

/// The context extensions of the framework's features, with the types most code
/// names, in one import: `use weapp::prelude::*;`.
pub mod prelude {
    pub use crate::app::LiveConfig;
    pub use crate::wechat::WechatContext;
    pub use crate::{App, AppContext, Error, Plugin, Result};
}

// Re-exported so plugin crates need no direct dependency for registration and routes.
#[doc(hidden)]
pub use weapp_kernel::inventory;
pub use {actix_web, async_trait, diesel, diesel_async, utoipa};
