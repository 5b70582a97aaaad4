//! `AuthUser`: the authenticated caller, for handlers.

use std::future::Future;
use std::pin::Pin;

use actix_web::HttpMessage;
use actix_web::http::header::{AUTHORIZATION, HeaderMap};
use actix_web::{FromRequest, HttpRequest, dev::Payload};

use super::{Auth, AuthError, Claims};
use crate::AppContext;

/// The caller of an authenticated route: verified token, live session.
///
/// ```no_run
/// async fn orders(user: weapp::auth::AuthUser) -> String {
///     format!("orders of user {}", user.user_id)
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    /// The user's id.
    pub user_id: i64,
    /// The session the token belongs to.
    pub session_id: String,
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

impl FromRequest for AuthUser {
    type Error = crate::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let ctx = AppContext::extract(&req).await?;
            let auth = ctx.get::<Auth>().ok_or_else(|| {
                crate::Error::unavailable("auth_not_configured", "auth.jwt.keys is not configured")
            })?;
            // The rate limiter may have verified the token already.
            let verified = req.extensions().get::<Claims>().cloned();
            let claims = match verified {
                Some(claims) => claims,
                None => {
                    let claims = auth
                        .jwt
                        .verify(bearer_token(req.headers()).ok_or(AuthError::MissingToken)?)?;
                    // Later middleware (audit of rejected bodies) may want the caller.
                    if let Ok(user) = claims.sub.parse() {
                        req.extensions_mut().insert(crate::http::RequestUser(user));
                    }
                    req.extensions_mut().insert(claims.clone());
                    claims
                }
            };
            let user = live_session(&ctx, &auth, claims).await?;
            tracing::Span::current().record("user_id", user.user_id);
            Ok(user)
        })
    }
}

/// The caller of `token` — verified, its session live — and the token's claims: what
/// [`AuthUser`] checks, for a token that does not come in `Authorization` (a
/// WebSocket's subprotocol, a refreshed token sent over a socket).
pub async fn authenticate(ctx: &AppContext, token: &str) -> crate::Result<(AuthUser, Claims)> {
    let auth = ctx.get::<Auth>().ok_or_else(|| {
        crate::Error::unavailable("auth_not_configured", "auth.jwt.keys is not configured")
    })?;
    let claims = auth.jwt.verify(token)?;
    let user = live_session(ctx, &auth, claims.clone()).await?;
    Ok((user, claims))
}

/// The user of verified `claims`, if their session lives.
async fn live_session(ctx: &AppContext, auth: &Auth, claims: Claims) -> crate::Result<AuthUser> {
    let user_id: i64 = claims.sub.parse().map_err(|_| AuthError::InvalidToken)?;
    if !auth.live.is_live(user_id, &claims.sid) {
        let checked_at = std::time::Instant::now();
        let session = auth.sessions(ctx.kv()).active(&claims.sid, user_id).await?;
        if session.is_none() {
            return Err(AuthError::RevokedSession.into());
        }
        auth.live.record(user_id, &claims.sid, checked_at);
    }
    Ok(AuthUser {
        user_id,
        session_id: claims.sid,
    })
}
