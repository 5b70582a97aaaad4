//! HTTP handlers. Bad input gets a JSON error with a stable `code`, never a 500.

use serde::{Deserialize, Serialize};
use weapp::actix_web::{HttpResponse, web};
use weapp::api::{Access, ApiRoutes, Spec};
use weapp::auth::AuthUser;
use weapp::utoipa;
use weapp::{AppContext, Error};

use super::feedback_store;
use super::store::Feedback;

/// Mounts the plugin's routes; each is listed in `/api/openapi.json` with what it
/// takes and answers (the mini program's SDK is typed from that).
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    ApiRoutes::new(cfg)
        .post("/api/feedback", "Leave feedback", Access::User, create)
        .with(
            Spec::new()
                .body::<NewFeedback>()
                .response::<Feedback>(201, "The stored feedback")
                .errors(&[(422, "invalid_feedback"), (422, "risky_content")]),
        )
        .get(
            "/api/feedback",
            "The caller's feedback, newest first",
            Access::User,
            list,
        )
        .with(
            Spec::new()
                .query::<ListQuery>()
                .response::<FeedbackList>(200, "The caller's feedback"),
        );
}

/// `POST /api/feedback` body. Unknown fields are refused (400 `unknown_field`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"body": "发货很快，谢谢"})))]
struct NewFeedback {
    /// What the user writes: not only spaces, at most `feedback.max_chars`
    /// characters (default 500) once trimmed.
    #[schema(min_length = 1)]
    body: String,
}

/// `GET /api/feedback` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// How many, newest first (default 20).
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 100)]
    limit: i64,
}

/// Answer of `GET /api/feedback`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct FeedbackList {
    /// Newest first.
    items: Vec<Feedback>,
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
    Ok(HttpResponse::Ok().json(FeedbackList { items }))
}
