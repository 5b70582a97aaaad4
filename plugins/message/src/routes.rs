//! HTTP routes: the WeChat push endpoint and template administration.

use std::sync::Arc;

use serde::Deserialize;
use weapp::actix_web::{HttpResponse, web};
use weapp::api::{Access, ApiRoutes};
use weapp::auth::AdminCaller;
use weapp::events::Event;
use weapp::wechat::{PushMessage, push_ack, verify_url};
use weapp::{AppContext, Error};

use crate::service::Messages;

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
        .post(
            PUSH_PATH,
            "WeChat message push (published as wechat.push.<Event>)",
            Access::Signed,
            receive_push,
        )
        .get(
            "/api/admin/message-templates",
            "The app's subscribe templates",
            Access::Admin,
            list_templates,
        )
        .post(
            "/api/admin/message-templates",
            "Add a library template",
            Access::Admin,
            add_template,
        )
        .post(
            "/api/admin/message-templates/sync",
            "Refresh templates from WeChat",
            Access::Admin,
            sync_templates,
        )
        .delete(
            "/api/admin/message-templates/{id}",
            "Delete a template",
            Access::Admin,
            delete_template,
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
    Ok(HttpResponse::Ok().json(serde_json::json!({ "templates": list })))
}

async fn sync_templates(ctx: AppContext, admin: AdminCaller) -> Result<HttpResponse, Error> {
    let count = messages(&ctx)?.sync_templates(&ctx).await?;
    announce(&ctx, &admin, "admin.templates.sync", "*").await;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "templates": count })))
}

/// `POST /api/admin/message-templates` body: a library template and its keywords.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddTemplate {
    tid: String,
    kid_list: Vec<i64>,
    #[serde(default)]
    scene_desc: String,
}

async fn add_template(
    ctx: AppContext,
    admin: AdminCaller,
    body: web::Json<AddTemplate>,
) -> Result<HttpResponse, Error> {
    if body.tid.is_empty() || !(2..=5).contains(&body.kid_list.len()) || body.scene_desc.len() > 60
    {
        return Err(Error::bad_request(
            "invalid_template_request",
            "tid is required, kid_list takes 2 to 5 keyword ids, scene_desc at most 60 bytes",
        ));
    }
    let id = messages(&ctx)?
        .add_template(&ctx, &body.tid, &body.kid_list, &body.scene_desc)
        .await?;
    announce(&ctx, &admin, "admin.templates.add", &id).await;
    Ok(HttpResponse::Created().json(serde_json::json!({ "template_id": id })))
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
