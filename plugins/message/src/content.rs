//! Content security: user text is checked with WeChat's `msg_sec_check` before it is
//! stored.

use weapp::AppContext;
use weapp::wechat::WechatContext;

use crate::service::Messages;

impl Messages {
    /// Checks `text` written by `user_id` with `msg_sec_check` (scene
    /// `message.content_scene`). Risky text is 422 `risky_content`; text WeChat wants
    /// reviewed passes (the verdict is logged). Call it before storing user text.
    pub async fn check_text(
        &self,
        ctx: &AppContext,
        user_id: i64,
        text: &str,
    ) -> weapp::Result<()> {
        if text.trim().is_empty() {
            return Ok(());
        }
        let openid = weapp::auth::users::openid_of(ctx.db(), ctx.crypto()?, user_id)
            .await?
            .ok_or_else(|| weapp::Error::not_found("user not found"))?;
        let verdict = ctx
            .wechat()?
            .msg_sec_check(&openid, self.config.content_scene, text)
            .await?;
        match verdict.result.suggest.as_str() {
            "risky" => Err(weapp::Error::unprocessable(
                "risky_content",
                format!(
                    "the text was refused by content security (label {})",
                    verdict.result.label
                ),
            )),
            "review" => {
                tracing::info!(
                    user_id,
                    label = verdict.result.label,
                    "text passed with review"
                );
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The message plugin's [`weapp::content::ContentCheck`]: `msg_sec_check`.
pub(crate) struct WechatContentCheck;

#[weapp::async_trait::async_trait]
impl weapp::content::ContentCheck for WechatContentCheck {
    async fn check(&self, ctx: &AppContext, user_id: i64, text: &str) -> weapp::Result<()> {
        match ctx.get::<Messages>() {
            Some(messages) => messages.check_text(ctx, user_id, text).await,
            None => Ok(()),
        }
    }
}
