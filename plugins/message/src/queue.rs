//! The persistent send queue and its worker.
//!
//! The queue is a [`LeaseQueue`] delivering [at most once](Delivery::AtMostOnce): a
//! message moves `pending → claimed → sending → sent | failed`, each step a
//! committed update, so a process that stops anywhere loses nothing:
//! - stopped after the claim: the lease runs out and another worker sends it;
//! - stopped while sending (WeChat may or may not have delivered it): the row is
//!   recorded `failed` with reason `unknown_outcome` instead of being sent twice.
//!
//! WeChat's answers decide what happens next: -1, 5xx, timeouts and broken
//! connections are retried with backoff up to `message.max_attempts`; 43101 (no
//! subscription), 47003 (bad data), 40037 (bad template), 40003 (bad openid) and
//! anything else are final and recorded with their errcode.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use weapp::backoff::Transient;
use weapp::queue::{Claim, Delivery, Failed, LeaseQueue, QueueSettings, QueueTable};
use weapp::wechat::types::SubscribeMessage;
use weapp::wechat::{WechatContext, WechatError};
use weapp::{AppContext, Shutdown, transaction, with_conn};

use crate::config::MessageConfig;
use crate::error::MessageError;
use crate::schema::{message_queue as queue, message_quotas as quotas};
use crate::service::{Messages, now_ms};
use crate::templates::{ONE_TIME, checked_data};

/// The send queue as a lease queue.
const TABLE: QueueTable = QueueTable {
    name: "message_queue",
    finished_at: "finished_at",
    error: "reason",
    done: "sent",
    parked: "failed",
    delivery: Delivery::AtMostOnce {
        claimed: "claimed",
        in_flight: "sending",
    },
};

/// Why a message in flight was parked by recovery.
const UNKNOWN_OUTCOME: &str = "unknown_outcome: the worker stopped while sending";

/// The queue `message.*` configures.
pub(crate) fn lease_queue(config: &MessageConfig) -> LeaseQueue {
    LeaseQueue::new(
        TABLE,
        QueueSettings {
            batch_size: config.batch_size,
            lease_ms: config.lease_ms,
            max_attempts: config.max_attempts,
            base_backoff_ms: config.base_backoff_ms,
            max_backoff_ms: config.max_backoff_ms,
            // Sent and failed messages are kept: the queue is also their record.
            keep_finished_s: i64::MAX,
        },
    )
}

/// A new row of the queue.
#[derive(Debug, Insertable)]
#[diesel(table_name = queue)]
struct NewMessage<'a> {
    user_id: i64,
    template_id: &'a str,
    data: &'a str,
    options: &'a str,
    state: &'a str,
    attempts: i32,
    next_attempt_at: i64,
    created_at: i64,
    dedupe_key: Option<&'a str>,
}

weapp::insert_returning_id! {
    /// Queuing a message and learning its id.
    trait InsertMessage { fn insert_message(&NewMessage<'_>) } => queue::table, queue::id;
}

/// A subscribe message to send to a user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The recipient's user id (the openid is looked up when sending).
    pub touser: i64,
    /// The template.
    pub template_id: String,
    /// Page opened from the message, e.g. `pages/order/detail?id=7`.
    #[serde(default)]
    pub page: Option<String>,
    /// Keyword values: `{"thing1": "text"}` or `{"thing1": {"value": "text"}}`.
    pub data: Map<String, Value>,
    /// `developer`, `trial` or `formal`.
    #[serde(default)]
    pub miniprogram_state: Option<String>,
    /// `zh_CN`, `en_US`, `zh_HK` or `zh_TW`.
    #[serde(default)]
    pub lang: Option<String>,
    /// The sender's key for this message (at most 128 characters), e.g. the id of
    /// the event that asked for it: a send with a key already queued returns that
    /// message's id and queues nothing, uses no quota. Event handlers set it, since
    /// events are delivered at least once.
    #[serde(default)]
    pub dedupe_key: Option<String>,
}

/// What the queue holds about one message.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = queue)]
pub struct QueuedMessage {
    /// Queue id.
    pub id: i64,
    /// Recipient.
    pub user_id: i64,
    /// Template.
    pub template_id: String,
    /// `pending`, `claimed`, `sending`, `sent`, `failed`.
    pub state: String,
    /// Attempts so far.
    pub attempts: i32,
    /// WeChat's last errcode.
    pub errcode: Option<i64>,
    /// Why it failed or was retried.
    pub reason: Option<String>,
    /// WeChat's msgid once sent.
    pub msgid: Option<i64>,
}

fn check_request(request: &SendRequest) -> Result<(), MessageError> {
    let bad = |m: &str| Err(MessageError::InvalidData(m.to_owned()));
    if request.template_id.is_empty() || request.template_id.len() > 128 {
        return bad("template_id must be 1 to 128 characters");
    }
    if request.page.as_ref().is_some_and(|p| p.len() > 512) {
        return bad("page must be at most 512 characters");
    }
    if request
        .dedupe_key
        .as_ref()
        .is_some_and(|k| k.is_empty() || k.len() > 128)
    {
        return bad("dedupe_key must be 1 to 128 characters");
    }
    if let Some(state) = &request.miniprogram_state
        && !["developer", "trial", "formal"].contains(&state.as_str())
    {
        return bad("miniprogram_state must be developer, trial or formal");
    }
    if let Some(lang) = &request.lang
        && !["zh_CN", "en_US", "zh_HK", "zh_TW"].contains(&lang.as_str())
    {
        return bad("lang must be zh_CN, en_US, zh_HK or zh_TW");
    }
    Ok(())
}

impl Messages {
    /// Checks and queues a message; returns its queue id. Nothing is queued, and no
    /// quota is used, when the data breaks the template's rules; a one-time template
    /// needs (and uses up) one send of the user's quota.
    pub async fn send(&self, ctx: &AppContext, request: SendRequest) -> Result<i64, MessageError> {
        check_request(&request)?;
        let template = self.template(ctx, &request.template_id).await?;
        let data = checked_data(&template, &request.data)?;
        if weapp::auth::users::openid_of(ctx.db(), ctx.crypto()?, request.touser)
            .await?
            .is_none()
        {
            return Err(MessageError::UnknownUser(request.touser));
        }
        let now = now_ms();
        let data = Value::Object(data).to_string();
        let options = serde_json::json!({
            "page": request.page,
            "miniprogram_state": request.miniprogram_state,
            "lang": request.lang,
        })
        .to_string();
        let row = NewMessage {
            user_id: request.touser,
            template_id: &request.template_id,
            data: &data,
            options: &options,
            state: weapp::queue::PENDING,
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
            dedupe_key: request.dedupe_key.as_deref(),
        };
        if let Some(id) = self.queued_under(request.dedupe_key.as_deref()).await? {
            return Ok(id);
        }
        let mut conn = self.db.conn().await?;
        let queued = transaction!(conn, weapp::db::Isolation::BackendDefault, |c| {
            if template.kind == ONE_TIME {
                let used = diesel::update(
                    quotas::table
                        .find((request.touser, &request.template_id))
                        .filter(quotas::remaining.gt(0)),
                )
                .set((
                    quotas::remaining.eq(quotas::remaining - 1),
                    quotas::updated_at.eq(now),
                ))
                .execute(c)
                .await?;
                if used != 1 {
                    return Err(MessageError::NoQuota {
                        user_id: request.touser,
                        template_id: request.template_id.clone(),
                    });
                }
            }
            Ok::<_, MessageError>(c.insert_message(&row).await?)
        });
        match queued {
            // The same key queued concurrently: that send won, and this one's quota
            // use was rolled back with its insert.
            Err(MessageError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                info,
            ))) if request.dedupe_key.is_some() => {
                match self.queued_under(request.dedupe_key.as_deref()).await? {
                    Some(id) => Ok(id),
                    None => Err(MessageError::Query(diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::UniqueViolation,
                        info,
                    ))),
                }
            }
            other => other,
        }
    }

    /// The id of the message queued under `dedupe_key`, if any.
    async fn queued_under(&self, dedupe_key: Option<&str>) -> Result<Option<i64>, MessageError> {
        let Some(key) = dedupe_key else {
            return Ok(None);
        };
        let mut conn = self.db.conn().await?;
        Ok(with_conn!(conn, |c| {
            queue::table
                .filter(queue::dedupe_key.eq(key))
                .select(queue::id)
                .first::<i64>(c)
                .await
                .optional()
        })?)
    }

    /// One queued message.
    pub async fn queued(&self, id: i64) -> Result<Option<QueuedMessage>, MessageError> {
        let mut conn = self.db.conn().await?;
        Ok(with_conn!(conn, |c| {
            queue::table
                .find(id)
                .select(QueuedMessage::as_select())
                .first(c)
                .await
                .optional()
        })?)
    }

    /// Claims up to `message.batch_size` due messages for this worker: pending ones,
    /// and claimed ones whose worker's lease ran out. Returns `(id, token)` pairs.
    pub async fn claim(&self, now: i64) -> Result<Vec<(i64, i64)>, MessageError> {
        let mut conn = self.db.conn().await?;
        let claimed = self.queue.claim_due::<Claim>(&mut conn, now).await?;
        Ok(claimed
            .rows
            .into_iter()
            .map(|row| (row.id, claimed.token))
            .collect())
    }

    /// Records messages whose worker stopped while sending them as failed with an
    /// unknown outcome (they may have reached the user; they are never sent twice).
    pub async fn recover_interrupted(&self, now: i64) -> Result<usize, MessageError> {
        let mut conn = self.db.conn().await?;
        Ok(self.queue.recover(&mut conn, now, UNKNOWN_OUTCOME).await?)
    }

    /// Sends one claimed message; returns its final or retry state.
    pub async fn deliver(
        &self,
        ctx: &AppContext,
        id: i64,
        token: i64,
    ) -> Result<String, MessageError> {
        let mut conn = self.db.conn().await?;
        // Committed before calling WeChat: from here on, a stop means "unknown outcome".
        if !self.queue.start(&mut conn, id, token, now_ms()).await? {
            return Ok("lost_claim".to_owned());
        }
        type Row = (i64, String, String, String, i32);
        let (user_id, template_id, data, options, attempts): Row = with_conn!(conn, |c| {
            queue::table
                .find(id)
                .select((
                    queue::user_id,
                    queue::template_id,
                    queue::data,
                    queue::options,
                    queue::attempts,
                ))
                .first(c)
                .await
        })?;
        drop(conn);
        let outcome = match weapp::auth::users::openid_of(ctx.db(), ctx.crypto()?, user_id).await? {
            None => Err(WechatError::Api {
                errcode: weapp::wechat::errcode::INVALID_OPENID,
                errmsg: "the user no longer exists".into(),
            }),
            Some(openid) => {
                let options: Value = serde_json::from_str(&options).unwrap_or_default();
                let text = |key: &str| options.get(key).and_then(Value::as_str).map(str::to_owned);
                let message = SubscribeMessage {
                    touser: openid,
                    template_id: template_id.clone(),
                    page: text("page"),
                    data: serde_json::from_str(&data).unwrap_or_default(),
                    miniprogram_state: text("miniprogram_state"),
                    lang: text("lang"),
                };
                match ctx.wechat() {
                    Ok(client) => client.send_subscribe_message(&message).await,
                    Err(e) => Err(WechatError::Unexpected(e.to_string())),
                }
            }
        };
        let now = now_ms();
        let e = match outcome {
            Ok(msgid) => {
                let mut conn = self.db.conn().await?;
                let msgid = [("msgid", Some(msgid)), ("errcode", None)];
                self.queue.complete(&mut conn, &[id], now, &msgid).await?;
                return Ok("sent".to_owned());
            }
            Err(e) => e,
        };
        let no_subscription = e.errcode() == Some(weapp::wechat::errcode::NO_SUBSCRIPTION);
        if no_subscription {
            // A business outcome, not an error: WeChat holds no subscription.
            tracing::info!(message_id = id, "no subscription at WeChat; recorded");
            self.clear_quota(user_id, &template_id).await?;
        }
        let errcode = [("msgid", None), ("errcode", e.errcode())];
        let error = e.to_string();
        let mut conn = self.db.conn().await?;
        let failed = self
            .queue
            .fail(
                &mut conn,
                id,
                attempts,
                &error,
                e.is_transient(),
                now,
                &errcode,
            )
            .await?;
        Ok(match failed {
            Failed::RetryAt(_) => "pending",
            Failed::Parked => {
                if !no_subscription {
                    tracing::warn!(message_id = id, error, "subscribe message failed");
                }
                "failed"
            }
        }
        .to_owned())
    }

    /// Recovers interrupted sends, then claims and sends what is due; returns how
    /// many messages were attempted.
    pub async fn deliver_due(&self, ctx: &AppContext) -> Result<usize, MessageError> {
        let now = now_ms();
        self.recover_interrupted(now).await?;
        let claimed = self.claim(now).await?;
        for (id, token) in &claimed {
            self.deliver(ctx, *id, *token).await?;
        }
        Ok(claimed.len())
    }
}

/// The worker: sends due messages until shutdown, pausing when idle.
pub(crate) async fn run_worker(ctx: AppContext, shutdown: Shutdown) {
    let Some(messages) = ctx.get::<Messages>() else {
        return;
    };
    let idle = std::time::Duration::from_millis(messages.config.poll_interval_ms.max(1));
    let full = usize::try_from(messages.config.batch_size).unwrap_or(1);
    shutdown
        .drain("message delivery", idle, full, || {
            let (messages, ctx) = (messages.clone(), ctx.clone());
            async move { messages.deliver_due(&ctx).await }
        })
        .await;
}
