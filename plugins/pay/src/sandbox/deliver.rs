//! Sending notifications as WeChat Pay does: the resource encrypted with the
//! merchant's APIv3 key, the envelope signed with the platform key, posted to the
//! `notify_url` — with the faults tests ask for.

use std::time::Duration;

use serde_json::{Value, json};
use weapp::crypto::wechatpay::ApiV3Key;

use super::PaySandbox;
use super::api::now_rfc3339;
use super::state::{Delivery, Pending};
use crate::merchant::{Merchant, nonce};

/// A notification's body as WeChat Pay writes it: `resource` encrypted with `key`.
fn envelope(key: &ApiV3Key, id: &str, event_type: &str, resource: &Value) -> Option<String> {
    let original_type = if event_type.starts_with("REFUND.") {
        "refund"
    } else {
        "transaction"
    };
    let gcm_nonce: String = nonce().chars().take(12).collect();
    let ciphertext = key
        .encrypt(original_type, &gcm_nonce, resource.to_string().as_bytes())
        .ok()?;
    let summary = if original_type == "refund" {
        "退款状态变更"
    } else {
        "支付成功"
    };
    Some(
        json!({
            "id": id,
            "create_time": now_rfc3339(),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                "original_type": original_type,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": ciphertext,
                "associated_data": original_type,
                "nonce": gcm_nonce
            }
        })
        .to_string(),
    )
}

/// A notification for `merchant` as the sandbox would send it now, signed with
/// the sandbox's public-key identity (`samples::PUBLIC_KEY_ID`): `(headers, body)`,
/// for tests that post notifications themselves (many at once, say). The merchant
/// must trust that key, as every merchant on the samples does.
pub fn signed_notification(
    merchant: &Merchant,
    event_type: &str,
    resource: &Value,
) -> (Vec<(&'static str, String)>, String) {
    let id = uuid::Uuid::new_v4().to_string();
    let body = envelope(merchant.apiv3_key(), &id, event_type, resource)
        .expect("a 12-byte nonce and a 32-byte key always encrypt");
    let key = crate::merchant::sample_key(crate::samples::PLATFORM_A_KEY_PEM)
        .expect("the sample key parses");
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let nonce = nonce();
    let message = weapp::crypto::wechatpay::response_message(&timestamp, &nonce, body.as_bytes());
    let headers = vec![
        ("Wechatpay-Timestamp", timestamp),
        ("Wechatpay-Nonce", nonce),
        ("Wechatpay-Signature", key.sign(&message)),
        ("Wechatpay-Serial", crate::samples::PUBLIC_KEY_ID.to_owned()),
        (
            "Wechatpay-Signature-Type",
            "WECHATPAY2-SHA256-RSA2048".to_owned(),
        ),
    ];
    (headers, body)
}

impl PaySandbox {
    /// Marks a refund done with `status` and notifies.
    pub(super) async fn complete_refund(&self, key: &(String, String), status: &str) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let pending = {
            let mut state = self.lock();
            let Some(refund) = state.refunds.get_mut(key) else {
                return;
            };
            refund.status = status.to_owned();
            if status == "SUCCESS" {
                refund.success_time = Some(now_rfc3339());
            }
            Pending {
                url: refund.notify_url.clone(),
                mchid: refund.mchid.clone(),
                event_type: format!("REFUND.{status}"),
                out_trade_no: refund.out_trade_no.clone(),
                resource: refund.notice(),
            }
        };
        self.notify(pending).await;
    }

    /// Delivers (or holds, or loses) one notification under the current faults.
    pub(super) async fn notify(&self, pending: Pending) {
        let faults = {
            let mut state = self.lock();
            if state.faults.hold {
                state.held.push(pending);
                return;
            }
            state.faults.clone()
        };
        if faults.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(faults.delay_ms)).await;
        }
        if faults.lost {
            self.record(&pending, "lost".into(), None, "never sent".into());
            return;
        }
        let mut resource = pending.resource.clone();
        if let Some(mchid) = &faults.other_mchid {
            resource["mchid"] = mchid.clone().into();
        }
        let id = uuid::Uuid::new_v4().to_string();
        let Some(body) = self.envelope(&id, &pending, &resource, faults.wrong_apiv3_key) else {
            return;
        };
        let copies = faults.copies.max(1);
        let sends = (0..copies).map(|_| self.post(&id, &pending, &body, &faults));
        futures_util::future::join_all(sends).await;
    }

    /// Sends the held notifications, last first unless `in_order`.
    pub(super) async fn release(&self, in_order: bool) -> usize {
        let mut held = {
            let mut state = self.lock();
            state.faults.hold = false;
            std::mem::take(&mut state.held)
        };
        if !in_order {
            held.reverse();
        }
        let count = held.len();
        for pending in held {
            self.notify(pending).await;
        }
        count
    }

    fn envelope(
        &self,
        id: &str,
        pending: &Pending,
        resource: &Value,
        wrong_key: bool,
    ) -> Option<String> {
        let merchant = self.merchant(&pending.mchid)?;
        if wrong_key {
            let other = ApiV3Key::new(b"not-the-merchants-apiv3-key-0000").ok()?;
            envelope(&other, id, &pending.event_type, resource)
        } else {
            envelope(merchant.apiv3_key(), id, &pending.event_type, resource)
        }
    }

    async fn post(
        &self,
        id: &str,
        pending: &Pending,
        body: &str,
        faults: &super::state::DeliveryFaults,
    ) {
        let url = self.target(&pending.url);
        let mut request = self
            .inner
            .http
            .post(&url)
            .header("Content-Type", "application/json")
            .body(body.to_owned());
        for (name, value) in self.signature_headers(
            body.as_bytes(),
            faults.timestamp_offset_s,
            faults.bad_signature,
        ) {
            request = request.header(name, value);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let answer = response.text().await.unwrap_or_default();
                self.record(pending, id.to_owned(), Some(status), answer);
            }
            Err(e) => self.record(pending, id.to_owned(), None, e.without_url().to_string()),
        }
    }

    /// The embedded app's address with the `notify_url`'s path (WeChat Pay would
    /// reach the public address; offline, the app is here), or the `notify_url`
    /// itself when it is an `http://` address on this machine's loopback (another
    /// process using this sandbox: the multi-instance tests' shop nodes). Nothing
    /// else is ever called, so the sandbox cannot be pointed at other hosts.
    fn target(&self, notify_url: &str) -> String {
        let Some(rest) = notify_url.strip_prefix("http://") else {
            return self.embedded(notify_url);
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let host = authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host);
        let loopback = host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
        match loopback && !authority.contains('@') {
            true => notify_url.to_owned(),
            false => self.embedded(notify_url),
        }
    }

    fn embedded(&self, notify_url: &str) -> String {
        let path = notify_url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .unwrap_or("/");
        format!("{}{path}", self.inner.app_base_url)
    }

    fn record(&self, pending: &Pending, id: String, status: Option<u16>, answer: String) {
        self.lock().deliveries.push(Delivery {
            notification_id: id,
            event_type: pending.event_type.clone(),
            out_trade_no: pending.out_trade_no.clone(),
            status,
            answer: answer.chars().take(500).collect(),
        });
    }
}
