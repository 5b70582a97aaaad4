//! Mini-program login and sessions, mounted by the built-in `auth` plugin.
//!
//! `POST /api/auth/login {"code"}` exchanges a `wx.login` code (code2Session), creates
//! or finds the user by the blind index of the openid, keeps the `session_key` sealed
//! in a server-side session, and returns a short-lived JWT plus a single-use refresh
//! token. `session_key` never leaves the server. Handlers take [`AuthUser`] to require
//! a valid token and a live session. Routes: `/api/auth/{login,refresh,logout,
//! logout-all,profile,phone}` and `GET /api/me`.

mod admin;
mod config;
mod error;
mod extractor;
mod handlers;
mod jwt;
mod live_sessions;
mod me_cache;
mod privacy;
pub mod sessions;
mod sharded_map;
pub mod users;
mod verified_tokens;

use std::time::Duration;

use actix_web::web;

pub use admin::{ADMIN_TOKEN_HEADER, AdminCaller, AdminTokens};
pub use config::{AuthConfig, JwtAlgorithm, JwtConfig};
pub use error::AuthError;
pub use extractor::{AuthUser, authenticate, bearer_token};
pub use handlers::{Me, TokenResponse};
pub use jwt::{Claims, JwtKeys};
use sessions::SessionStore;

use crate::AppContext;
use crate::kv::stream_entry::Entry;
use crate::kv::{Broadcast, KvStore};
use crate::plugin::BackgroundTask;

/// `auth.session_ended`, published in-process when sessions end by logout
/// (`reason` `logout`, that one session), logout-all (`logout_all`) or erasure of
/// the account (`erased`): the real-time relay closes their sockets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionEnded {
    /// The user.
    pub user_id: i64,
    /// The one session that ended; `None`: every session of the user.
    pub session_id: Option<String>,
    /// `logout`, `logout_all`, `erased` or `refresh_reused`.
    pub reason: String,
}

impl crate::events::TypedEvent for SessionEnded {
    const TOPIC: &'static str = "auth.session_ended";
}

/// The auth service stored in the context.
pub struct Auth {
    /// Token signing and verification.
    pub jwt: JwtKeys,
    session_ttl: Duration,
    me: me_cache::MeCache,
    /// With Redis: tells the other instances whose cached `/api/me` to forget.
    me_changes: Option<Broadcast>,
    live: live_sessions::LiveSessions,
    /// With Redis and `auth.session_cache_ms`: tells the other instances which
    /// sessions ended.
    session_ends: Option<Broadcast>,
}

impl Auth {
    /// Sessions on the app's key-value store.
    pub fn sessions<'a>(&self, kv: &'a dyn KvStore) -> SessionStore<'a> {
        SessionStore::new(kv, self.session_ttl)
    }

    /// Forgets the user's cached `/api/me` answer here and on every other instance;
    /// call it after their profile fields are written. Not reaching Redis is logged,
    /// not an error: the others' copies then age out within `auth.me_cache_ms`.
    async fn me_changed(&self, user_id: i64) {
        self.me.forget(user_id);
        if let Some(changes) = &self.me_changes {
            let id = user_id.to_string();
            if let Err(e) = changes.publish(&[(ME_CHANGED_USER, id.as_bytes())]).await {
                tracing::warn!(error = %e, "cannot tell other instances to forget a cached /api/me");
            }
        }
    }

    /// Forgets an ended session (`None`: every session of the user) here and on
    /// every other instance that trusts checked sessions for
    /// `auth.session_cache_ms`; call it after [`SessionStore::end`] or
    /// [`SessionStore::end_all`] (the app's own logout, logout-all, erasure and
    /// refresh-reuse detection do). Not reaching Redis is logged, not an error: the
    /// others then trust the session at most `auth.session_cache_ms` longer.
    pub async fn session_ended(&self, user_id: i64, session_id: Option<&str>) {
        self.live.ended(user_id, session_id);
        if let Some(ends) = &self.session_ends {
            let user = user_id.to_string();
            let mut fields = vec![(SESSION_ENDED_USER, user.as_bytes())];
            if let Some(sid) = session_id {
                fields.push((SESSION_ENDED_SID, sid.as_bytes()));
            }
            if let Err(e) = ends.publish(&fields).await {
                tracing::warn!(error = %e, "cannot tell other instances a session ended");
            }
        }
    }
}

/// The stream naming ended sessions, `<key_prefix>auth:sessions-ended`.
const SESSIONS_ENDED_STREAM: &str = "auth:sessions-ended";
/// Its fields: the user id, and the session id unless every session ended.
const SESSION_ENDED_USER: &str = "u";
const SESSION_ENDED_SID: &str = "s";

/// The stream naming users whose `/api/me` changed, `<key_prefix>auth:me-changed`.
const ME_CHANGED_STREAM: &str = "auth:me-changed";
/// Its one field: the user id.
const ME_CHANGED_USER: &str = "u";
/// About how many entries each auth broadcast keeps: readers are at most a few
/// seconds behind.
const BROADCAST_MAX_LEN: usize = 10_000;

/// The built-in plugin mounting the auth routes (disable with
/// `plugins.disabled = ["auth"]`).
pub struct AuthPlugin;

crate::register_plugin!(AuthPlugin);

#[async_trait::async_trait]
impl crate::Plugin for AuthPlugin {
    fn name(&self) -> &'static str {
        "auth"
    }

    fn routes(&self, cfg: &mut web::ServiceConfig) {
        handlers::routes(cfg);
        privacy::routes(cfg);
    }

    async fn export_user(
        &self,
        ctx: &AppContext,
        user_id: i64,
    ) -> crate::Result<Option<serde_json::Value>> {
        privacy::export_user(ctx, user_id).await
    }

    async fn erase_user(&self, ctx: &AppContext, user_id: i64) -> crate::Result<()> {
        privacy::erase_user(ctx, user_id).await
    }

    async fn on_start(&self, ctx: &AppContext) -> crate::Result<()> {
        let config = ctx.config().get::<AuthConfig>()?;
        let mut jwt_config = config.jwt.clone();
        if jwt_config.keys.is_empty() && ctx.config().is_development() {
            let secret = dev_secret(std::path::Path::new(&config.dev_key_file))
                .map_err(|e| crate::Error::internal(format!("auth.dev_key_file: {e}")))?;
            jwt_config.algorithm = JwtAlgorithm::HS256;
            jwt_config
                .keys
                .insert("dev".into(), crate::config::Secret::new(secret));
            tracing::warn!(file = %config.dev_key_file, "using a development JWT key");
        }
        match JwtKeys::new(&jwt_config).map_err(crate::Error::internal)? {
            Some(jwt) => {
                let me_changes = match ctx.get::<crate::kv::RedisClient>() {
                    Some(redis) if config.me_cache_ms > 0 => Some(Broadcast::new(
                        &redis,
                        ME_CHANGED_STREAM,
                        BROADCAST_MAX_LEN,
                    )?),
                    _ => None,
                };
                let session_ends = match ctx.get::<crate::kv::RedisClient>() {
                    Some(redis) if config.session_cache_ms > 0 => Some(Broadcast::new(
                        &redis,
                        SESSIONS_ENDED_STREAM,
                        BROADCAST_MAX_LEN,
                    )?),
                    _ => None,
                };
                ctx.insert(Auth {
                    jwt,
                    session_ttl: Duration::from_secs(config.session_ttl_s),
                    me: me_cache::MeCache::new(
                        Duration::from_millis(config.me_cache_ms),
                        config.me_cache_entries,
                    ),
                    me_changes,
                    live: live_sessions::LiveSessions::new(
                        Duration::from_millis(config.session_cache_ms),
                        config.session_cache_entries,
                    ),
                    session_ends,
                })
            }
            None => tracing::warn!("auth.jwt.keys is not configured; /api/auth answers 503"),
        }
        Ok(())
    }

    fn background_tasks(&self, ctx: &AppContext) -> Vec<BackgroundTask> {
        let Some(auth) = ctx.get::<Auth>() else {
            return Vec::new();
        };
        let mut tasks = Vec::new();
        if auth.me_changes.is_some() {
            // Changes made while Redis was away may not have been sent at all.
            tasks.push(broadcast_reader(
                "auth-me-changes",
                auth.clone(),
                |auth| auth.me_changes.as_ref(),
                |auth, entry| {
                    let user_id = user_of(entry, ME_CHANGED_USER)?;
                    auth.me.forget(user_id);
                    Some(())
                },
                |auth| auth.me.clear(),
            ));
        }
        if auth.session_ends.is_some() {
            // Sessions ended while Redis was away may not have been sent.
            tasks.push(broadcast_reader(
                "auth-session-ends",
                auth,
                |auth| auth.session_ends.as_ref(),
                |auth, entry| {
                    let user_id = user_of(entry, SESSION_ENDED_USER)?;
                    let sid = entry
                        .field(SESSION_ENDED_SID)
                        .and_then(|sid| std::str::from_utf8(sid).ok());
                    auth.live.ended(user_id, sid);
                    Some(())
                },
                |auth| auth.live.clear(),
            ));
        }
        tasks
    }
}

/// The task `name` reading one of the auth broadcasts until shutdown: `apply`
/// takes each entry (`None`: malformed, skipped with a warning), `clear` drops
/// what the entries keep up to date after a gap.
fn broadcast_reader(
    name: &'static str,
    auth: std::sync::Arc<Auth>,
    stream: fn(&Auth) -> Option<&Broadcast>,
    apply: fn(&Auth, &Entry) -> Option<()>,
    clear: fn(&Auth),
) -> BackgroundTask {
    BackgroundTask::new(name, move |_ctx, stop| async move {
        let Some(broadcast) = stream(&auth) else {
            return;
        };
        let take = |entry: &Entry| {
            if apply(&auth, entry).is_none() {
                tracing::warn!(task = name, id = %entry.id, "malformed broadcast entry skipped");
            }
        };
        broadcast.run(stop, take, || clear(&auth)).await;
    })
}

/// The user id in `field` of a broadcast entry.
fn user_of(entry: &Entry, field: &str) -> Option<i64> {
    std::str::from_utf8(entry.field(field)?).ok()?.parse().ok()
}

/// A development HS256 secret kept in a file, so tokens survive restarts.
fn dev_secret(path: &std::path::Path) -> std::io::Result<String> {
    if let Ok(secret) = std::fs::read_to_string(path)
        && secret.trim().len() >= 32
    {
        return Ok(secret.trim().to_owned());
    }
    let secret = sessions::random_token(48);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::config::write_secret_file(path, secret.as_bytes())?;
    Ok(secret)
}
