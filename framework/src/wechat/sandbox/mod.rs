//! An offline WeChat server API for development and tests.
//!
//! It answers WeChat's real paths with WeChat's JSON shapes and error codes
//! (`/sns/jscode2session`, `/cgi-bin/token`, `/cgi-bin/stable_token`,
//! `/wxa/business/getuserphonenumber`, `/cgi-bin/message/subscribe/send`,
//! `/wxaapi/newtmpl/*`, `/wxa/msg_sec_check`, `/wxa/getwxacodeunlimit`), plus control
//! endpoints under `/__sandbox/`:
//!
//! | endpoint | purpose |
//! | --- | --- |
//! | `POST /__sandbox/login` | simulate `wx.login`: `{openid?, unionid?, session_key?, phone?}` → `{code, openid, session_key}`; with `count`, `{codes: [...]}` (load tests) |
//! | `POST /__sandbox/phone-code` | simulate `getPhoneNumber`: `{openid}` → `{code}` |
//! | `POST /__sandbox/subscriptions` | grant one-time quota: `{openid, template_id, count}` |
//! | `GET /__sandbox/messages` | subscribe messages sent so far |
//! | `POST`/`DELETE /__sandbox/faults` | inject faults per endpoint (errcode, status, latency, dropped connection; for N calls or with a probability) / clear them |
//! | `GET`/`DELETE /__sandbox/stats` | calls per endpoint / reset |
//! | `GET /__sandbox/traceparents` | the last W3C `traceparent` and `baggage` each endpoint received |
//! | `POST /__sandbox/clock` | `{advance_s}`: move the sandbox clock (code and token expiry) |
//!
//! JSON bodies are accepted with or without a `Content-Type`, as WeChat does.

mod api;
mod control;
mod png;
mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use state::State;
pub use state::{Fault, SandboxUser};

/// The sandbox: cheap to clone, shared by every worker.
#[derive(Clone)]
pub struct Sandbox {
    state: Arc<Mutex<State>>,
}

/// What a fault makes an endpoint do.
enum Injected {
    Answer(HttpResponse),
    None,
}

impl Sandbox {
    /// A sandbox for one app, accepting `appid` and `secret`.
    pub fn new(appid: &str, secret: &str, risky_words: Vec<String>) -> Self {
        Sandbox {
            state: Arc::new(Mutex::new(State::new(appid, secret, risky_words))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a call, remembers its trace context, and applies any fault for
    /// `endpoint`.
    async fn enter(
        &self,
        endpoint: &str,
        traceparent: Option<&str>,
        baggage: Option<&str>,
    ) -> Injected {
        let fault = {
            let mut state = self.lock();
            *state.stats.entry(endpoint.to_owned()).or_default() += 1;
            if let Some(traceparent) = traceparent {
                state
                    .traceparents
                    .insert(endpoint.to_owned(), traceparent.to_owned());
            }
            if let Some(baggage) = baggage {
                state
                    .baggage
                    .insert(endpoint.to_owned(), baggage.to_owned());
            }
            let Some(fault) = state.faults.get_mut(endpoint) else {
                return Injected::None;
            };
            if let Some(p) = fault.probability {
                let mut byte = [0u8; 2];
                let _ = getrandom::fill(&mut byte);
                if f64::from(u16::from_le_bytes(byte)) / 65536.0 >= p {
                    return Injected::None;
                }
            }
            let fault = fault.clone();
            if let Some(left) = state
                .faults
                .get_mut(endpoint)
                .and_then(|f| f.count.as_mut())
            {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    state.faults.remove(endpoint);
                }
            }
            fault
        };
        if fault.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(fault.latency_ms)).await;
        }
        if fault.drop {
            return Injected::Answer(dropped_connection());
        }
        if let Some(status) = fault.status {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            return Injected::Answer(HttpResponse::build(status).body("sandbox fault"));
        }
        if let Some(errcode) = fault.errcode {
            let errmsg = fault.errmsg.unwrap_or_else(|| "sandbox fault".into());
            return Injected::Answer(wechat_error(errcode, &errmsg));
        }
        Injected::None
    }

    /// Mounts the WeChat API paths and the `/__sandbox/` control endpoints.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()));
        api::routes(cfg);
        control::routes(cfg);
    }

    /// Serves the sandbox alone (`example-app sandbox --port ...`); returns the bound
    /// address and the running server.
    pub fn serve(
        self,
        host: &str,
        port: u16,
    ) -> std::io::Result<(SocketAddr, actix_web::dev::Server)> {
        let listener = std::net::TcpListener::bind((host, port))?;
        let addr = listener.local_addr()?;
        let server = actix_web::HttpServer::new(move || {
            let sandbox = self.clone();
            actix_web::App::new().configure(move |cfg| sandbox.configure(cfg))
        })
        .listen(listener)?
        .run();
        Ok((addr, server))
    }

    /// Adds or replaces a user, e.g. one with a known `session_key` for decryption tests.
    pub fn add_user(&self, user: SandboxUser) {
        self.lock().users.insert(user.openid.clone(), user);
    }

    /// Calls per endpoint so far.
    pub fn stats(&self) -> std::collections::BTreeMap<String, u64> {
        self.lock().stats.clone()
    }
}

/// A WeChat-shaped error answer: HTTP 200 with `errcode` and `errmsg`.
fn wechat_error(errcode: i64, errmsg: &str) -> HttpResponse {
    ok_json(json!({"errcode": errcode, "errmsg": errmsg}))
}

fn ok_json(value: Value) -> HttpResponse {
    // WeChat answers JSON with a text/plain content type on several APIs; we use JSON.
    HttpResponse::Ok().json(value)
}

/// A response whose body fails mid-stream, so the client sees a broken connection.
fn dropped_connection() -> HttpResponse {
    let body = futures_util::stream::once(async {
        Err::<web::Bytes, _>(std::io::Error::other("sandbox dropped the connection"))
    });
    HttpResponse::Ok().streaming(body)
}

/// Parses a JSON body whatever its `Content-Type`.
fn json_body(body: &[u8]) -> Result<Value, HttpResponse> {
    serde_json::from_slice(body).map_err(|_| wechat_error(47001, "data format error"))
}
