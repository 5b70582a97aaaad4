//! WeChat server APIs: the [`WechatClient`] with its shared [`AccessTokenCache`],
//! message-push security and handling ([`push`]), and an offline [`sandbox`].

mod client;
mod config;
mod error;
pub mod keywords;
pub mod push;
mod push_body;
mod push_handler;
// Sandbox handlers return early with a ready response as the error value; in this
// test-support code the size of that value does not matter.
#[cfg(feature = "sandbox")]
#[allow(clippy::result_large_err)]
pub mod sandbox;
mod services;
mod token;
pub mod types;

pub use client::WechatClient;
pub use config::{PushConfig, RetryConfig, SandboxSettings, TokenConfig, WechatConfig};
pub use error::{WechatError, errcode};
pub use push::{PushCrypto, PushError, PushQuery};
pub use push_body::parse as parse_push_body;
pub use push_handler::{PushMessage, push_ack, verify_url};
pub use services::{EmbeddedSandbox, WechatServices, mount_sandbox};
pub use token::AccessTokenCache;

use std::sync::Arc;

/// The WeChat client on the app's context: `ctx.wechat()?`, with
/// `use weapp::wechat::WechatContext;` (or the prelude).
pub trait WechatContext {
    /// The WeChat API client (pointing at the sandbox when `wechat.sandbox` is on);
    /// 503 `wechat_not_configured` without `wechat.appid`.
    fn wechat(&self) -> crate::Result<Arc<WechatClient>>;
}

impl WechatContext for crate::AppContext {
    fn wechat(&self) -> crate::Result<Arc<WechatClient>> {
        self.get::<WechatClient>().ok_or_else(|| {
            crate::Error::unavailable("wechat_not_configured", "wechat.appid is not configured")
        })
    }
}
