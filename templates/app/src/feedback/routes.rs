//! HTTP handlers. Bad input gets a JSON error with a stable `code`, never a 500.

use serde::Deserialize;
use weapp::actix_web::{HttpResponse, web};
use weapp::api::{Access, ApiRoutes};
use weapp::auth::AuthUser;
use weapp::{AppContext, Error};

use super::feedback_store;

/// Mounts the plugin's routes; each is listed in `/api/openapi.json`.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    ApiRoutes::new(cfg)
        .post("/api/feedback", "Leave feedback", Access::User, create)
        .get(
            "/api/feedback",
            "The caller's feedback, newest first",
            Access::User,
            list,
        );
}

/// `POST /api/feedback` body. Unknown fields are refused (400 `unknown_field`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewFeedback {
    body: String,
}

/// `GET /api/feedback` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    20
}

async fn create(
    ctx: AppContext,
    user: AuthUser,
    body: web::Json<NewFeedback>,
) -> Result<HttpResponse, Error> {
    let store = feedback_store(&ctx)?;
    let text = body.body.trim();
    if text.is_empty() {
        return Err(Error::unprocessable(
            "invalid_feedback",
            "body must not be empty",
        ));
    }
    let max = store.config().max_chars;
    if text.chars().count() > max {
        return Err(Error::unprocessable(
            "invalid_feedback",
            format!("body is longer than {max} characters"),
        ));
    }
    // WeChat's content security check, when a plugin installs one (message does).
    weapp::content::check_user_text(&ctx, user.user_id, text).await?;
    let saved = store.add(user.user_id, text).await?;
    Ok(HttpResponse::Created().json(saved))
}

async fn list(
    ctx: AppContext,
    user: AuthUser,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, Error> {
    if !(1..=100).contains(&query.limit) {
        return Err(Error::bad_request(
            "invalid_query",
            "limit must be between 1 and 100",
        ));
    }
    let items = feedback_store(&ctx)?
        .of_user(user.user_id, query.limit)
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}
