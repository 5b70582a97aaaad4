//! The app's templates: a table cached from WeChat, the data check before a send,
//! and the admin operations (sync, add from the library, delete).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use weapp::wechat::WechatContext;
use weapp::wechat::keywords::{rule_description, template_keywords, value_ok};
use weapp::{AppContext, with_conn};

use crate::error::MessageError;
use crate::schema::message_templates as templates;
use crate::service::{Messages, now_ms};

/// One-time templates need a subscription per send; long-term ones do not.
pub const ONE_TIME: i32 = 2;

/// A cached template.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Queryable, Selectable, utoipa::ToSchema,
)]
#[diesel(table_name = templates)]
pub struct TemplateRow {
    /// WeChat's `priTmplId`.
    pub template_id: String,
    /// Title.
    pub title: String,
    /// Keyword layout.
    pub content: String,
    /// 2 one-time, 3 long-term.
    pub kind: i32,
    /// Unix milliseconds.
    pub synced_at: i64,
}

impl TemplateRow {
    /// `(key, rule)` of each keyword.
    pub fn keywords(&self) -> Vec<(String, String)> {
        template_keywords(&self.content)
    }
}

/// Checks `data` against the template: every keyword present, no others, each value
/// within WeChat's rule. Accepts `{"thing1": "text"}` or `{"thing1": {"value":
/// "text"}}` and returns the `{"value": ...}` form WeChat expects.
pub fn checked_data(
    template: &TemplateRow,
    data: &Map<String, Value>,
) -> Result<Map<String, Value>, MessageError> {
    let keywords = template.keywords();
    let mut problems = Vec::new();
    let mut out = Map::new();
    for (key, rule) in &keywords {
        let value = match data.get(key) {
            Some(Value::String(s)) => Some(s.as_str()),
            Some(Value::Object(o)) => o.get("value").and_then(Value::as_str),
            _ => None,
        };
        match value {
            None => problems.push(format!("{key} is missing")),
            Some(v) if !value_ok(rule, v) => {
                problems.push(format!("{key} ({rule}) must be {}", rule_description(rule)))
            }
            Some(v) => {
                out.insert(key.clone(), serde_json::json!({ "value": v }));
            }
        }
    }
    for key in data
        .keys()
        .filter(|k| !keywords.iter().any(|(name, _)| name == *k))
    {
        problems.push(format!(
            "{key} is not a keyword of template {}",
            template.template_id
        ));
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(MessageError::InvalidData(problems.join("; ")))
    }
}

impl Messages {
    /// The cached templates.
    pub async fn templates(&self) -> Result<Vec<TemplateRow>, MessageError> {
        let mut conn = self.db.conn().await?;
        Ok(with_conn!(conn, |c| {
            templates::table
                .order(templates::template_id)
                .select(TemplateRow::as_select())
                .load(c)
                .await
        })?)
    }

    /// One template, from the cache; on a miss the cache is synced once from WeChat.
    pub async fn template(&self, ctx: &AppContext, id: &str) -> Result<TemplateRow, MessageError> {
        if let Some(row) = self.cached(id).await? {
            return Ok(row);
        }
        self.sync_templates(ctx).await?;
        self.cached(id)
            .await?
            .ok_or_else(|| MessageError::UnknownTemplate(id.to_owned()))
    }

    async fn cached(&self, id: &str) -> Result<Option<TemplateRow>, MessageError> {
        let mut conn = self.db.conn().await?;
        Ok(with_conn!(conn, |c| {
            templates::table
                .find(id)
                .select(TemplateRow::as_select())
                .first(c)
                .await
                .optional()
        })?)
    }

    /// Replaces the cache with WeChat's list; returns how many templates there are.
    pub async fn sync_templates(&self, ctx: &AppContext) -> Result<usize, MessageError> {
        let list = ctx
            .wechat()
            .map_err(|e| MessageError::NotConfigured(e.to_string()))?
            .get_templates()
            .await?;
        let now = now_ms();
        let rows: Vec<TemplateRow> = list
            .into_iter()
            .map(|t| TemplateRow {
                template_id: t.pri_tmpl_id,
                title: t.title,
                content: t.content,
                kind: i32::try_from(t.kind).unwrap_or(ONE_TIME),
                synced_at: now,
            })
            .collect();
        let mut conn = self.db.conn().await?;
        weapp::transaction!(conn, weapp::db::Isolation::BackendDefault, |c| {
            diesel::delete(templates::table).execute(c).await?;
            for row in &rows {
                diesel::insert_into(templates::table)
                    .values((
                        templates::template_id.eq(&row.template_id),
                        templates::title.eq(&row.title),
                        templates::content.eq(&row.content),
                        templates::kind.eq(row.kind),
                        templates::synced_at.eq(row.synced_at),
                    ))
                    .execute(c)
                    .await?;
            }
            Ok::<_, MessageError>(())
        })?;
        Ok(rows.len())
    }

    /// Adds a library template (`tid`, keyword ids) to the app; returns its id.
    pub async fn add_template(
        &self,
        ctx: &AppContext,
        tid: &str,
        kid_list: &[i64],
        scene_desc: &str,
    ) -> Result<String, MessageError> {
        let wechat = ctx
            .wechat()
            .map_err(|e| MessageError::NotConfigured(e.to_string()))?;
        use weapp::wechat::errcode;
        let id = match wechat.add_template(tid, kid_list, scene_desc).await {
            // What the operator asked for is wrong, not WeChat: a 400, not a 502.
            Err(e)
                if matches!(
                    e.errcode(),
                    Some(
                        errcode::UNKNOWN_LIBRARY_TEMPLATE
                            | errcode::INVALID_KEYWORD_LIST
                            | errcode::INVALID_SCENE_DESC
                    )
                ) =>
            {
                return Err(MessageError::InvalidTemplateRequest(e.to_string()));
            }
            other => other?,
        };
        self.sync_templates(ctx).await?;
        Ok(id)
    }

    /// Deletes a template from the app.
    pub async fn delete_template(&self, ctx: &AppContext, id: &str) -> Result<(), MessageError> {
        let wechat = ctx
            .wechat()
            .map_err(|e| MessageError::NotConfigured(e.to_string()))?;
        match wechat.delete_template(id).await {
            // WeChat knows no such template: bad input, not a failure of WeChat.
            Err(e) if e.errcode() == Some(weapp::wechat::errcode::INVALID_TEMPLATE_ID) => {
                return Err(MessageError::UnknownTemplate(id.to_owned()));
            }
            other => other?,
        }
        let mut conn = self.db.conn().await?;
        with_conn!(conn, |c| diesel::delete(templates::table.find(id))
            .execute(c)
            .await)?;
        Ok(())
    }
}
