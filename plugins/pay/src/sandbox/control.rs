//! `/__sandbox/pay/…`: drive the pay sandbox from tests and demos.

use serde::Deserialize;
use serde_json::json;
use weapp::AppContext;
use weapp::actix_web::{HttpResponse, web};

use super::api::now_rfc3339;
use super::sandbox_of;
use super::state::{DeliveryFaults, Pending, Signer};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/__sandbox/pay/pay", web::post().to(pay))
        .route("/__sandbox/pay/cancel", web::post().to(cancel))
        .route("/__sandbox/pay/faults", web::post().to(set_faults))
        .route("/__sandbox/pay/faults", web::delete().to(clear_faults))
        .route("/__sandbox/pay/release", web::post().to(release))
        .route("/__sandbox/pay/signer", web::post().to(signer))
        .route("/__sandbox/pay/notifications", web::get().to(notifications))
        .route("/__sandbox/pay/trades", web::get().to(trades));
}

fn bad(message: impl Into<String>) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"code": "invalid_body", "message": message.into()}))
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, HttpResponse> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| bad(e.to_string()))
}

/// Which prepay a control call means: the merchant's `out_trade_no`, or the
/// `prepay_id` a mini program holds (`package: "prepay_id=…"` of `wx.requestPayment`).
fn select(
    out_trade_no: &Option<String>,
    prepay_id: &Option<String>,
) -> Result<Selector, HttpResponse> {
    match (out_trade_no, prepay_id) {
        (Some(number), None) => Ok(Selector::OutTradeNo(number.clone())),
        (None, Some(id)) => Ok(Selector::PrepayId(
            id.trim_start_matches("prepay_id=").to_owned(),
        )),
        _ => Err(bad("give either out_trade_no or prepay_id")),
    }
}

enum Selector {
    OutTradeNo(String),
    PrepayId(String),
}

impl Selector {
    fn matches(&self, trade: &super::state::Trade) -> bool {
        match self {
            Selector::OutTradeNo(number) => trade.out_trade_no == *number,
            Selector::PrepayId(id) => trade.prepay_id == *id,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayRequest {
    out_trade_no: Option<String>,
    /// Instead of `out_trade_no`: what the mini program was handed.
    prepay_id: Option<String>,
    /// Needed only when several merchants have that number.
    mchid: Option<String>,
    /// What the payer pays, if not the prepay's total (to test mismatches).
    amount: Option<i64>,
    /// Who pays, if not the prepay's payer (to test mismatches).
    openid: Option<String>,
}

/// The user pays: the trade becomes `SUCCESS` and the notification goes out.
async fn pay(ctx: AppContext, body: web::Bytes) -> HttpResponse {
    let sandbox = match sandbox_of(&ctx) {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let request: PayRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let selector = match select(&request.out_trade_no, &request.prepay_id) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let pending =
        {
            let mut state = sandbox.lock();
            let number = state.next();
            let Some(trade) = state.trades.values_mut().find(|t| {
                selector.matches(t) && request.mchid.as_ref().is_none_or(|m| *m == t.mchid)
            }) else {
                return HttpResponse::NotFound()
                    .json(json!({"code": "not_found", "message": "no such prepay"}));
            };
            if trade.state != "NOTPAY" {
                return HttpResponse::Conflict().json(json!({
                    "code": "not_payable", "message": format!("the trade is {}", trade.state)
                }));
            }
            trade.state = "SUCCESS".into();
            trade.transaction_id = Some(format!(
                "42000{}{number:015}",
                chrono::Utc::now().format("%Y%m%d")
            ));
            trade.success_time = Some(now_rfc3339());
            trade.paid_total = request.amount;
            if let Some(openid) = request.openid {
                trade.openid = openid;
            }
            Pending {
                url: trade.notify_url.clone(),
                mchid: trade.mchid.clone(),
                event_type: "TRANSACTION.SUCCESS".into(),
                out_trade_no: trade.out_trade_no.clone(),
                resource: trade.transaction(),
            }
        };
    let transaction = pending.resource.clone();
    let delayed = sandbox.lock().faults.delay_ms > 0;
    let sandbox = (*sandbox).clone();
    if delayed {
        tokio::spawn(async move { sandbox.notify(pending).await });
    } else {
        // Answered once the notification was delivered (or lost, or held), so a
        // script or test sees its effect at once; with `delay_ms` it comes later.
        sandbox.notify(pending).await;
    }
    HttpResponse::Ok().json(transaction)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelRequest {
    out_trade_no: Option<String>,
    prepay_id: Option<String>,
}

/// The user closes the payment sheet: nothing is paid and nothing is notified.
async fn cancel(ctx: AppContext, body: web::Bytes) -> HttpResponse {
    let sandbox = match sandbox_of(&ctx) {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let request: CancelRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let selector = match select(&request.out_trade_no, &request.prepay_id) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let known = sandbox.lock().trades.values().any(|t| selector.matches(t));
    if !known {
        return HttpResponse::NotFound()
            .json(json!({"code": "not_found", "message": "no such prepay"}));
    }
    HttpResponse::Ok().json(json!({"errMsg": "requestPayment:fail cancel"}))
}

async fn set_faults(ctx: AppContext, body: web::Bytes) -> HttpResponse {
    let sandbox = match sandbox_of(&ctx) {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let faults: DeliveryFaults = match parse(&body) {
        Ok(f) => f,
        Err(e) => return e,
    };
    sandbox.lock().faults = faults.clone();
    HttpResponse::Ok().json(faults)
}

async fn clear_faults(ctx: AppContext) -> HttpResponse {
    let sandbox = match sandbox_of(&ctx) {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    sandbox.lock().faults = DeliveryFaults::default();
    HttpResponse::Ok().json(json!({"ok": true}))
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct ReleaseRequest {
    /// `reverse` (default) or `in_order`.
    order: Option<String>,
}

async fn release(ctx: AppContext, body: web::Bytes) -> HttpResponse {
    let sandbox = match sandbox_of(&ctx) {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let request: ReleaseRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let in_order = match request.order.as_deref() {
        None | Some("reverse") => false,
        Some("in_order") => true,
        Some(other) => return bad(format!("order must be reverse or in_order, not {other}")),
    };
    let released = sandbox.release(in_order).await;
    HttpResponse::Ok().json(json!({"released": released}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignerRequest {
    signer: String,
}

async fn signer(ctx: AppContext, body: web::Bytes) -> HttpResponse {
    let sandbox = match sandbox_of(&ctx) {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let request: SignerRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let signer = match request.signer.as_str() {
        "public_key" => Signer::PublicKey,
        "certificate_a" => Signer::CertificateA,
        "certificate_b" => Signer::CertificateB,
        other => {
            return bad(format!(
                "signer must be public_key, certificate_a or certificate_b, not {other}"
            ));
        }
    };
    let mut state = sandbox.lock();
    state.signer = signer;
    state.issued_b |= signer == Signer::CertificateB;
    HttpResponse::Ok().json(json!({"signer": signer}))
}

async fn notifications(ctx: AppContext) -> HttpResponse {
    match sandbox_of(&ctx) {
        Ok(sandbox) => HttpResponse::Ok().json(json!({"deliveries": sandbox.lock().deliveries})),
        Err(answer) => answer,
    }
}

async fn trades(ctx: AppContext) -> HttpResponse {
    match sandbox_of(&ctx) {
        Ok(sandbox) => {
            let state = sandbox.lock();
            let trades: Vec<_> = state.trades.values().map(|t| t.transaction()).collect();
            HttpResponse::Ok().json(json!({"trades": trades}))
        }
        Err(answer) => answer,
    }
}
