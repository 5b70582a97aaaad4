//! Request signatures: `X-WX-*` headers from the mini program, and `X-Tcb-Signature`
//! on cloud-development callbacks.
//!
//! The mini program signs, with a secret shipped for its appid:
//!
//! ```text
//! canonical = METHOD + "\n" + PATH + "?" + sorted query + "\n" + timestamp + "\n"
//!           + nonce + "\n" + hex(sha256(body))
//! X-WX-SIGN = hex(hmac_sha256(secret, canonical))
//! ```
//!
//! ```js
//! // In the mini program (crypto-js):
//! const query = Object.keys(q).sort().map(k => `${k}=${q[k]}`).join('&')
//! const canonical = [method, `${path}?${query}`, ts, nonce, CryptoJS.SHA256(body).toString()].join('\n')
//! const sign = CryptoJS.HmacSHA256(canonical, secret).toString()
//! wx.request({ url, method, data: body, header: {
//!   'X-WX-APPID': appid, 'X-WX-TIMESTAMP': ts, 'X-WX-NONCE': nonce, 'X-WX-SIGN': sign } })
//! ```
//!
//! Timestamps outside `guard.signing.max_skew_s` are refused, and each nonce is accepted
//! once within that window (remembered in the key-value store).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::{AppContext, Error};
use weapp_crypto::hex;

/// The string a request signature covers.
pub fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> String {
    let mut pairs: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    pairs.sort_unstable();
    format!(
        "{method}\n{path}?{}\n{timestamp}\n{nonce}\n{}",
        pairs.join("&"),
        hex(&Sha256::digest(body))
    )
}

/// Hex HMAC-SHA256 of `message` under `secret`.
pub fn sign(secret: &[u8], message: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(message);
    hex(&mac.finalize().into_bytes())
}

/// Constant-time check of a hex signature.
fn verify(secret: &[u8], message: &[u8], signature: &str) -> bool {
    let Ok(expected) = (0..signature.len())
        .step_by(2)
        .map(|i| {
            signature
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(())
        })
        .collect::<Result<Vec<u8>, ()>>()
    else {
        return false;
    };
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(message);
    mac.verify_slice(&expected).is_ok()
}

fn rejected(code: &'static str, message: &str) -> Error {
    Error::http(StatusCode::UNAUTHORIZED, code, message)
}

fn header<'a>(req: &'a ServiceRequest, name: &str) -> Result<&'a str, Error> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            rejected(
                "missing_signature",
                &format!("the {name} header is required"),
            )
        })
}

/// Checks the timestamp window and claims the nonce once within it.
async fn fresh(
    ctx: &AppContext,
    scope: &str,
    timestamp: &str,
    nonce: &str,
    max_skew_s: u64,
) -> Result<(), Error> {
    use crate::kv::once::{Refusal, take_once};
    let scope = format!("guard:nonce:{scope}");
    match take_once(ctx.kv(), &scope, timestamp, &[nonce], max_skew_s).await? {
        Ok(_) => Ok(()),
        Err(Refusal::BadTimestamp) => Err(rejected(
            "stale_timestamp",
            "the timestamp is not unix seconds",
        )),
        Err(Refusal::OutsideWindow) => Err(rejected(
            "stale_timestamp",
            "the timestamp is outside the accepted window",
        )),
        Err(Refusal::NonceTooLong) => Err(rejected(
            "invalid_nonce",
            "the nonce is longer than 64 characters",
        )),
        Err(Refusal::Replayed) => Err(rejected("replayed_nonce", "this nonce was already used")),
    }
}

/// Middleware: requests under the configured prefixes must be signed.
pub async fn verify_signatures(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(ctx) = super::context(&req) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let guard = super::live_for(&req, &ctx);
    // Which guards apply is decided on the routed path; the signature covers the
    // path as the client sent it.
    let routed = super::routed_path(&req).to_owned();
    let path = req.path().to_owned();
    let signed = guard
        .signing
        .prefixes
        .iter()
        .any(|p| routed.starts_with(p.as_str()));
    let tcb = guard
        .tcb
        .prefixes
        .iter()
        .any(|p| routed.starts_with(p.as_str()));
    if !signed && !tcb {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let body = req.extract::<web::Bytes>().await?;
    if signed {
        let appid = header(&req, "x-wx-appid")?.to_owned();
        let timestamp = header(&req, "x-wx-timestamp")?.to_owned();
        let nonce = header(&req, "x-wx-nonce")?.to_owned();
        let signature = header(&req, "x-wx-sign")?.to_owned();
        let secret = guard
            .signing
            .secrets
            .get(&appid)
            .ok_or_else(|| rejected("invalid_signature", "unknown X-WX-APPID"))?;
        let canonical = canonical_request(
            req.method().as_str(),
            &path,
            req.query_string(),
            &timestamp,
            &nonce,
            &body,
        );
        if !verify(secret.expose().as_bytes(), canonical.as_bytes(), &signature) {
            return Err(rejected("invalid_signature", "X-WX-SIGN does not match").into());
        }
        fresh(&ctx, &appid, &timestamp, &nonce, guard.signing.max_skew_s).await?;
    }
    if tcb {
        let timestamp = header(&req, "x-tcb-timestamp")?.to_owned();
        let signature = header(&req, "x-tcb-signature")?.to_owned();
        let mut message = timestamp.clone().into_bytes();
        message.extend_from_slice(&body);
        if !verify(guard.tcb.secret.expose().as_bytes(), &message, &signature) {
            return Err(rejected("invalid_signature", "X-Tcb-Signature does not match").into());
        }
        // The nonce is the signature's value, not its spelling: the same signature
        // in upper case must not pass as a new one.
        fresh(
            &ctx,
            "tcb",
            &timestamp,
            &signature.to_ascii_lowercase(),
            guard.signing.max_skew_s,
        )
        .await?;
    }
    req.set_payload(Payload::from(body));
    Ok(next.call(req).await?.map_into_boxed_body())
}
