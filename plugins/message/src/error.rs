//! Failures of message operations and how clients see them.

use weapp::db::DbError;
use weapp::wechat::WechatError;

/// Why a message was not queued, or an admin operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// A statement failed.
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    /// No connection.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A user's sealed data did not open, or the key ring is missing.
    #[error(transparent)]
    UserData(#[from] weapp::auth::users::UserDataError),
    /// The key ring is missing.
    #[error(transparent)]
    Field(#[from] weapp::crypto::FieldError),
    /// WeChat refused or could not be reached.
    #[error(transparent)]
    Wechat(#[from] WechatError),
    /// The template is not one of the app's.
    #[error("unknown template {0}")]
    UnknownTemplate(String),
    /// `data` breaks the template's keywords or WeChat's value rules.
    #[error("{0}")]
    InvalidData(String),
    /// The user has no one-time subscription left for the template.
    #[error("user {user_id} has no subscription quota for template {template_id}")]
    NoQuota {
        /// The user.
        user_id: i64,
        /// The template.
        template_id: String,
    },
    /// The WeChat client is not configured.
    #[error("{0}")]
    NotConfigured(String),
    /// No such user.
    #[error("unknown user {0}")]
    UnknownUser(i64),
    /// WeChat refused the template to add: its `tid`, keywords or scene.
    #[error("{0}")]
    InvalidTemplateRequest(String),
}

impl From<MessageError> for weapp::Error {
    fn from(e: MessageError) -> Self {
        match e {
            MessageError::Query(e) => DbError::Query(e).into(),
            MessageError::Db(e) => e.into(),
            MessageError::UserData(e) => e.into(),
            MessageError::Field(e) => e.into(),
            MessageError::Wechat(e) => e.into(),
            MessageError::UnknownTemplate(id) => weapp::Error::unprocessable(
                "unknown_template",
                format!("template {id} is not one of the app's templates"),
            ),
            MessageError::InvalidData(message) => {
                weapp::Error::unprocessable("invalid_message_data", message)
            }
            e @ MessageError::NoQuota { .. } => {
                weapp::Error::conflict("no_subscription_quota", e.to_string())
            }
            MessageError::NotConfigured(message) => {
                weapp::Error::unavailable("wechat_not_configured", message)
            }
            MessageError::UnknownUser(id) => {
                weapp::Error::not_found(format!("user {id} not found"))
            }
            MessageError::InvalidTemplateRequest(message) => {
                weapp::Error::bad_request("invalid_template_request", message)
            }
        }
    }
}
