//! Rate limits per route prefix, per client IP and per user, shared by all instances
//! through the key-value store (GCRA).

use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;

use super::config::Limit;
use crate::{AppContext, Error};

fn interval(limit: &Limit) -> Duration {
    Duration::from_secs_f64(1.0 / limit.per_second)
}

/// The user behind a verified bearer token, if any (no session lookup here; the
/// handler's `AuthUser` does that, reusing the claims stored in the request).
fn user_of(ctx: &AppContext, req: &ServiceRequest) -> Option<i64> {
    let auth = ctx.get::<crate::auth::Auth>()?;
    let claims = auth
        .jwt
        .verify(crate::auth::bearer_token(req.headers())?)
        .ok()?;
    let user = claims.sub.parse().ok();
    req.extensions_mut().insert(claims);
    if let Some(user) = user {
        req.extensions_mut().insert(crate::http::RequestUser(user));
    }
    user
}

/// The client address: the TCP peer, or the last `X-Forwarded-For` entry (the one
/// the proxy appended) when the peer is a trusted proxy.
pub fn client_ip(
    req: &ServiceRequest,
    trusted_proxies: &[std::net::IpAddr],
) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    req.headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|ip| ip.trim().parse().ok())
        .or(Some(peer))
}

/// Middleware: answers 429 with `Retry-After` once a limit is exceeded.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(ctx) = super::context(&req) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let path = super::routed_path(&req);
    let live = super::live_for(&req, &ctx);
    let rule = live
        .rate_limits
        .iter()
        .filter(|r| path.starts_with(r.prefix.as_str()))
        .max_by_key(|r| r.prefix.len());
    let Some(rule) = rule else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let mut checks = Vec::new();
    if let Some(limit) = rule.per_ip {
        let ip = client_ip(&req, &live.trusted_proxies)
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        checks.push((format!("guard:rl:{}:ip:{ip}", rule.prefix), limit));
    }
    if let Some(limit) = rule.per_user
        && let Some(user) = user_of(&ctx, &req)
    {
        checks.push((format!("guard:rl:{}:user:{user}", rule.prefix), limit));
    }
    for (key, limit) in checks {
        if let Some(wait) = ctx
            .kv()
            .throttle(&key, interval(&limit), limit.burst)
            .await
            .map_err(Error::from)?
        {
            let error = Error::http(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests, slow down",
            );
            let seconds = wait.as_secs_f64().ceil() as u64;
            return Ok(req.into_response(error.retry_after_response(seconds)));
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}
