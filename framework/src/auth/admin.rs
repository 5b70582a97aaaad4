//! `AdminCaller`: an operator, authenticated by `X-Admin-Token` against
//! `auth.admin_tokens`. A user's access token never passes.

use std::collections::BTreeMap;
use std::future::{Ready, ready};
use std::sync::{Arc, RwLock};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use crate::{AppContext, Error};

/// The header carrying an admin token.
pub const ADMIN_TOKEN_HEADER: &str = "X-Admin-Token";

/// An operator calling an admin route; `name` is the token's key in
/// `auth.admin_tokens`, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCaller {
    /// Which configured token was used.
    pub name: String,
}

/// `auth.admin_tokens` in force: a service in the app's context, replaced by a
/// configuration reload (SIGHUP), so a leaked token is revoked without a restart.
pub struct AdminTokens(RwLock<Arc<BTreeMap<String, crate::config::Secret>>>);

impl AdminTokens {
    /// The tokens of `ctx`, read from its configuration on first use.
    pub fn of(ctx: &AppContext) -> Arc<AdminTokens> {
        ctx.get_or_insert_with(|| {
            let tokens = ctx
                .config()
                .get::<super::AuthConfig>()
                .map(|auth| auth.admin_tokens.clone())
                .unwrap_or_default();
            AdminTokens(RwLock::new(Arc::new(tokens)))
        })
    }

    /// The tokens now.
    pub fn current(&self) -> Arc<BTreeMap<String, crate::config::Secret>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `tokens` in force; returns whether they differ from those before.
    pub fn replace(&self, tokens: BTreeMap<String, crate::config::Secret>) -> bool {
        let mut current = self.0.write().unwrap_or_else(|p| p.into_inner());
        let changed = **current != tokens;
        *current = Arc::new(tokens);
        changed
    }
}

fn refused() -> Error {
    Error::http(
        actix_web::http::StatusCode::UNAUTHORIZED,
        "admin_token_required",
        format!("this route needs a valid {ADMIN_TOKEN_HEADER} header"),
    )
}

impl FromRequest for AdminCaller {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(ctx) = req.app_data::<web::Data<AppContext>>() else {
            return ready(Err(Error::internal("AppContext is not registered")));
        };
        let given = req
            .headers()
            .get(ADMIN_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty());
        let tokens = AdminTokens::of(ctx).current();
        let caller = given.and_then(|given| {
            tokens
                .iter()
                .find(|(_, token)| token.matches(given))
                .map(|(name, _)| AdminCaller { name: name.clone() })
        });
        ready(caller.ok_or_else(refused))
    }
}
