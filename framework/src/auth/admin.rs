//! `AdminCaller`: an operator, authenticated by `X-Admin-Token` against
//! `auth.admin_tokens`. A user's access token never passes.

use std::future::{Ready, ready};

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
        let Ok(auth) = ctx.config().get::<super::AuthConfig>() else {
            return ready(Err(Error::internal("[auth] cannot be read")));
        };
        let caller = given.and_then(|given| {
            auth.admin_tokens
                .iter()
                .find(|(_, token)| token.matches(given))
                .map(|(name, _)| AdminCaller { name: name.clone() })
        });
        ready(caller.ok_or_else(refused))
    }
}
