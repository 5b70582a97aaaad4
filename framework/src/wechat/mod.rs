//! WeChat server APIs: configuration, and message-push security and handling.

mod config;
pub mod push;
mod push_body;
mod push_handler;

pub use config::{PushConfig, WechatConfig};
pub use push::{PushCrypto, PushError, PushQuery};
pub use push_body::parse as parse_push_body;
pub use push_handler::{PushMessage, push_ack, verify_url};
