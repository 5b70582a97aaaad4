//! weapp: a framework for WeChat Mini Program (小程序) backends.
//!
//! Start with [`App`]: it loads [`config`], collects the [`plugin`]s linked into the
//! binary, connects the [`db`] and the [`kv`] store, and serves HTTP with actix-web.
//! Handlers receive the shared [`AppContext`] and fail with the one [`Error`] type,
//! which every client sees as `{"code", "message", "request_id"}`.

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod content;
pub mod crypto;
pub mod db;
pub mod error;
pub mod events;
pub mod guard;
pub mod health;
pub mod http;
pub mod kv;
pub mod observe;
pub mod plugin;
pub mod request_id;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod wechat;

pub use app::{App, AppContext, Server};
pub use config::Config;
pub use error::{Error, Result};
pub use plugin::{BackgroundTask, Plugin, Shutdown};

// Re-exported so plugin crates need no direct dependency for registration and routes.
#[doc(hidden)]
pub use inventory;
pub use {actix_web, async_trait, diesel, diesel_async};
