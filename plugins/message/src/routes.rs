//! HTTP routes: the WeChat push endpoint and template administration.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use weapp::actix_web::{HttpResponse, web};
use weapp::api::{Access, ApiRoutes, Spec};
use weapp::auth::AdminCaller;
use weapp::events::Event;
use weapp::wechat::{PushMessage, push_ack, verify_url};
use weapp::{AppContext, Error};

use crate::service::Messages;
use crate::templates::TemplateRow;

/// Where WeChat delivers message pushes (configure this URL in the console).
pub const PUSH_PATH: &str = "/wechat/push";

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    ApiRoutes::new(cfg)
        .get(
            PUSH_PATH,
            "WeChat push URL verification (echostr)",
            Access::Signed,
            verify_url,
        )
        .with(
            Spec::new()
                .empty(200, "The `echostr`, echoed as plain text")
                .errors(&[(401, "invalid_signature"), (503, "push_not_configured")]),
        )
        .post(
            PUSH_PATH,
            "WeChat message push (published as wechat.push.<Event>)",
            Access::Signed,
            receive_push,
        )
        .with(
            Spec::new()
                .empty(200, "`success`, as WeChat expects")
                .errors(&[
                    (401, "invalid_signature"),
                    (503, "push_not_configured"),
                    (503, "push_handler_failed"),
                ]),
        )
        .get(
            "/api/admin/message-templates",
            "The app's subscribe templates",
            Access::Admin,
            list_templates,
        )
        .with(Spec::new().response::<Templates>(200, "The cached templates"))
        .post(
            "/api/admin/message-templates",
            "Add a library template",
            Access::Admin,
            add_template,
        )
        .with(
            Spec::new()
                .body::<AddTemplate>()
                .response::<TemplateAdded>(201, "The template, added to the app")
                .errors(&[
                    (400, "invalid_template_request"),
                    (502, "wechat_error"),
                    (502, "wechat_unavailable"),
                ]),
        )
        .post(
            "/api/admin/message-templates/sync",
            "Refresh templates from WeChat",
            Access::Admin,
            sync_templates,
        )
        .with(
            Spec::new()
                .response::<Synced>(200, "How many templates the app has now")
                .errors(&[(502, "wechat_error"), (502, "wechat_unavailable")]),
        )
        .delete(
            "/api/admin/message-templates/{id}",
            "Delete a template",
            Access::Admin,
            delete_template,
        )
        .with(
            Spec::new()
                .empty(204, "Deleted")
                .errors(&[(422, "unknown_template"), (502, "wechat_error")]),
        );
}

fn messages(ctx: &AppContext) -> Result<Arc<Messages>, Error> {
    ctx.get::<Messages>().ok_or_else(|| {
        Error::unavailable("message_not_ready", "the message plugin has not started")
    })
}

/// Publishes a verified push on the event bus as `wechat.push.<Event>` (or
/// `wechat.push.<MsgType>`), for every plugin that handles pushes.
async fn receive_push(ctx: AppContext, push: PushMessage) -> Result<HttpResponse, Error> {
    let kind = push.event().or(push.msg_type()).unwrap_or("unknown");
    let kind: String = kind
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(48)
        .collect();
    let id = format!(
        "wechat.push:{}:{}",
        push.0
            .get("CreateTime")
            .map(|t| t.to_string())
            .unwrap_or_default(),
        uuid::Uuid::new_v4().simple()
    );
    let event = Event {
        id,
        topic: format!("wechat.push.{kind}"),
        payload: push.0.clone(),
    };
    if let Err(e) = ctx.events().publish(&ctx, event).await {
        // WeChat retries a push that was not acknowledged; handlers must then cope
        // with seeing it again, so ask for the retry only when one failed, and let
        // that retry past the replay check.
        tracing::warn!(error = %e, "a push handler failed");
        push.forget(&ctx).await?;
        return Err(Error::unavailable("push_handler_failed", "try again"));
    }
    Ok(push_ack())
}

async fn announce(ctx: &AppContext, admin: &AdminCaller, action: &str, target: &str) {
    let event = Event {
        id: format!("{action}:{}", uuid::Uuid::new_v4().simple()),
        topic: action.to_owned(),
        payload: serde_json::json!({ "admin": admin.name, "template_id": target }),
    };
    if let Err(e) = ctx.events().publish(ctx, event).await {
        tracing::warn!(error = %e, "an admin event subscriber failed");
    }
}

async fn list_templates(ctx: AppContext, _admin: AdminCaller) -> Result<HttpResponse, Error> {
    let list = messages(&ctx)?.templates().await?;
    Ok(HttpResponse::Ok().json(Templates { templates: list }))
}

async fn sync_templates(ctx: AppContext, admin: AdminCaller) -> Result<HttpResponse, Error> {
    let count = messages(&ctx)?.sync_templates(&ctx).await?;
    announce(&ctx, &admin, "admin.templates.sync", "*").await;
    Ok(HttpResponse::Ok().json(Synced { templates: count }))
}

/// `POST /api/admin/message-templates` body: a library template and its keywords.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"tid": "1402", "kid_list": [1, 2, 3], "scene_desc": "订单发货通知"})))]
struct AddTemplate {
    /// The library template's id (`tid`).
    #[schema(min_length = 1)]
    tid: String,
    /// Its keywords to use, in order: 2 to 5.
    #[schema(min_items = 2, max_items = 5)]
    kid_list: Vec<i64>,
    /// What the subscription is for, shown to the user: at most 60 characters.
    #[serde(default)]
    #[schema(max_length = 60)]
    scene_desc: String,
}

/// Answer of `GET /api/admin/message-templates`.
#[derive(Serialize, utoipa::ToSchema)]
struct Templates {
    /// The cached templates.
    templates: Vec<TemplateRow>,
}

/// Answer of `POST /api/admin/message-templates/sync`.
#[derive(Serialize, utoipa::ToSchema)]
struct Synced {
    /// How many templates the app has.
    templates: usize,
}

/// Answer of `POST /api/admin/message-templates` (201).
#[derive(Serialize, utoipa::ToSchema)]
struct TemplateAdded {
    /// WeChat's `priTmplId` of the new template.
    template_id: String,
}

async fn add_template(
    ctx: AppContext,
    admin: AdminCaller,
    body: web::Json<AddTemplate>,
) -> Result<HttpResponse, Error> {
    if body.tid.is_empty()
        || !(2..=5).contains(&body.kid_list.len())
        || body.scene_desc.chars().count() > 60
    {
        return Err(Error::bad_request(
            "invalid_template_request",
            "tid is required, kid_list takes 2 to 5 keyword ids, scene_desc at most 60 characters",
        ));
    }
    let id = messages(&ctx)?
        .add_template(&ctx, &body.tid, &body.kid_list, &body.scene_desc)
        .await?;
    announce(&ctx, &admin, "admin.templates.add", &id).await;
    Ok(HttpResponse::Created().json(TemplateAdded { template_id: id }))
}

async fn delete_template(
    ctx: AppContext,
    admin: AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    messages(&ctx)?.delete_template(&ctx, &id).await?;
    announce(&ctx, &admin, "admin.templates.delete", &id).await;
    Ok(HttpResponse::NoContent().finish())
}
