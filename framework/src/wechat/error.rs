//! WeChat API errors: `errcode` values and transport failures.

use crate::backoff::Transient;

/// Named `errcode` values (see WeChat's global return codes).
pub mod errcode {
    /// System busy; retry later.
    pub const BUSY: i64 = -1;
    /// Invalid credential: the access_token is wrong or was replaced.
    pub const INVALID_CREDENTIAL: i64 = 40001;
    /// Invalid appid.
    pub const INVALID_APPID: i64 = 40013;
    /// Invalid `js_code` (unknown or expired).
    pub const INVALID_CODE: i64 = 40029;
    /// Invalid template id.
    pub const INVALID_TEMPLATE_ID: i64 = 40037;
    /// Invalid AppSecret.
    pub const INVALID_SECRET: i64 = 40125;
    /// `js_code` was already used.
    pub const CODE_USED: i64 = 40163;
    /// High-risk user: WeChat blocks the login.
    pub const HIGH_RISK_USER: i64 = 40226;
    /// Invalid openid.
    pub const INVALID_OPENID: i64 = 40003;
    /// The access_token is missing.
    pub const MISSING_TOKEN: i64 = 41001;
    /// The access_token expired.
    pub const TOKEN_EXPIRED: i64 = 42001;
    /// The user has no subscription for this template (a business outcome).
    pub const NO_SUBSCRIPTION: i64 = 43101;
    /// API call quota reached.
    pub const QUOTA_REACHED: i64 = 45011;
    /// Template data does not match the template's keywords or rules.
    pub const BAD_TEMPLATE_DATA: i64 = 47003;
    /// Content is risky (content security, legacy API versions).
    pub const RISKY_CONTENT: i64 = 87014;
    /// `addTemplate`: no library template has this `tid`.
    pub const UNKNOWN_LIBRARY_TEMPLATE: i64 = 200014;
    /// `addTemplate`: the `kidList` is not valid for the template.
    pub const INVALID_KEYWORD_LIST: i64 = 200020;
    /// `addTemplate`: the `sceneDesc` is not valid.
    pub const INVALID_SCENE_DESC: i64 = 200021;
}

/// A failed WeChat API call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WechatError {
    /// WeChat answered with a non-zero `errcode`.
    #[error("WeChat error {errcode}: {errmsg}")]
    Api {
        /// WeChat's code.
        errcode: i64,
        /// WeChat's message.
        errmsg: String,
    },
    /// WeChat answered with an HTTP error status.
    #[error("WeChat answered HTTP {0}")]
    Status(u16),
    /// No answer in time.
    #[error("WeChat did not answer in time")]
    Timeout,
    /// The connection failed or broke.
    #[error("connection to WeChat failed: {0}")]
    Transport(String),
    /// The answer was not the expected shape (e.g. code2Session without `openid`).
    #[error("unexpected WeChat answer: {0}")]
    Unexpected(String),
}

/// Worth retrying with backoff: busy, 5xx, timeouts and broken connections.
impl Transient for WechatError {
    fn is_transient(&self) -> bool {
        match self {
            WechatError::Api { errcode, .. } => *errcode == errcode::BUSY,
            WechatError::Status(status) => *status >= 500,
            WechatError::Timeout | WechatError::Transport(_) => true,
            WechatError::Unexpected(_) => false,
        }
    }
}

impl WechatError {
    /// WeChat's `errcode`, if it gave one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            WechatError::Api { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }

    /// The access_token was rejected: refresh it and retry once.
    pub fn is_token_rejected(&self) -> bool {
        matches!(
            self.errcode(),
            Some(errcode::INVALID_CREDENTIAL | errcode::TOKEN_EXPIRED)
        )
    }
}

impl From<reqwest::Error> for WechatError {
    fn from(err: reqwest::Error) -> Self {
        if err.is_timeout() {
            WechatError::Timeout
        } else if let Some(status) = err.status() {
            WechatError::Status(status.as_u16())
        } else if err.is_decode() {
            WechatError::Unexpected(err.to_string())
        } else {
            WechatError::Transport(err.without_url().to_string())
        }
    }
}

impl From<WechatError> for crate::Error {
    fn from(err: WechatError) -> Self {
        use actix_web::http::StatusCode;
        match err.errcode() {
            Some(errcode::INVALID_CODE) => crate::Error::http(
                StatusCode::UNAUTHORIZED,
                "invalid_code",
                "the login code is invalid or expired: call wx.login again",
            ),
            Some(errcode::CODE_USED) => crate::Error::http(
                StatusCode::UNAUTHORIZED,
                "code_used",
                "the login code was already used: call wx.login again",
            ),
            Some(errcode::HIGH_RISK_USER) => crate::Error::http(
                StatusCode::FORBIDDEN,
                "high_risk_user",
                "WeChat blocked this login as high risk",
            ),
            _ if err.is_transient() => crate::Error::http(
                StatusCode::BAD_GATEWAY,
                "wechat_unavailable",
                "WeChat is unavailable, try again later",
            ),
            // A user without a subscription is a business outcome, not a failure.
            Some(errcode::NO_SUBSCRIPTION) => crate::Error::conflict(
                "no_subscription",
                "the user has not accepted this subscribe message",
            ),
            _ => {
                tracing::warn!(error = %err, "WeChat call failed");
                crate::Error::http(StatusCode::BAD_GATEWAY, "wechat_error", err.to_string())
            }
        }
    }
}
