//! Writes payment notifications as the pay sandbox would send them, one per line,
//! for the load script `tests/load/pay-notify.sh`:
//! `timestamp<TAB>nonce<TAB>signature<TAB>serial<TAB>body`.
//!
//! Usage: `signed_notifications <appid> <mchid> <openid> <total_fen> <first_order_id>
//! <count>`; order ids `first..first+count` with the default `out_trade_no` prefix.
//! Signed with the sandbox's sample platform key and encrypted with the sample APIv3
//! key, so only an app on the samples (development, sandbox on) accepts them.

use std::io::Write;

use weapp::crypto::wechatpay::{self, ApiV3Key, MerchantKey};
use weapp_pay::samples;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [appid, mchid, openid, total, first, count] = args.as_slice() else {
        eprintln!(
            "usage: signed_notifications <appid> <mchid> <openid> <total_fen> <first_order_id> <count>"
        );
        std::process::exit(2);
    };
    let (total, first, count): (i64, i64, i64) = (
        total.parse().expect("total_fen"),
        first.parse().expect("first_order_id"),
        count.parse().expect("count"),
    );
    let key = MerchantKey::from_pem(samples::PLATFORM_A_KEY_PEM).expect("sample key");
    let apiv3 = ApiV3Key::new(samples::APIV3_KEY.as_bytes()).expect("sample APIv3 key");
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for order_id in first..first + count {
        let resource = serde_json::json!({
            "appid": appid, "mchid": mchid,
            "out_trade_no": format!("wa{order_id:010}"),
            "transaction_id": format!("4200000000{order_id:018}"),
            "trade_type": "JSAPI", "trade_state": "SUCCESS",
            "success_time": "2026-11-30T10:00:00+08:00",
            "payer": {"openid": openid},
            "amount": {"total": total, "payer_total": total, "currency": "CNY"}
        });
        let gcm_nonce = format!("{:012}", order_id % 1_000_000_000_000);
        let ciphertext = apiv3
            .encrypt("transaction", &gcm_nonce, resource.to_string().as_bytes())
            .expect("encrypts");
        let body = serde_json::json!({
            "id": format!("EV-{order_id}"),
            "create_time": "2026-11-30T10:00:00+08:00",
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": {
                "original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": ciphertext, "associated_data": "transaction", "nonce": gcm_nonce
            }
        })
        .to_string();
        let nonce = format!("N{order_id:031}");
        let signature = key.sign(&wechatpay::response_message(
            &timestamp,
            &nonce,
            body.as_bytes(),
        ));
        writeln!(
            out,
            "{timestamp}\t{nonce}\t{signature}\t{}\t{body}",
            samples::PUBLIC_KEY_ID
        )
        .expect("stdout");
    }
}
