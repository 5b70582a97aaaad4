//! One-time subscription quotas: granted when the user accepts a template in the
//! mini program (push events), consumed when a message is queued.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::Value;
use weapp::{AppContext, with_conn};

use crate::error::MessageError;
use crate::schema::message_quotas as quotas;
use crate::service::{Messages, now_ms};

impl Messages {
    /// Sends left for `user_id` on `template_id`.
    pub async fn quota(&self, user_id: i64, template_id: &str) -> Result<i32, MessageError> {
        let mut conn = self.db.conn().await?;
        let remaining: Option<i32> = with_conn!(conn, |c| {
            quotas::table
                .find((user_id, template_id))
                .select(quotas::remaining)
                .first(c)
                .await
                .optional()
        })?;
        Ok(remaining.unwrap_or(0))
    }

    /// Adds `count` sends (an accepted subscription prompt).
    pub async fn grant_quota(
        &self,
        user_id: i64,
        template_id: &str,
        count: i32,
    ) -> Result<(), MessageError> {
        let now = now_ms();
        let mut conn = self.db.conn().await?;
        weapp::transaction!(conn, weapp::db::Isolation::BackendDefault, |c| {
            let updated = diesel::update(quotas::table.find((user_id, template_id)))
                .set((
                    quotas::remaining.eq(quotas::remaining + count),
                    quotas::updated_at.eq(now),
                ))
                .execute(c)
                .await?;
            if updated == 0 {
                diesel::insert_into(quotas::table)
                    .values((
                        quotas::user_id.eq(user_id),
                        quotas::template_id.eq(template_id),
                        quotas::remaining.eq(count),
                        quotas::updated_at.eq(now),
                    ))
                    .execute(c)
                    .await?;
            }
            Ok::<_, MessageError>(())
        })
    }

    /// Sets the quota to zero (the user turned the template off, or WeChat said
    /// 43101).
    pub async fn clear_quota(&self, user_id: i64, template_id: &str) -> Result<(), MessageError> {
        let mut conn = self.db.conn().await?;
        with_conn!(conn, |c| {
            diesel::update(quotas::table.find((user_id, template_id)))
                .set((quotas::remaining.eq(0), quotas::updated_at.eq(now_ms())))
                .execute(c)
                .await
        })?;
        Ok(())
    }

    /// Applies a `subscribe_msg_popup_event` or `subscribe_msg_change_event` push:
    /// each accepted template adds one send; turning a template off in the settings
    /// (`reject` in a change event) clears its quota, while declining one prompt
    /// leaves earlier sends in place, as WeChat does.
    /// Returns how many entries were applied.
    pub async fn apply_subscription_push(
        &self,
        ctx: &AppContext,
        push: &Value,
    ) -> Result<usize, MessageError> {
        let Some(openid) = push.get("FromUserName").and_then(Value::as_str) else {
            return Ok(0);
        };
        let crypto = ctx
            .crypto()
            .map_err(|e| MessageError::NotConfigured(e.to_string()))?;
        let Some(user_id) = weapp::auth::users::id_by_openid(ctx.db(), crypto, openid).await?
        else {
            tracing::info!("subscription push for a user who never logged in; ignored");
            return Ok(0);
        };
        let change =
            push.get("Event").and_then(Value::as_str) == Some("subscribe_msg_change_event");
        let mut applied = 0;
        for entry in subscription_entries(push) {
            let template = entry
                .get("TemplateId")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if template.is_empty() {
                continue;
            }
            match entry.get("SubscribeStatusString").and_then(Value::as_str) {
                Some("accept") => self.grant_quota(user_id, template, 1).await?,
                Some("reject") if change => self.clear_quota(user_id, template).await?,
                _ => continue,
            }
            applied += 1;
        }
        Ok(applied)
    }
}

/// The `List` of a subscription event: one entry or several, in the JSON or XML
/// spelling (`{"List": {...}}`, `{"List": [...]}`, or `SubscribeMsgPopupEvent.List`).
fn subscription_entries(push: &Value) -> Vec<&Value> {
    let list = push
        .get("List")
        .or_else(|| push.pointer("/SubscribeMsgPopupEvent/List"))
        .or_else(|| push.pointer("/SubscribeMsgChangeEvent/List"));
    match list {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(item @ Value::Object(_)) => vec![item],
        _ => Vec::new(),
    }
}

impl Messages {
    /// What the plugin holds about a user: quotas and queued messages (their data is
    /// what the app chose to send them).
    pub async fn export_user(&self, user_id: i64) -> Result<Value, MessageError> {
        use crate::schema::message_queue as queue;
        let mut conn = self.db.conn().await?;
        let quotas: Vec<(String, i32)> = with_conn!(conn, |c| {
            quotas::table
                .filter(quotas::user_id.eq(user_id))
                .select((quotas::template_id, quotas::remaining))
                .load(c)
                .await
        })?;
        let sent: Vec<(i64, String, String, String)> = with_conn!(conn, |c| {
            queue::table
                .filter(queue::user_id.eq(user_id))
                .order(queue::id)
                .select((queue::id, queue::template_id, queue::state, queue::data))
                .limit(10_000)
                .load(c)
                .await
        })?;
        Ok(serde_json::json!({
            "quotas": quotas.into_iter().map(|(t, n)| serde_json::json!({"template_id": t, "remaining": n})).collect::<Vec<_>>(),
            "messages": sent.into_iter().map(|(id, t, s, d)| serde_json::json!({
                "id": id, "template_id": t, "state": s,
                "data": serde_json::from_str::<Value>(&d).unwrap_or(Value::Null),
            })).collect::<Vec<_>>(),
        }))
    }

    /// Deletes the user's quotas and messages (their content was addressed to them).
    pub async fn erase_user(&self, user_id: i64) -> Result<(), MessageError> {
        use crate::schema::message_queue as queue;
        let mut conn = self.db.conn().await?;
        weapp::transaction!(conn, weapp::db::Isolation::BackendDefault, |c| {
            diesel::delete(quotas::table.filter(quotas::user_id.eq(user_id)))
                .execute(c)
                .await?;
            diesel::delete(queue::table.filter(queue::user_id.eq(user_id)))
                .execute(c)
                .await?;
            Ok::<_, MessageError>(())
        })
    }
}
