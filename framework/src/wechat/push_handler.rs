//! Receiving pushes in a plugin with a few lines:
//!
//! ```no_run
//! use weapp::actix_web::{HttpResponse, web};
//! use weapp::wechat::PushMessage;
//!
//! async fn on_push(push: PushMessage) -> HttpResponse {
//!     if push.event() == Some("subscribe_msg_popup_event") {
//!         // ... record the user's choices from push.0 ...
//!     }
//!     weapp::wechat::push_ack()
//! }
//!
//! fn routes(cfg: &mut web::ServiceConfig) {
//!     cfg.route("/wechat/push", web::get().to(weapp::wechat::verify_url))
//!         .route("/wechat/push", web::post().to(on_push));
//! }
//! ```
//!
//! Both need `[wechat.push]` configured; otherwise they answer 503 `push_not_configured`.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header::ContentType;
use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, web};

use super::{PushCrypto, PushQuery};
use crate::{AppContext, Error};

fn push_crypto(ctx: &AppContext) -> Result<std::sync::Arc<PushCrypto>, Error> {
    ctx.get::<PushCrypto>()
        .ok_or_else(|| Error::unavailable("push_not_configured", "wechat.push is not configured"))
}

/// A verified, decrypted push message as JSON (XML elements become fields).
#[derive(Debug, Clone)]
pub struct PushMessage(pub serde_json::Value, SeenKey);

/// Where the push's (timestamp, nonce, signature) is remembered, so a handler that
/// failed can let WeChat's retry of it through.
#[derive(Debug, Clone, Default)]
struct SeenKey(String);

impl PushMessage {
    /// A message built by hand (tests, or pushes received some other way).
    pub fn new(message: serde_json::Value) -> Self {
        PushMessage(message, SeenKey::default())
    }

    /// Forgets that this push was received, so WeChat's retry of it is taken again.
    /// Call it when handling failed and you answer with an error (WeChat then
    /// retries the same push); otherwise the retry is refused as a replay.
    pub async fn forget(&self, ctx: &AppContext) -> Result<(), Error> {
        if !self.1.0.is_empty() {
            ctx.kv().delete(&self.1.0).await?;
        }
        Ok(())
    }

    /// `MsgType` (`event`, `text`...).
    pub fn msg_type(&self) -> Option<&str> {
        self.0.get("MsgType").and_then(|v| v.as_str())
    }

    /// `Event` of an event push (e.g. `subscribe_msg_popup_event`).
    pub fn event(&self) -> Option<&str> {
        self.0.get("Event").and_then(|v| v.as_str())
    }

    /// `FromUserName`: the openid of the user concerned.
    pub fn from_openid(&self) -> Option<&str> {
        self.0.get("FromUserName").and_then(|v| v.as_str())
    }
}

impl FromRequest for PushMessage {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let ctx = AppContext::extract(&req).await?;
            let crypto = push_crypto(&ctx)?;
            let query = web::Query::<PushQuery>::from_query(req.query_string())
                .map_err(|e| Error::bad_request("invalid_query", e.to_string()))?;
            let body = body.await.map_err(|e| {
                Error::http(
                    e.as_response_error().status_code(),
                    "invalid_body",
                    e.to_string(),
                )
            })?;
            let message = crypto.open_push(&query, &body)?;
            let push = ctx.config().get::<super::WechatConfig>()?.push.max_skew_s;
            let seen = fresh(&ctx, &query, push).await?;
            Ok(PushMessage(message, SeenKey(seen)))
        })
    }
}

/// A verified push is taken once: its timestamp within `max_skew_s` of our clock,
/// and its (timestamp, nonce, signature) not seen before within the window, so a
/// captured push cannot be replayed. Returns the key that remembers it.
async fn fresh(ctx: &AppContext, query: &PushQuery, max_skew_s: u64) -> Result<String, Error> {
    use crate::kv::once::{Refusal, take_once};
    let refused = |code: &'static str, message: &str| {
        Error::http(
            actix_web::http::StatusCode::UNAUTHORIZED,
            code,
            message.to_owned(),
        )
    };
    let timestamp = query.timestamp.trim();
    let signature = query
        .msg_signature
        .as_deref()
        .or(query.signature.as_deref())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let nonce = [timestamp, query.nonce.as_str(), signature.as_str()];
    match take_once(ctx.kv(), "wechat:push:seen", timestamp, &nonce, max_skew_s).await? {
        Ok(key) => Ok(key),
        Err(Refusal::BadTimestamp) => Err(refused(
            "stale_timestamp",
            "the push timestamp is not unix seconds",
        )),
        Err(Refusal::OutsideWindow) => Err(refused(
            "stale_timestamp",
            "the push timestamp is outside the accepted window",
        )),
        Err(Refusal::NonceTooLong) => Err(refused(
            "invalid_nonce",
            "the push nonce or signature is too long",
        )),
        Err(Refusal::Replayed) => Err(refused("replayed_nonce", "this push was already received")),
    }
}

/// GET handler for the console's URL verification: echoes `echostr` once the
/// signature checks out.
pub async fn verify_url(
    ctx: AppContext,
    query: web::Query<PushQuery>,
) -> Result<HttpResponse, Error> {
    let echo = push_crypto(&ctx)?.verify_url(&query)?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body(echo))
}

/// The reply WeChat expects after a push was handled: `success`.
pub fn push_ack() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body("success")
}
