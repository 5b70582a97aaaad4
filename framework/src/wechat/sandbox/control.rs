//! `/__sandbox/...`: drive the sandbox from tests and demos.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::state::{Code, Fault, SandboxUser, random_session_key, random_token};
use super::{Sandbox, json_body, ok_json};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/__sandbox/login", web::post().to(login))
        .route("/__sandbox/phone-code", web::post().to(phone_code))
        .route("/__sandbox/subscriptions", web::post().to(subscriptions))
        .route("/__sandbox/messages", web::get().to(messages))
        .route("/__sandbox/faults", web::post().to(add_fault))
        .route("/__sandbox/faults", web::delete().to(clear_faults))
        .route("/__sandbox/stats", web::get().to(stats))
        .route("/__sandbox/traceparents", web::get().to(traceparents))
        .route("/__sandbox/stats", web::delete().to(reset_stats))
        .route("/__sandbox/clock", web::post().to(clock));
}

fn bad(message: String) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"code": "invalid_body", "message": message}))
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, HttpResponse> {
    let value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        json_body(body)?
    };
    serde_json::from_value(value).map_err(|e| bad(e.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    /// Mint this many codes for the user at once (load tests); answers `codes`.
    count: Option<u32>,
    openid: Option<String>,
    unionid: Option<String>,
    session_key: Option<String>,
    phone: Option<String>,
}

/// Simulates `wx.login`: creates or updates the user and issues a single-use code.
async fn login(sb: web::Data<Sandbox>, body: web::Bytes) -> HttpResponse {
    let request: LoginRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let mut state = sb.lock();
    let openid = request
        .openid
        .unwrap_or_else(|| format!("o{}", random_token(27)));
    let user = state
        .users
        .entry(openid.clone())
        .or_insert_with(|| SandboxUser {
            openid: openid.clone(),
            unionid: format!("u{}", random_token(27)),
            session_key: random_session_key(),
            phone: None,
        });
    if let Some(unionid) = request.unionid {
        user.unionid = unionid;
    }
    if let Some(phone) = request.phone {
        user.phone = Some(phone);
    }
    // A new login rotates the session key unless the fixture pins one, as on WeChat.
    user.session_key = request.session_key.unwrap_or_else(random_session_key);
    let session_key = user.session_key.clone();
    let issued_at = state.now();
    let mut mint = || {
        let code = random_token(32);
        let entry = Code {
            openid: openid.clone(),
            issued_at,
            used: false,
        };
        state.codes.insert(code.clone(), entry);
        code
    };
    match request.count {
        Some(count) => {
            let codes: Vec<String> = (0..count.min(1_000_000)).map(|_| mint()).collect();
            ok_json(json!({"codes": codes, "openid": openid, "session_key": session_key}))
        }
        None => {
            let code = mint();
            ok_json(json!({"code": code, "openid": openid, "session_key": session_key}))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneCodeRequest {
    openid: String,
}

/// Simulates the `getPhoneNumber` button: a single-use code for the user's phone.
async fn phone_code(sb: web::Data<Sandbox>, body: web::Bytes) -> HttpResponse {
    let request: PhoneCodeRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let mut state = sb.lock();
    if state
        .users
        .get(&request.openid)
        .is_none_or(|u| u.phone.is_none())
    {
        return bad(format!("user {} has no phone number", request.openid));
    }
    let code = random_token(32);
    let issued_at = state.now();
    state.phone_codes.insert(
        code.clone(),
        Code {
            openid: request.openid,
            issued_at,
            used: false,
        },
    );
    ok_json(json!({"code": code}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionRequest {
    openid: String,
    template_id: String,
    #[serde(default = "one")]
    count: u32,
}

fn one() -> u32 {
    1
}

/// Grants one-time subscription quota, as when a user accepts `requestSubscribeMessage`.
async fn subscriptions(sb: web::Data<Sandbox>, body: web::Bytes) -> HttpResponse {
    let request: SubscriptionRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let mut state = sb.lock();
    let quota = state
        .quotas
        .entry((request.openid, request.template_id))
        .or_default();
    *quota += request.count;
    ok_json(json!({"quota": *quota}))
}

async fn messages(sb: web::Data<Sandbox>) -> HttpResponse {
    ok_json(json!({"messages": sb.lock().messages}))
}

async fn add_fault(sb: web::Data<Sandbox>, body: web::Bytes) -> HttpResponse {
    let fault: Fault = match parse(&body) {
        Ok(f) => f,
        Err(e) => return e,
    };
    if !fault.endpoint.starts_with('/') {
        return bad("endpoint must be a path like /sns/jscode2session".into());
    }
    sb.lock().faults.insert(fault.endpoint.clone(), fault);
    ok_json(json!({"ok": true}))
}

async fn clear_faults(sb: web::Data<Sandbox>) -> HttpResponse {
    sb.lock().faults.clear();
    ok_json(json!({"ok": true}))
}

async fn stats(sb: web::Data<Sandbox>) -> HttpResponse {
    ok_json(json!(sb.lock().stats))
}

async fn traceparents(sb: web::Data<Sandbox>) -> HttpResponse {
    let state = sb.lock();
    ok_json(json!({"traceparent": state.traceparents, "baggage": state.baggage}))
}

async fn reset_stats(sb: web::Data<Sandbox>) -> HttpResponse {
    sb.lock().stats.clear();
    ok_json(json!({"ok": true}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockRequest {
    advance_s: i64,
}

async fn clock(sb: web::Data<Sandbox>, body: web::Bytes) -> HttpResponse {
    let request: ClockRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let mut state = sb.lock();
    state.clock_offset_s += request.advance_s;
    ok_json(json!({"now": state.now()}))
}
