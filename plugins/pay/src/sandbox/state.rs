//! What the pay sandbox remembers: prepays, transactions, refunds, deliveries.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

/// Which sandbox key pair signs, and under which serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Signer {
    /// Key A as the WeChat Pay public key (`PUB_KEY_ID_…`).
    PublicKey,
    /// Key A under its certificate's serial.
    CertificateA,
    /// Key B under its certificate's serial (after a rotation).
    CertificateB,
}

/// A JSAPI prepay and what became of it.
#[derive(Debug, Clone)]
pub(super) struct Trade {
    pub(super) appid: String,
    pub(super) mchid: String,
    pub(super) out_trade_no: String,
    pub(super) notify_url: String,
    pub(super) total: i64,
    pub(super) openid: String,
    pub(super) attach: Option<String>,
    pub(super) prepay_id: String,
    /// `NOTPAY`, `SUCCESS`, `CLOSED`, `REFUND`, `PAYERROR`.
    pub(super) state: String,
    pub(super) transaction_id: Option<String>,
    pub(super) success_time: Option<String>,
    /// What the payer actually paid (tests may make it differ).
    pub(super) paid_total: Option<i64>,
    pub(super) refunded: i64,
}

impl Trade {
    /// The transaction as WeChat Pay shows it (query and notification).
    pub(super) fn transaction(&self) -> Value {
        let mut value = serde_json::json!({
            "appid": self.appid,
            "mchid": self.mchid,
            "out_trade_no": self.out_trade_no,
            "trade_type": "JSAPI",
            "trade_state": self.state,
            "trade_state_desc": state_desc(&self.state),
            "payer": {"openid": self.openid},
        });
        if let Some(id) = &self.transaction_id {
            value["transaction_id"] = id.clone().into();
            value["bank_type"] = "OTHERS".into();
            value["success_time"] = self.success_time.clone().into();
            let paid = self.paid_total.unwrap_or(self.total);
            value["amount"] = serde_json::json!({
                "total": paid, "payer_total": paid, "currency": "CNY", "payer_currency": "CNY"
            });
        }
        if let Some(attach) = &self.attach {
            value["attach"] = attach.clone().into();
        }
        value
    }
}

fn state_desc(state: &str) -> &'static str {
    match state {
        "SUCCESS" => "支付成功",
        "REFUND" => "转入退款",
        "CLOSED" => "已关闭",
        "PAYERROR" => "支付失败",
        _ => "未支付",
    }
}

/// A refund.
#[derive(Debug, Clone)]
pub(super) struct RefundRecord {
    pub(super) mchid: String,
    pub(super) refund_id: String,
    pub(super) out_refund_no: String,
    pub(super) out_trade_no: String,
    pub(super) transaction_id: String,
    pub(super) notify_url: String,
    pub(super) total: i64,
    pub(super) refund: i64,
    /// `PROCESSING`, `SUCCESS`, `ABNORMAL`, `CLOSED`.
    pub(super) status: String,
    pub(super) created: String,
    pub(super) success_time: Option<String>,
}

impl RefundRecord {
    /// The refund as the refund APIs show it.
    pub(super) fn view(&self) -> Value {
        serde_json::json!({
            "refund_id": self.refund_id,
            "out_refund_no": self.out_refund_no,
            "transaction_id": self.transaction_id,
            "out_trade_no": self.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "success_time": self.success_time,
            "create_time": self.created,
            "status": self.status,
            "amount": {
                "total": self.total, "refund": self.refund,
                "payer_total": self.total, "payer_refund": self.refund,
                "settlement_refund": self.refund, "settlement_total": self.total,
                "discount_refund": 0, "currency": "CNY"
            }
        })
    }

    /// The refund notification's resource.
    pub(super) fn notice(&self) -> Value {
        serde_json::json!({
            "mchid": self.mchid,
            "out_trade_no": self.out_trade_no,
            "transaction_id": self.transaction_id,
            "out_refund_no": self.out_refund_no,
            "refund_id": self.refund_id,
            "refund_status": self.status,
            "success_time": self.success_time,
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": self.total, "refund": self.refund,
                "payer_total": self.total, "payer_refund": self.refund
            }
        })
    }
}

/// One attempt to deliver a notification, for tests to read.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Delivery {
    pub(super) notification_id: String,
    pub(super) event_type: String,
    pub(super) out_trade_no: String,
    /// The answer's status; `None` if it never arrived (lost, or unreachable).
    pub(super) status: Option<u16>,
    pub(super) answer: String,
}

/// How the next notifications are delivered (`POST /__sandbox/pay/faults`).
#[derive(Debug, Clone, Default, serde::Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct DeliveryFaults {
    /// Send each notification this many times at once (0 and 1: once).
    pub(super) copies: u32,
    /// Wait this long before sending.
    pub(super) delay_ms: u64,
    /// Never send (reconciliation must find the payment).
    pub(super) lost: bool,
    /// Sign with a key WeChat Pay does not have.
    pub(super) bad_signature: bool,
    /// Encrypt with another APIv3 key.
    pub wrong_apiv3_key: bool,
    /// Claim another merchant id inside the resource.
    pub(super) other_mchid: Option<String>,
    /// Shift `Wechatpay-Timestamp` by this many seconds.
    pub(super) timestamp_offset_s: i64,
    /// Keep notifications until `POST /__sandbox/pay/release`.
    pub(super) hold: bool,
}

/// A notification kept back by `hold`.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub(super) url: String,
    pub(super) mchid: String,
    pub(super) event_type: String,
    pub(super) out_trade_no: String,
    pub(super) resource: Value,
}

/// The sandbox's memory.
#[derive(Debug)]
pub(super) struct State {
    pub(super) signer: Signer,
    /// Whether certificate B has been issued (`GET /v3/certificates` lists it).
    pub(super) issued_b: bool,
    pub(super) trades: HashMap<(String, String), Trade>,
    pub(super) refunds: HashMap<(String, String), RefundRecord>,
    pub(super) deliveries: Vec<Delivery>,
    pub(super) faults: DeliveryFaults,
    pub(super) held: Vec<Pending>,
    pub(super) sequence: u64,
}

impl State {
    pub(super) fn new() -> State {
        State {
            signer: Signer::PublicKey,
            issued_b: false,
            trades: HashMap::new(),
            refunds: HashMap::new(),
            deliveries: Vec::new(),
            faults: DeliveryFaults::default(),
            held: Vec::new(),
            sequence: 0,
        }
    }

    /// A fresh number for ids.
    pub(super) fn next(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }
}
