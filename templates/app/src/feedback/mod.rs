//! A plugin of this project's own, to copy for new features: users leave feedback
//! and read theirs back. It shows the parts every plugin has: a unit struct
//! registered with [`weapp::register_plugin!`], a config section (`[feedback]`),
//! routes, one migration per backend (`migrations/{postgres,mysql,sqlite}/`), and
//! its share of the user's export and erasure rights.

mod routes;
mod schema;
mod store;

use serde::{Deserialize, Serialize};
use weapp::actix_web::web;
use weapp::config::{Config, ConfigIssue, ConfigSection};
use weapp::{AppContext, Plugin};

pub use store::{Feedback, FeedbackStore};

/// `[feedback]` settings (environment: `WEAPP__FEEDBACK__*`).
#[derive(Debug, Clone, Deserialize, Serialize)]
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

// Checked when the configuration loads: a bad value stops start-up naming its key.
impl ConfigSection for FeedbackConfig {
    const NAME: &'static str = "feedback";

    fn issues(&self, _config: &Config) -> Vec<ConfigIssue> {
        if self.max_chars == 0 {
            return vec![ConfigIssue::new("feedback.max_chars", "must be at least 1")];
        }
        Vec::new()
    }
}
weapp::config_section!(FeedbackConfig);

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
        let config = ctx.config().get::<FeedbackConfig>()?;
        ctx.insert(FeedbackStore::new(ctx.db().clone(), (*config).clone()));
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
