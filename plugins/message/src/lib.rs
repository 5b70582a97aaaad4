//! `weapp-message`: subscribe messages that are checked before any call, queued
//! durably and sent by a background worker; one-time subscription quotas fed by push
//! events; template administration; content security for user text; and the WeChat
//! push endpoint, which publishes every push on the app's event bus.
//!
//! ```no_run
//! # async fn notify(ctx: &weapp::AppContext) -> weapp::Result<()> {
//! use weapp_message::{Messages, SendRequest};
//! let messages = ctx.get::<Messages>().expect("weapp-message is linked");
//! let data = serde_json::json!({"character_string1": "202611250001", "amount2": "99.00元"});
//! messages
//!     .send(ctx, SendRequest {
//!         touser: 42,
//!         template_id: "tmpl-id".into(),
//!         data: data.as_object().cloned().unwrap_or_default(),
//!         ..Default::default()
//!     })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! An app enables the plugin by linking it: `use weapp_message as _;`.

pub mod config;
mod content;
pub mod error;
pub mod queue;
mod quota;
mod routes;
mod schema;
mod service;
pub mod templates;

use std::sync::Arc;

use weapp::actix_web::web;
use weapp::events::Event;
use weapp::{AppContext, BackgroundTask, Plugin};

pub use config::MessageConfig;
pub use error::MessageError;
pub use queue::{QueuedMessage, SendRequest};
pub use routes::PUSH_PATH;
pub use service::Messages;

/// The message plugin; registered with the app at compile time.
pub struct MessagePlugin;

weapp::register_plugin!(MessagePlugin);

const MIGRATIONS: &[weapp::db::Migration] = &[
    weapp::migration!("0001_create_message_tables"),
    weapp::migration!("0002_add_message_dedupe_key"),
];

#[weapp::async_trait::async_trait]
impl Plugin for MessagePlugin {
    fn name(&self) -> &'static str {
        "message"
    }

    fn dependencies(&self) -> &'static [&'static str] {
        &["auth"]
    }

    fn routes(&self, cfg: &mut web::ServiceConfig) {
        routes::configure(cfg);
    }

    fn migrations(&self) -> &'static [weapp::db::Migration] {
        MIGRATIONS
    }

    async fn on_start(&self, ctx: &AppContext) -> weapp::Result<()> {
        let config = (*ctx.config().get::<MessageConfig>()?).clone();
        ctx.insert(Messages::new(config, ctx.db().clone()));
        weapp::content::install(ctx, Arc::new(content::WechatContentCheck));
        for topic in [
            "wechat.push.subscribe_msg_popup_event",
            "wechat.push.subscribe_msg_change_event",
        ] {
            ctx.events()
                .subscribe("message", topic, |ctx, event: Arc<Event>| async move {
                    let Some(messages) = ctx.get::<Messages>() else {
                        return Ok(());
                    };
                    messages
                        .apply_subscription_push(&ctx, &event.payload)
                        .await
                        .map(drop)
                        .map_err(weapp::Error::from)
                });
        }
        Ok(())
    }

    async fn export_user(
        &self,
        ctx: &AppContext,
        user_id: i64,
    ) -> weapp::Result<Option<serde_json::Value>> {
        let Some(messages) = ctx.get::<Messages>() else {
            return Ok(None);
        };
        Ok(Some(messages.export_user(user_id).await?))
    }

    async fn erase_user(&self, ctx: &AppContext, user_id: i64) -> weapp::Result<()> {
        if let Some(messages) = ctx.get::<Messages>() {
            messages.erase_user(user_id).await?;
        }
        Ok(())
    }

    fn background_tasks(&self, _ctx: &AppContext) -> Vec<BackgroundTask> {
        vec![BackgroundTask::new("message-queue", queue::run_worker)]
    }
}
