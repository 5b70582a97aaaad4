//! WeChat's message push as the tests send it: a buyer's choice at a subscription
//! prompt, encrypted and signed as WeChat would.

use serde_json::json;
use weapp::wechat::PushCrypto;

/// The path (with its signature query) and body of the push saying that `openid`
/// accepted `template` at a subscription prompt, for an app configured with the
/// push `token` and `aes_key` under `appid`.
pub(crate) fn subscription_accepted(
    (token, aes_key, appid): (&str, &str, &str),
    openid: &str,
    template: &str,
) -> (String, String) {
    let crypto = PushCrypto::new(token, aes_key, appid).expect("valid push keys");
    let push = json!({
        "ToUserName": "gh_shop", "FromUserName": openid, "CreateTime": 1764000000,
        "MsgType": "event", "Event": "subscribe_msg_popup_event",
        "List": [{"TemplateId": template, "SubscribeStatusString": "accept", "PopupScene": "0"}],
    });
    let encrypted = crypto.encrypt(&push.to_string());
    let timestamp = chrono::Utc::now().timestamp();
    let signature = crypto.sign(&timestamp.to_string(), "nonce", &encrypted);
    (
        format!(
            "/wechat/push?msg_signature={signature}&timestamp={timestamp}&nonce=nonce&encrypt_type=aes"
        ),
        json!({"ToUserName": "gh_shop", "Encrypt": encrypted}).to_string(),
    )
}
