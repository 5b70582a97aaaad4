//! HTTP plumbing shared by every route: request ids, the JSON error shape for
//! everything actix itself rejects, body limits and extractor error mapping.
//!
//! The outermost middleware ([`request_context`]) gives each request an id, makes it
//! visible to [`crate::Error`] responses through a task-local, converts panics and
//! non-JSON error responses into the framework's JSON error shape, and adds
//! `charset=utf-8` to JSON responses.

use std::panic::AssertUnwindSafe;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use futures_util::FutureExt;

use crate::error::{Error, JSON_UTF8, default_code, error_response};

/// Header carrying the request id, in and out.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

pub use crate::request_id::current as current_request_id;

/// The user a request's verified access token names, stored in the request's
/// extensions by whoever verified it (the `AuthUser` extractor, the rate limiter),
/// for the plumbing around the handler (the audit of rejected bodies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestUser(pub i64);

/// The id of a request, stored in its extensions by [`request_context`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Accepts a client-supplied id only if it is short and printable, so it is safe to
/// log and echo; otherwise a fresh one is generated.
fn request_id_from(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

/// The outermost middleware; see the module documentation.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = request_id_from(&req);
    req.extensions_mut().insert(RequestId(id.clone()));
    // The app registers the rate as app data once per worker: no context lookup here.
    if let Some(rate) = req.app_data::<web::Data<crate::observe::rate::RequestRate>>() {
        rate.record();
    }

    // One span per request; route, status, latency and the user are filled in as
    // they become known (the user by the AuthUser extractor).
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        route = tracing::field::Empty,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
        user_id = tracing::field::Empty,
    );
    crate::observe::otel::adopt_incoming(&span, req.headers());
    let started = std::time::Instant::now();
    let outcome = tracing::Instrument::instrument(
        crate::request_id::scope(id.clone(), AssertUnwindSafe(next.call(req)).catch_unwind()),
        span.clone(),
    )
    .await;
    // The route is looked up again in the router, so only for a span that records it.
    let finish = |route: &dyn Fn() -> String, status: StatusCode| {
        if !span.is_disabled() {
            span.record("route", route().as_str());
        }
        span.record("status", status.as_u16());
        span.record("latency_ms", started.elapsed().as_secs_f64() * 1000.0);
        let _entered = span.enter();
        if status.is_server_error() {
            tracing::warn!("request finished");
        } else {
            tracing::info!("request finished");
        }
    };

    let mut res = match outcome {
        Ok(Ok(res)) => {
            finish(
                &|| {
                    res.request()
                        .match_pattern()
                        .unwrap_or_else(|| "unmatched".to_owned())
                },
                res.status(),
            );
            if res.status() == StatusCode::BAD_REQUEST {
                crate::request_id::scope(id.clone(), announce_rejection(&res)).await;
            }
            remember_write(&res).await;
            let status = res.status();
            let is_error = status.is_client_error() || status.is_server_error();
            if is_error && !is_json(res.headers().get(CONTENT_TYPE)) {
                // actix's own rejections (payload overflow, bad headers...) are plain text.
                let message = res.response().error().map(|e| e.to_string());
                let json = crate::request_id::sync_scope(id.clone(), || {
                    json_error_for_status(status, message.as_deref())
                });
                res.into_response(json)
            } else {
                res.map_into_boxed_body()
            }
        }
        // The request was consumed by the failed call, so no ServiceResponse can be
        // built here: the finished response travels inside the error instead.
        Ok(Err(err)) => {
            let status = err.as_response_error().status_code();
            finish(&|| "unmatched".to_owned(), status);
            if status.is_server_error() {
                tracing::error!(error = %err, "request failed");
            }
            let mut response = crate::request_id::sync_scope(id.clone(), || err.error_response());
            if !is_json(response.headers().get(CONTENT_TYPE)) {
                let message = err.to_string();
                response = crate::request_id::sync_scope(id.clone(), || {
                    json_error_for_status(status, Some(&message))
                });
            }
            return Err(finished(response, &id, err.to_string()));
        }
        Err(_panic) => {
            finish(
                &|| "unmatched".to_owned(),
                StatusCode::INTERNAL_SERVER_ERROR,
            );
            tracing::error!(request_id = %id, "handler panicked");
            let response = crate::request_id::sync_scope(id.clone(), || {
                json_error_for_status(StatusCode::INTERNAL_SERVER_ERROR, None)
            });
            return Err(finished(response, &id, "handler panicked".into()));
        }
    };

    let headers = res.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    if headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"application/json"))
    {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    }
    Ok(res)
}

/// Wraps a finished error response (with its request id header) as an actix error.
fn finished(mut response: HttpResponse, id: &str, cause: String) -> actix_web::Error {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    actix_web::error::InternalError::from_response(cause, response).into()
}

fn is_json(content_type: Option<&HeaderValue>) -> bool {
    content_type
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// A JSON error for a response that carries no code of its own; 5xx details are not
/// sent to the client.
fn json_error_for_status(status: StatusCode, message: Option<&str>) -> HttpResponse {
    let message = match message {
        Some(m) if !status.is_server_error() => m.to_owned(),
        _ => status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase(),
    };
    error_response(status, default_code(status), &message)
}

/// Fallback for requests that match no route: a JSON 404.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, Error> {
    Err(Error::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

/// A body field outside the request type's whitelist, named by the JSON extractor.
#[derive(Debug, Clone)]
struct RejectedField(String);

/// Records a body rejected for an unknown field. A signed-in user's rejection is a
/// `request.rejected` event (the audit log records it: which route, which field,
/// which user); an anonymous one is only counted in `http_rejected_bodies_total`, so
/// nobody can grow the append-only log without an account.
async fn announce_rejection(res: &ServiceResponse<impl MessageBody>) {
    let request = res.request();
    let Some(RejectedField(field)) = request.extensions().get::<RejectedField>().cloned() else {
        return;
    };
    let Some(ctx) = request.app_data::<web::Data<crate::AppContext>>() else {
        return;
    };
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let Some(user_id) = request.extensions().get::<RequestUser>().map(|user| user.0) else {
        if let Some(metrics) = ctx.get::<crate::observe::metrics::Metrics>() {
            metrics.record_rejection(&route, "unknown_field");
        }
        return;
    };
    let event = crate::events::Event {
        id: format!("request.rejected:{}", uuid::Uuid::new_v4().simple()),
        topic: "request.rejected".to_owned(),
        payload: serde_json::json!({
            "route": route,
            "method": request.method().as_str(),
            "field": field,
            "user_id": user_id,
        }),
    };
    if let Err(e) = ctx.events().publish(ctx, event).await {
        tracing::warn!(error = %e, "a request.rejected subscriber failed");
    }
}

/// After a signed-in request that may have written (any method but GET, HEAD,
/// OPTIONS), sends the user's reads to the primary for a while
/// ([`crate::AppContext::note_write`]); nothing to do without read replicas.
async fn remember_write(res: &ServiceResponse<impl MessageBody>) {
    let request = res.request();
    if request.method().is_safe() {
        return;
    }
    let Some(ctx) = request.app_data::<web::Data<crate::AppContext>>() else {
        return;
    };
    if !ctx.db().has_replicas() {
        return;
    }
    let Some(user_id) = request.extensions().get::<RequestUser>().map(|user| user.0) else {
        return;
    };
    ctx.note_write(user_id).await;
}

/// Maps JSON body extractor failures to 400/413/415 framework errors.
pub fn json_error(err: JsonPayloadError, req: &HttpRequest) -> actix_web::Error {
    let error = match &err {
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => Error::http(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {limit} bytes"),
        ),
        JsonPayloadError::ContentType => Error::http(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected a JSON body with Content-Type: application/json",
        ),
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            let message = e.to_string();
            if message.starts_with("unknown field") {
                // Remembered for request_context, which announces the rejection.
                let field = message.split('`').nth(1).unwrap_or_default();
                req.extensions_mut()
                    .insert(RejectedField(field.chars().take(64).collect()));
                Error::bad_request("unknown_field", message)
            } else {
                Error::bad_request("invalid_body", message)
            }
        }
        JsonPayloadError::Deserialize(e) => {
            Error::bad_request("malformed_json", format!("malformed JSON: {e}"))
        }
        JsonPayloadError::Payload(actix_web::error::PayloadError::Overflow) => Error::http(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is too large",
        ),
        other => Error::bad_request("invalid_body", other.to_string()),
    };
    error.into()
}

/// Maps query-string extractor failures to 400 `invalid_query`.
pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    Error::bad_request("invalid_query", err.to_string()).into()
}

/// Maps path-parameter extractor failures to 404 `not_found` (a malformed id names
/// no resource).
pub fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    Error::not_found(format!("no such resource: {err}")).into()
}

/// Extractor configuration registered on every app: body limit and error mapping.
pub fn configure_extractors(cfg: &mut web::ServiceConfig, body_limit: usize) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(body_limit)
            .error_handler(json_error),
    )
    .app_data(web::PayloadConfig::new(body_limit))
    .app_data(web::QueryConfig::default().error_handler(query_error))
    .app_data(web::PathConfig::default().error_handler(path_error));
}
