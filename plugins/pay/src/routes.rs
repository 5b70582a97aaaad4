//! `POST /api/pay/notify/{merchant}`: where WeChat Pay sends notifications.

use weapp::AppContext;
use weapp::actix_web::{HttpRequest, HttpResponse, web};
use weapp::api::{Access, ApiRoutes, Spec};

use crate::service::Payments;

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    ApiRoutes::new(cfg)
        .post(
            "/api/pay/notify/{merchant}",
            "WeChat Pay notification (Wechatpay-Signature over the raw body)",
            Access::Signed,
            notify,
        )
        .with(Spec::new().empty(204, "Applied, or safely ignored"));
}

/// Answers as WeChat Pay expects: 204 once applied (or safely ignored); otherwise
/// a 4xx/5xx with `{"code": "FAIL", "message"}`, and WeChat Pay sends it again
/// later. `reason` is our stable code for the refusal.
async fn notify(
    ctx: AppContext,
    req: HttpRequest,
    merchant: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let Some(payments) = ctx.get::<Payments>() else {
        return fail(
            weapp::actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "pay_not_ready",
            "payments are not configured".into(),
        );
    };
    let now = chrono::Utc::now().timestamp();
    match payments.receive(&merchant, req.headers(), &body, now).await {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(refusal) => {
            tracing::warn!(merchant = %merchant, reason = refusal.code(), "notification refused");
            fail(refusal.status(), refusal.code(), refusal.message())
        }
    }
}

fn fail(status: weapp::actix_web::http::StatusCode, reason: &str, message: String) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({
        "code": "FAIL",
        "message": message,
        "reason": reason,
    }))
}
