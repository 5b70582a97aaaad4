//! Request guards in front of the handlers: CORS, request signatures, rate limits.
//!
//! Middleware order, outermost first:
//!
//! 1. request id (`weapp::http`): every response, even a rejection below, carries one;
//! 2. metrics (`weapp::observe::metrics::track`: counts and times every request, the
//!    rejections below included) and, with the observability layer, tracing;
//! 3. CORS (`actix-cors`, origins from `guard.cors.allowed_origins`): preflights are
//!    answered before any work;
//! 4. signature (`X-WX-*` HMAC, or `X-Tcb-Signature` for cloud callbacks) on the route
//!    prefixes that require it: a forged request costs no database or token work;
//! 5. auth: the `AuthUser` extractor in each protected handler; the rate limiter below
//!    reads the caller from the verified bearer token itself, so it needs no session
//!    lookup;
//! 6. rate limit (GCRA in the key-value store, per IP and per user, per route prefix):
//!    429 with `Retry-After`;
//! 7. the handler.
//!
//! Actix runs `wrap`s in reverse order of registration; `Server` registers them so the
//! order above holds.

mod config;
mod rate_limit;
mod signing;

pub use config::{
    CorsConfig, GuardConfig, Limit, RateLimitRule, SigningConfig, TcbConfig, default_rate_limits,
};
pub use rate_limit::{client_ip, rate_limit};
pub use signing::{canonical_request, sign, verify_signatures};

/// The app context of a request, if the app registered one (guards pass requests
/// through untouched otherwise).
/// The path as the router matches it: percent-decoded where the router decodes
/// (`/api/auth/logi%6e` routes to `/api/auth/login`). Guards keyed on route
/// prefixes decide on this, never on the raw `req.path()`, or an encoded path would
/// reach the same handler around them.
fn routed_path(req: &actix_web::dev::ServiceRequest) -> &str {
    req.match_info().as_str()
}

fn context(req: &actix_web::dev::ServiceRequest) -> Option<crate::AppContext> {
    req.app_data::<actix_web::web::Data<crate::AppContext>>()
        .map(|data| data.get_ref().clone())
}

/// `[guard]` as in force now: read per request, replaced by a configuration reload
/// ([`LiveGuard::replace`]). A service in the app's context.
pub struct LiveGuard(std::sync::RwLock<std::sync::Arc<GuardConfig>>);

impl LiveGuard {
    /// Starts with `config`.
    pub fn new(config: GuardConfig) -> Self {
        LiveGuard(std::sync::RwLock::new(std::sync::Arc::new(config)))
    }

    /// The settings in force now.
    pub fn current(&self) -> std::sync::Arc<GuardConfig> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `config` in force for every request from now on.
    pub fn replace(&self, config: GuardConfig) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(config);
    }
}

/// The live guard settings of `ctx`; a context built without the app builder (a
/// test's, a command's) starts them from its configuration.
pub fn state(ctx: &crate::AppContext) -> std::sync::Arc<LiveGuard> {
    ctx.get_or_insert_with(|| {
        let config = ctx.config().get::<GuardConfig>().unwrap_or_default();
        LiveGuard::new((*config).clone())
    })
}

/// The guard settings in force for `ctx`.
pub fn live(ctx: &crate::AppContext) -> std::sync::Arc<GuardConfig> {
    state(ctx).current()
}

/// The guard settings in force for a request: from the server's app data (the app
/// registers [`state`] there once per worker, so the hot path takes no lookup in the
/// context), else from its context.
fn live_for(
    req: &actix_web::dev::ServiceRequest,
    ctx: &crate::AppContext,
) -> std::sync::Arc<GuardConfig> {
    match req.app_data::<actix_web::web::Data<LiveGuard>>() {
        Some(live) => live.current(),
        None => live(ctx),
    }
}

/// The CORS middleware for `guard.cors`; with no origins configured it allows none.
pub fn cors(ctx: &crate::AppContext) -> actix_cors::Cors {
    let config = live(ctx).cors.clone();
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::CONTENT_TYPE,
        ])
        .allowed_header("x-request-id")
        .allowed_header("x-wx-appid")
        .allowed_header("x-wx-timestamp")
        .allowed_header("x-wx-nonce")
        .allowed_header("x-wx-sign")
        .expose_headers(["x-request-id"])
        .max_age(config.max_age_s as usize);
    // Origins are read per request, so a configuration reload changes them.
    let live = state(ctx);
    cors = cors.allowed_origin_fn(move |origin, _| {
        live.current()
            .cors
            .allowed_origins
            .iter()
            .any(|allowed| allowed.as_bytes() == origin.as_bytes())
    });
    cors
}
