//! A plugin of this project's own, to copy for new features: users leave feedback
//! and read theirs back. It shows the parts every plugin has: a unit struct
//! registered with [`weapp::register_plugin!`], a config section (`[feedback]`),
//! routes, one migration per backend (`migrations/{postgres,mysql,sqlite}/`), and
//! its share of the user's export and erasure rights.

mod routes;
mod schema;
mod store;

use serde::Deserialize;
use weapp::actix_web::web;
use weapp::{AppContext, Plugin};

pub use store::{Feedback, FeedbackStore};

/// `[feedback]` settings (environment: `WEAPP__FEEDBACK__*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedbackConfig {
    /// Longest accepted feedback, in characters.
    pub max_chars: usize,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        FeedbackConfig { max_chars: 500 }
    }
}

/// The feedback plugin: `POST /api/feedback`, `GET /api/feedback`.
pub struct FeedbackPlugin;

weapp::register_plugin!(FeedbackPlugin);

const MIGRATIONS: &[weapp::db::Migration] = &[weapp::migration!("0001_create_feedback")];

#[weapp::async_trait::async_trait]
impl Plugin for FeedbackPlugin {
    fn name(&self) -> &'static str {
        "feedback"
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
        let config: FeedbackConfig = ctx.config().section("feedback")?;
        if config.max_chars == 0 {
            return Err(weapp::Error::internal(
                "feedback.max_chars must be at least 1",
            ));
        }
        ctx.insert(FeedbackStore::new(ctx.db().clone(), config));
        Ok(())
    }

    async fn export_user(
        &self,
        ctx: &AppContext,
        user_id: i64,
    ) -> weapp::Result<Option<serde_json::Value>> {
        let items = feedback_store(ctx)?.of_user(user_id, i64::MAX).await?;
        Ok(Some(serde_json::json!({ "feedback": items })))
    }

    async fn erase_user(&self, ctx: &AppContext, user_id: i64) -> weapp::Result<()> {
        feedback_store(ctx)?.erase_user(user_id).await
    }
}

/// The store built in `on_start`.
fn feedback_store(ctx: &AppContext) -> weapp::Result<std::sync::Arc<FeedbackStore>> {
    ctx.get::<FeedbackStore>()
        .ok_or_else(|| weapp::Error::internal("the feedback plugin has not started"))
}
