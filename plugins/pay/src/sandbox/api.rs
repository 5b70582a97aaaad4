//! The WeChat Pay API v3 paths the sandbox answers.

use serde_json::{Value, json};
use weapp::AppContext;
use weapp::actix_web::{HttpRequest, HttpResponse, web};

use super::state::{RefundRecord, Trade};
use super::{PaySandbox, sandbox_of};
use crate::merchant::nonce;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v3/pay/transactions/jsapi", web::post().to(jsapi))
        .route(
            "/v3/pay/transactions/out-trade-no/{no}",
            web::get().to(query),
        )
        .route(
            "/v3/pay/transactions/out-trade-no/{no}/close",
            web::post().to(close),
        )
        .route("/v3/refund/domestic/refunds", web::post().to(refund))
        .route(
            "/v3/refund/domestic/refunds/{no}",
            web::get().to(refund_query),
        )
        .route("/v3/certificates", web::get().to(certificates));
}

/// Runs `handle` for an authenticated merchant.
fn serve(
    ctx: &AppContext,
    req: &HttpRequest,
    body: &[u8],
    handle: impl FnOnce(&PaySandbox, &crate::merchant::Merchant) -> HttpResponse,
) -> HttpResponse {
    let sandbox = match sandbox_of(ctx) {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    match sandbox.authenticate(req, body) {
        Ok(merchant) => handle(&sandbox, &merchant),
        Err(answer) => answer,
    }
}

fn param_error(sandbox: &PaySandbox, field: &str) -> HttpResponse {
    sandbox.error(
        400,
        "PARAM_ERROR",
        &format!("输入源“/body/{field}”校验失败"),
    )
}

fn valid_number(no: &str) -> bool {
    (6..=32).contains(&no.len())
        && no
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*'))
}

pub(super) fn now_rfc3339() -> String {
    chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8 exists"))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

async fn jsapi(ctx: AppContext, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    serve(&ctx, &req, &body, |sandbox, merchant| {
        let Ok(order) = serde_json::from_slice::<Value>(&body) else {
            return sandbox.error(400, "PARAM_ERROR", "请求体不是 JSON");
        };
        let text = |field: &str| order[field].as_str().unwrap_or_default().to_owned();
        let (appid, mchid, out_trade_no) = (text("appid"), text("mchid"), text("out_trade_no"));
        let (description, notify_url) = (text("description"), text("notify_url"));
        if mchid != merchant.mchid {
            return sandbox.error(400, "PARAM_ERROR", "mchid 与请求签名的商户号不一致");
        }
        if appid != merchant.appid {
            return sandbox.error(400, "APPID_MCHID_NOT_MATCH", "appid 和 mch_id 不匹配");
        }
        if description.is_empty() || description.chars().count() > 127 {
            return param_error(sandbox, "description");
        }
        if !valid_number(&out_trade_no) {
            return param_error(sandbox, "out_trade_no");
        }
        if !(notify_url.starts_with("https://") || notify_url.starts_with("http://")) {
            return param_error(sandbox, "notify_url");
        }
        let Some(total) = order["amount"]["total"].as_i64().filter(|t| *t > 0) else {
            return param_error(sandbox, "amount/total");
        };
        let openid = order["payer"]["openid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if openid.is_empty() {
            return param_error(sandbox, "payer/openid");
        }
        let mut state = sandbox.lock();
        let key = (mchid.clone(), out_trade_no.clone());
        if let Some(trade) = state.trades.get(&key) {
            return match trade.state.as_str() {
                "SUCCESS" | "REFUND" => {
                    drop(state);
                    sandbox.error(403, "ORDERPAID", "该订单已支付")
                }
                "CLOSED" => {
                    drop(state);
                    sandbox.error(400, "ORDER_CLOSED", "订单已关闭")
                }
                _ if trade.total != total || trade.openid != openid => {
                    drop(state);
                    sandbox.error(403, "OUT_TRADE_NO_USED", "商户订单号重复")
                }
                _ => {
                    let prepay_id = trade.prepay_id.clone();
                    drop(state);
                    sandbox.answer(200, &json!({"prepay_id": prepay_id}))
                }
            };
        }
        let prepay_id = format!(
            "wx{}{:010}",
            chrono::Utc::now().format("%d%H%M%S%3f"),
            state.next()
        );
        state.trades.insert(
            key,
            Trade {
                appid,
                mchid,
                out_trade_no,
                notify_url,
                total,
                openid,
                attach: order["attach"].as_str().map(str::to_owned),
                prepay_id: prepay_id.clone(),
                state: "NOTPAY".into(),
                transaction_id: None,
                success_time: None,
                paid_total: None,
                refunded: 0,
            },
        );
        drop(state);
        sandbox.answer(200, &json!({"prepay_id": prepay_id}))
    })
}

async fn query(
    ctx: AppContext,
    req: HttpRequest,
    no: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    serve(&ctx, &req, &body, |sandbox, merchant| {
        let key = (merchant.mchid.clone(), no.into_inner());
        let found = sandbox.lock().trades.get(&key).map(Trade::transaction);
        match found {
            Some(transaction) => sandbox.answer(200, &transaction),
            None => sandbox.error(404, "ORDER_NOT_EXIST", "订单不存在"),
        }
    })
}

async fn close(
    ctx: AppContext,
    req: HttpRequest,
    no: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    serve(&ctx, &req, &body, |sandbox, merchant| {
        let key = (merchant.mchid.clone(), no.into_inner());
        let mut state = sandbox.lock();
        let Some(trade) = state.trades.get_mut(&key) else {
            drop(state);
            return sandbox.error(404, "ORDER_NOT_EXIST", "订单不存在");
        };
        match trade.state.as_str() {
            "SUCCESS" | "REFUND" => {
                drop(state);
                sandbox.error(400, "ORDERPAID", "订单已支付，不能发起关单")
            }
            _ => {
                trade.state = "CLOSED".into();
                drop(state);
                sandbox.answer_raw(204, String::new())
            }
        }
    })
}

async fn refund(ctx: AppContext, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let outcome = {
        let body = body.clone();
        let mut created = None;
        let answer = serve(&ctx, &req, &body, |sandbox, merchant| {
            let Ok(request) = serde_json::from_slice::<Value>(&body) else {
                return sandbox.error(400, "PARAM_ERROR", "请求体不是 JSON");
            };
            let text = |field: &str| request[field].as_str().unwrap_or_default().to_owned();
            let (out_trade_no, out_refund_no) = (text("out_trade_no"), text("out_refund_no"));
            if !valid_number(&out_refund_no) {
                return param_error(sandbox, "out_refund_no");
            }
            let (Some(amount), Some(total)) = (
                request["amount"]["refund"].as_i64().filter(|a| *a > 0),
                request["amount"]["total"].as_i64(),
            ) else {
                return param_error(sandbox, "amount");
            };
            let mut state = sandbox.lock();
            let refund_key = (merchant.mchid.clone(), out_refund_no.clone());
            if let Some(existing) = state.refunds.get(&refund_key) {
                // Asking again with the same refund number returns that refund.
                let view = existing.view();
                drop(state);
                return sandbox.answer(200, &view);
            }
            let trade_key = (merchant.mchid.clone(), out_trade_no.clone());
            let Some(trade) = state.trades.get_mut(&trade_key) else {
                drop(state);
                return sandbox.error(404, "RESOURCE_NOT_EXISTS", "订单不存在");
            };
            let paid = trade.paid_total.unwrap_or(trade.total);
            if trade.transaction_id.is_none() {
                drop(state);
                return sandbox.error(400, "INVALID_REQUEST", "订单未支付");
            }
            if total != paid || trade.refunded + amount > paid {
                drop(state);
                return sandbox.error(400, "INVALID_REQUEST", "退款金额超过订单可退金额");
            }
            trade.refunded += amount;
            trade.state = "REFUND".into();
            let notify_url = request["notify_url"]
                .as_str()
                .map_or_else(|| trade.notify_url.clone(), str::to_owned);
            let transaction_id = trade.transaction_id.clone().unwrap_or_default();
            let number = state.next();
            let record = RefundRecord {
                mchid: merchant.mchid.clone(),
                refund_id: format!("50300{number:024}"),
                out_refund_no,
                out_trade_no,
                transaction_id,
                notify_url,
                total: paid,
                refund: amount,
                status: "PROCESSING".into(),
                created: now_rfc3339(),
                success_time: None,
            };
            let view = record.view();
            state.refunds.insert(refund_key.clone(), record);
            drop(state);
            created = Some(refund_key);
            sandbox.answer(200, &view)
        });
        (answer, created)
    };
    let (answer, created) = outcome;
    if let (Some(key), Ok(sandbox)) = (created, sandbox_of(&ctx)) {
        // Refunds complete a moment later, then WeChat Pay notifies.
        let sandbox = (*sandbox).clone();
        tokio::spawn(async move { sandbox.complete_refund(&key, "SUCCESS").await });
    }
    answer
}

async fn refund_query(
    ctx: AppContext,
    req: HttpRequest,
    no: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    serve(&ctx, &req, &body, |sandbox, merchant| {
        let key = (merchant.mchid.clone(), no.into_inner());
        let found = sandbox.lock().refunds.get(&key).map(RefundRecord::view);
        match found {
            Some(view) => sandbox.answer(200, &view),
            None => sandbox.error(404, "RESOURCE_NOT_EXISTS", "退款单不存在"),
        }
    })
}

async fn certificates(ctx: AppContext, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    serve(&ctx, &req, &body, |sandbox, merchant| {
        let inner = &sandbox.inner;
        let mut issued = vec![(&inner.certificate_a, crate::samples::PLATFORM_A_CERT_PEM)];
        // Certificate B exists from the first rotation to it on.
        if sandbox.lock().issued_b {
            issued.push((&inner.certificate_b, crate::samples::PLATFORM_B_CERT_PEM));
        }
        let mut data = Vec::new();
        for (certificate, pem) in issued {
            let nonce: String = nonce().chars().take(12).collect();
            let Ok(ciphertext) =
                merchant
                    .apiv3_key()
                    .encrypt("certificate", &nonce, pem.as_bytes())
            else {
                return sandbox.error(500, "SYSTEM_ERROR", "系统错误");
            };
            let time = |s: i64| {
                chrono::DateTime::from_timestamp(s, 0)
                    .unwrap_or_default()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            };
            data.push(json!({
                "serial_no": certificate.serial_no,
                "effective_time": time(certificate.not_before),
                "expire_time": time(certificate.not_after),
                "encrypt_certificate": {
                    "algorithm": "AEAD_AES_256_GCM",
                    "nonce": nonce,
                    "associated_data": "certificate",
                    "ciphertext": ciphertext
                }
            }));
        }
        sandbox.answer(200, &json!({"data": data}))
    })
}
