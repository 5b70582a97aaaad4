//! `/api/auth/*` and `/api/me`.

use actix_web::{HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::sessions::RotateOutcome;
use super::users::{self, UserRow};
use super::{Auth, AuthError, AuthUser};
use crate::wechat::WechatContext;
use crate::{AppContext, Error};
use weapp_crypto::{FieldContext, WechatDecryptor, mask::mask_phone};

/// Where session keys are sealed (they never touch the database; the context binds
/// their ciphertext to this use).
const SESSION_KEY: FieldContext = FieldContext::new("sessions", "session_key");

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    use crate::api::{Access, ApiRoutes, Spec};
    const WECHAT_ERRORS: &[(u16, &str)] = &[(502, "wechat_unavailable"), (502, "wechat_error")];
    ApiRoutes::new(cfg)
        .post(
            "/api/auth/login",
            "Log in with a wx.login code",
            Access::Public,
            login,
        )
        .with(
            Spec::new()
                .body::<LoginRequest>()
                .response::<TokenResponse>(200, "Tokens for the new session")
                .errors(&[
                    (400, "invalid_code"),
                    (401, "invalid_code"),
                    (401, "code_used"),
                    (403, "high_risk_user"),
                ])
                .errors(WECHAT_ERRORS),
        )
        .post(
            "/api/auth/refresh",
            "Rotate the refresh token",
            Access::Public,
            refresh,
        )
        .with(
            Spec::new()
                .body::<RefreshRequest>()
                .response::<TokenResponse>(200, "A new access token and refresh token")
                .errors(&[
                    (401, "invalid_refresh_token"),
                    (401, "revoked_session"),
                    (401, "refresh_token_reused"),
                ]),
        )
        .post("/api/auth/logout", "End this session", Access::User, logout)
        .with(Spec::new().empty(204, "The session has ended"))
        .post(
            "/api/auth/logout-all",
            "End every session of the user",
            Access::User,
            logout_all,
        )
        .with(Spec::new().empty(204, "Every session of the user has ended"))
        .post(
            "/api/auth/profile",
            "Store the profile from encryptedData",
            Access::User,
            profile,
        )
        .with(
            Spec::new()
                .body::<ProfileRequest>()
                .response::<Me>(200, "The caller, updated")
                .errors(&[(400, "stale_session_key"), (409, "profile_in_progress")]),
        )
        .post(
            "/api/auth/phone",
            "Store the phone number from a getPhoneNumber code",
            Access::User,
            phone,
        )
        .with(
            Spec::new()
                .body::<PhoneRequest>()
                .response::<Me>(200, "The caller, updated")
                .errors(&[(400, "invalid_phone_code")])
                .errors(WECHAT_ERRORS),
        )
        .get(
            "/api/me",
            "The caller: id, nickname, avatar, masked phone",
            Access::User,
            me,
        )
        .with(Spec::new().response::<Me>(200, "The caller"));
}

fn auth(ctx: &AppContext) -> Result<std::sync::Arc<Auth>, Error> {
    ctx.get::<Auth>()
        .ok_or_else(|| Error::unavailable("auth_not_configured", "auth.jwt.keys is not configured"))
}

/// Longest `wx.login` or phone-number code taken (WeChat's are 32 characters).
const CODE_MAX_CHARS: usize = 128;

/// `POST /api/auth/login` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    /// The code `wx.login` gave the mini program.
    #[schema(
        min_length = 1,
        max_length = 128,
        example = "0c3Kk5Ga1mYa8K0pXwGa1h6P8v0Kk5GZ"
    )]
    code: String,
}

/// Tokens handed to the mini program.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque token for `/api/auth/refresh`; single use.
    pub refresh_token: String,
    /// Seconds the access token lives.
    pub expires_in: u64,
    /// The user's id.
    pub user_id: i64,
}

async fn login(ctx: AppContext, body: web::Json<LoginRequest>) -> Result<HttpResponse, Error> {
    let auth = auth(&ctx)?;
    if !(1..=CODE_MAX_CHARS).contains(&body.code.chars().count()) {
        return Err(Error::bad_request(
            "invalid_code",
            "code must be the wx.login code",
        ));
    }
    let session = ctx.wechat()?.code2session(&body.code).await?;
    let crypto = ctx.crypto()?;
    let user_id = users::upsert_by_openid(
        ctx.db(),
        crypto,
        &session.openid,
        session.unionid.as_deref(),
    )
    .await?;
    let sealed = STANDARD.encode(crypto.seal(session.session_key.as_bytes(), &SESSION_KEY));
    let (sid, refresh_token) = auth.sessions(ctx.kv()).create(user_id, sealed).await?;
    let (access_token, expires_in) = auth.jwt.issue(user_id, &sid)?;
    tracing::info!(user_id, "login");
    announce(&ctx, "auth.login", user_id).await;
    Ok(HttpResponse::Ok().json(TokenResponse {
        access_token,
        refresh_token,
        expires_in,
        user_id,
    }))
}

/// `POST /api/auth/refresh` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"refresh_token": "kD3v9Qx2LmZ8pR4tW7yB1cF6hJ0nS5uE2aG8iK4oM3q"})))]
struct RefreshRequest {
    /// The current refresh token; it is used up by this call.
    refresh_token: String,
}

async fn refresh(ctx: AppContext, body: web::Json<RefreshRequest>) -> Result<HttpResponse, Error> {
    let auth = auth(&ctx)?;
    let outcome = auth.sessions(ctx.kv()).rotate(&body.refresh_token).await?;
    match outcome {
        RotateOutcome::Rotated {
            sid,
            user_id,
            refresh,
        } => {
            let (access_token, expires_in) = auth.jwt.issue(user_id, &sid)?;
            Ok(HttpResponse::Ok().json(TokenResponse {
                access_token,
                refresh_token: refresh,
                expires_in,
                user_id,
            }))
        }
        RotateOutcome::Unknown => Err(AuthError::InvalidRefreshToken.into()),
        RotateOutcome::Ended => Err(AuthError::RevokedSession.into()),
        RotateOutcome::Reused { sid, user_id } => {
            tracing::warn!("refresh token reused; session revoked");
            announce_session_end(&ctx, user_id, Some(&sid), "refresh_reused").await;
            Err(AuthError::RefreshTokenReused.into())
        }
    }
}

async fn logout(ctx: AppContext, user: AuthUser) -> Result<HttpResponse, Error> {
    auth(&ctx)?.sessions(ctx.kv()).end(&user.session_id).await?;
    announce_session_end(&ctx, user.user_id, Some(&user.session_id), "logout").await;
    Ok(HttpResponse::NoContent().finish())
}

async fn logout_all(ctx: AppContext, user: AuthUser) -> Result<HttpResponse, Error> {
    auth(&ctx)?.sessions(ctx.kv()).end_all(user.user_id).await?;
    announce_session_end(&ctx, user.user_id, None, "logout_all").await;
    Ok(HttpResponse::NoContent().finish())
}

/// What `/api/me` and the profile/phone updates answer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Me {
    /// The user's id.
    pub id: i64,
    /// Nickname, once the profile was shared.
    pub nickname: Option<String>,
    /// Avatar URL, once the profile was shared.
    pub avatar_url: Option<String>,
    /// Masked phone number (`138****8000`), once shared.
    pub phone: Option<String>,
}

async fn load_me(ctx: &AppContext, user_id: i64) -> Result<Me, Error> {
    let row: UserRow = users::find(ctx.db(), user_id)
        .await?
        .ok_or(Error::from(AuthError::RevokedSession))?;
    // A user who never shared a phone number needs no key ring.
    let phone = match &row.phone {
        Some(sealed) => Some(mask_phone(&sealed.open(ctx.crypto()?)?)),
        None => None,
    };
    Ok(Me {
        id: row.id,
        nickname: row.nickname,
        avatar_url: row.avatar_url,
        phone,
    })
}

async fn me(ctx: AppContext, user: AuthUser) -> Result<HttpResponse, Error> {
    let cache = &auth(&ctx)?.me;
    let body = match cache.get(user.user_id) {
        Some(body) => body,
        None => {
            let read_at = std::time::Instant::now();
            let me = load_me(&ctx, user.user_id).await?;
            let body = web::Bytes::from(
                serde_json::to_vec(&me).map_err(|e| Error::internal(e.to_string()))?,
            );
            cache.put(user.user_id, read_at, body.clone());
            body
        }
    };
    Ok(HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body))
}

/// `POST /api/auth/profile` body: what `wx.getUserProfile` returned.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProfileRequest {
    encrypted_data: String,
    iv: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WechatProfile {
    nick_name: Option<String>,
    avatar_url: Option<String>,
}

async fn profile(
    ctx: AppContext,
    user: AuthUser,
    body: web::Json<ProfileRequest>,
) -> Result<HttpResponse, Error> {
    let auth = auth(&ctx)?;
    let session = auth
        .sessions(ctx.kv())
        .active(&user.session_id, user.user_id)
        .await?
        .ok_or(AuthError::RevokedSession)?;
    let crypto = ctx.crypto()?;
    let sealed = STANDARD
        .decode(&session.sealed_session_key)
        .map_err(|_| Error::internal("stored session key is not base64"))?;
    let session_key = crypto.open(&sealed, &SESSION_KEY)?;
    let session_key = std::str::from_utf8(&session_key)
        .map_err(|_| Error::internal("stored session key is not text"))?;
    let wechat = ctx.config().get::<crate::wechat::WechatConfig>()?;
    let appid = &wechat.appid;
    let decoded: WechatProfile = WechatDecryptor::new(appid.clone()).decrypt_as(
        session_key,
        &body.encrypted_data,
        &body.iv,
    )?;
    let clip = |s: Option<String>, max: usize| s.map(|s| s.chars().take(max).collect::<String>());
    if let Some(nickname) = &decoded.nick_name {
        crate::content::check_user_text(&ctx, user.user_id, nickname).await?;
    }
    users::update_profile(
        ctx.db(),
        user.user_id,
        clip(decoded.nick_name, 64).as_deref(),
        clip(decoded.avatar_url, 512).as_deref(),
    )
    .await?;
    // After the write: a read racing with it is kept at most `me_cache_ms`.
    auth.me_changed(user.user_id).await;
    announce(&ctx, "auth.profile", user.user_id).await;
    Ok(HttpResponse::Ok().json(load_me(&ctx, user.user_id).await?))
}

/// `POST /api/auth/phone` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PhoneRequest {
    /// The code of a `getPhoneNumber` button.
    #[schema(
        min_length = 1,
        max_length = 128,
        example = "e31968a7f94cc5ee25fafc2aef2773f0bb8c3937b22520eb8ee345274d00c144"
    )]
    code: String,
}

async fn phone(
    ctx: AppContext,
    user: AuthUser,
    body: web::Json<PhoneRequest>,
) -> Result<HttpResponse, Error> {
    let invalid_code = || {
        Error::bad_request(
            "invalid_phone_code",
            "the phone-number code is invalid, expired or used",
        )
    };
    if !(1..=CODE_MAX_CHARS).contains(&body.code.chars().count()) {
        return Err(invalid_code());
    }
    let info = ctx
        .wechat()?
        .get_phone_number(&body.code)
        .await
        .map_err(|e| {
            if e.errcode() == Some(crate::wechat::errcode::INVALID_CODE)
                || e.errcode() == Some(crate::wechat::errcode::CODE_USED)
            {
                invalid_code()
            } else {
                e.into()
            }
        })?;
    users::set_phone(
        ctx.db(),
        ctx.crypto()?,
        user.user_id,
        &info.pure_phone_number,
    )
    .await?;
    if let Some(auth) = ctx.get::<Auth>() {
        auth.me_changed(user.user_id).await;
    }
    announce(&ctx, "auth.phone", user.user_id).await;
    Ok(HttpResponse::Ok().json(load_me(&ctx, user.user_id).await?))
}

/// Forgets the ended session wherever it is trusted ([`super::Auth::session_ended`]),
/// then announces [`SessionEnded`](super::SessionEnded), as [`announce`] does.
pub(super) async fn announce_session_end(
    ctx: &AppContext,
    user_id: i64,
    session_id: Option<&str>,
    reason: &str,
) {
    if let Some(auth) = ctx.get::<super::Auth>() {
        auth.session_ended(user_id, session_id).await;
    }
    let ended = super::SessionEnded {
        user_id,
        session_id: session_id.map(str::to_owned),
        reason: reason.to_owned(),
    };
    let id = format!("auth.session_ended:{}", uuid::Uuid::new_v4().simple());
    let event = crate::events::Event::typed(id, &ended);
    if let Err(e) = ctx.events().publish(ctx, event).await {
        tracing::warn!(error = %e, "a session-end subscriber failed");
    }
}

/// Tells other plugins (the audit log) what happened. Delivery is in-process and
/// best effort: a failing subscriber is logged and does not fail the request.
pub(super) async fn announce(ctx: &AppContext, topic: &str, user_id: i64) {
    let event = crate::events::Event {
        id: format!("{topic}:{}", uuid::Uuid::new_v4().simple()),
        topic: topic.to_owned(),
        payload: serde_json::json!({ "user_id": user_id }),
    };
    if let Err(e) = ctx.events().publish(ctx, event).await {
        tracing::warn!(topic, error = %e, "an auth event subscriber failed");
    }
}
