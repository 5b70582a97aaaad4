//! Request and response types, named and shaped as in WeChat's API documentation.

use serde::{Deserialize, Serialize};

/// `GET /sns/jscode2session` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Code2Session {
    /// The user's openid for this mini program.
    pub openid: String,
    /// The session key; never send it to a client or a log.
    pub session_key: String,
    /// Present when the mini program is bound to an open platform account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
}

/// An access token as WeChat issues it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessToken {
    /// The token.
    pub access_token: String,
    /// Seconds it stays valid.
    pub expires_in: i64,
}

/// `POST /cgi-bin/stable_token` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StableTokenRequest {
    /// Always `client_credential`.
    pub grant_type: String,
    /// AppID.
    pub appid: String,
    /// AppSecret.
    pub secret: String,
    /// Force a new token (limited per day by WeChat).
    #[serde(default)]
    pub force_refresh: bool,
}

/// `phone_info` of `getuserphonenumber`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneInfo {
    /// With country code for foreign numbers.
    pub phone_number: String,
    /// Without country code.
    pub pure_phone_number: String,
    /// Country code, e.g. `86`.
    pub country_code: String,
    /// `{appid, timestamp}`.
    pub watermark: Watermark,
}

/// A watermark proving data was issued for one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// Unix seconds.
    pub timestamp: i64,
    /// The app it was issued for.
    pub appid: String,
}

/// `POST /cgi-bin/message/subscribe/send` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscribeMessage {
    /// Recipient openid.
    pub touser: String,
    /// Template id.
    pub template_id: String,
    /// Page opened from the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// Keyword values: `{"thing1": {"value": "..."}}`.
    pub data: serde_json::Map<String, serde_json::Value>,
    /// `developer`, `trial` or `formal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miniprogram_state: Option<String>,
    /// `zh_CN`, `en_US`, `zh_HK` or `zh_TW`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

/// `POST /wxa/msg_sec_check` (version 2) body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MsgSecCheckRequest {
    /// Text to check.
    pub content: String,
    /// Always 2.
    pub version: u8,
    /// 1 profile, 2 comment, 3 forum, 4 social log.
    pub scene: u8,
    /// The author's openid (must have visited within 2 hours).
    pub openid: String,
}

/// `result` of `msg_sec_check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgSecCheckResult {
    /// `pass`, `review` or `risky`.
    pub suggest: String,
    /// 100 normal, 20001 political, 20002 porn, 20003 abuse, 20006 illegal...
    pub label: i64,
}

/// `msg_sec_check` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgSecCheck {
    /// The overall verdict.
    pub result: MsgSecCheckResult,
    /// Identifies the check.
    #[serde(default)]
    pub trace_id: String,
}

/// `POST /wxa/getwxacodeunlimit` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WxaCodeRequest {
    /// Up to 32 visible characters passed to the page.
    pub scene: String,
    /// Page path, without a leading slash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// Whether `page` must exist in the released version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_path: Option<bool>,
    /// `release`, `trial` or `develop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_version: Option<String>,
    /// Image width in pixels, 280–1280.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
}

/// `{"data": [...]}` answers of the template APIs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataList<T> {
    /// The items.
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
}

/// One of the app's subscribe templates (`gettemplate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    /// Template id used to send.
    pub pri_tmpl_id: String,
    /// Title.
    pub title: String,
    /// Keyword layout, e.g. `商品名称:{{thing1.DATA}}\n`.
    pub content: String,
    /// Example text.
    #[serde(default)]
    pub example: String,
    /// 2 one-time, 3 long-term.
    #[serde(rename = "type")]
    pub kind: i64,
}

/// A service category (`getcategory`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    /// Category id.
    pub id: i64,
    /// Name.
    pub name: String,
}

/// `getpubtemplatetitles` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubTemplateTitles {
    /// Total matching templates.
    pub count: i64,
    /// This page.
    pub data: Vec<PubTemplateTitle>,
}

/// A library template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PubTemplateTitle {
    /// Library template id.
    pub tid: i64,
    /// Title.
    pub title: String,
    /// 2 one-time, 3 long-term.
    #[serde(rename = "type")]
    pub kind: i64,
    /// Category id.
    pub category_id: String,
}

/// A library template keyword (`getpubtemplatekeywords`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubTemplateKeyword {
    /// Keyword id, used in `kidList`.
    pub kid: i64,
    /// Name.
    pub name: String,
    /// Example.
    pub example: String,
    /// Value rule: `thing`, `number`, `time`, `phrase`...
    pub rule: String,
}
