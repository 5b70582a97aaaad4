//! The user's rights under PIPL: `GET /api/me/export` and `DELETE /api/me`.
//!
//! Both walk every enabled plugin ([`Plugin::export_user`](crate::Plugin::export_user),
//! [`Plugin::erase_user`](crate::Plugin::erase_user)), so a plugin that stores
//! personal data takes part by implementing two methods. Both are announced on the
//! event bus (`privacy.export`, `privacy.erase`), which the audit log records.

use actix_web::{HttpResponse, web};

use super::handlers::announce;
use super::{AuthUser, users};
use crate::plugin::EnabledPlugins;
use crate::{AppContext, Error};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    use crate::api::{Access, ApiRoutes, Spec};
    ApiRoutes::new(cfg)
        .get(
            "/api/me/export",
            "Everything held about the caller, decrypted",
            Access::User,
            export,
        )
        .with(Spec::new().response::<Export>(200, "The caller's data, by plugin"))
        .delete(
            "/api/me",
            "Erase the caller's personal data",
            Access::User,
            erase,
        )
        .with(Spec::new().empty(204, "Erased; every session has ended"));
}

/// Answer of `GET /api/me/export`.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Export {
    /// The caller.
    user_id: i64,
    /// When the export was made (RFC 3339).
    exported_at: String,
    /// What each plugin holds about the caller, by plugin name.
    #[schema(value_type = Object)]
    data: serde_json::Map<String, serde_json::Value>,
}

fn plugins(ctx: &AppContext) -> Vec<&'static dyn crate::Plugin> {
    ctx.get::<EnabledPlugins>()
        .map(|p| p.0.clone())
        .unwrap_or_default()
}

async fn export(ctx: AppContext, user: AuthUser) -> Result<HttpResponse, Error> {
    let mut data = serde_json::Map::new();
    for plugin in plugins(&ctx) {
        if let Some(value) = plugin.export_user(&ctx, user.user_id).await? {
            data.insert(plugin.name().to_owned(), value);
        }
    }
    announce(&ctx, "privacy.export", user.user_id).await;
    Ok(HttpResponse::Ok().json(Export {
        user_id: user.user_id,
        exported_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        data,
    }))
}

async fn erase(ctx: AppContext, user: AuthUser) -> Result<HttpResponse, Error> {
    // Dependents first: they may still need what their dependencies hold.
    for plugin in plugins(&ctx).into_iter().rev() {
        plugin.erase_user(&ctx, user.user_id).await?;
    }
    announce(&ctx, "privacy.erase", user.user_id).await;
    Ok(HttpResponse::NoContent().finish())
}

/// The `users` row, decrypted, for the export.
pub(super) async fn export_user(
    ctx: &AppContext,
    user_id: i64,
) -> crate::Result<Option<serde_json::Value>> {
    let Some(row) = users::export(ctx.db(), user_id).await? else {
        return Ok(None);
    };
    let crypto = ctx.crypto()?;
    let unionid = row.unionid.as_ref().map(|u| u.open(crypto)).transpose()?;
    let phone = row.phone.as_ref().map(|p| p.open(crypto)).transpose()?;
    let created_at = chrono::DateTime::from_timestamp_millis(row.created_at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    Ok(Some(serde_json::json!({
        "id": row.id,
        "openid": row.openid.open(crypto)?,
        "unionid": unionid,
        "phone": phone,
        "nickname": row.nickname,
        "avatar_url": row.avatar_url,
        "created_at": created_at,
    })))
}

/// Ends every session and erases the `users` row's personal fields.
pub(super) async fn erase_user(ctx: &AppContext, user_id: i64) -> crate::Result<()> {
    if let Some(auth) = ctx.get::<super::Auth>() {
        auth.sessions(ctx.kv()).end_all(user_id).await?;
        super::handlers::announce_session_end(ctx, user_id, None, "erased").await;
    }
    users::erase(ctx.db(), ctx.crypto()?, user_id).await?;
    if let Some(auth) = ctx.get::<super::Auth>() {
        auth.me_changed(user_id).await;
    }
    Ok(())
}
