//! A hook for checking user-generated text before it is stored.
//!
//! The framework stores some user text itself (the nickname of a profile); plugins
//! store more. Each calls [`check_user_text`] first. What the check does is up to the
//! plugin that installs a [`ContentCheck`] (the message plugin runs WeChat's
//! `msg_sec_check`); with none installed, text passes.

use std::sync::Arc;

use crate::AppContext;

/// Decides whether a user's text may be stored.
#[async_trait::async_trait]
pub trait ContentCheck: Send + Sync {
    /// `Ok` to store; an error (typically 422 `risky_content`) to refuse.
    async fn check(&self, ctx: &AppContext, user_id: i64, text: &str) -> crate::Result<()>;
}

/// The installed check, as stored in the [`AppContext`].
#[derive(Clone)]
pub struct InstalledContentCheck(pub Arc<dyn ContentCheck>);

/// Installs `check` for the app (one per app; a later call replaces it).
pub fn install(ctx: &AppContext, check: Arc<dyn ContentCheck>) {
    ctx.insert(InstalledContentCheck(check));
}

/// Runs the installed check on `text` written by `user_id`.
pub async fn check_user_text(ctx: &AppContext, user_id: i64, text: &str) -> crate::Result<()> {
    match ctx.get::<InstalledContentCheck>() {
        Some(installed) => installed.0.check(ctx, user_id, text).await,
        None => Ok(()),
    }
}
