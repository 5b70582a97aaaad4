//! The WeChat server API client.
//!
//! Every call goes to `base_url` (the official API, or the sandbox), with connect and
//! read timeouts. Busy (-1), 5xx, timeouts and broken connections are retried with
//! exponential backoff and jitter, bounded by `wechat.retry.max_attempts` and
//! `wechat.retry.deadline_ms`. A call rejected for its access_token (40001, 42001)
//! invalidates that token, fetches a fresh one and is retried once. Other errors are
//! returned as they are.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::config::{RetryConfig, WechatConfig};
use super::error::WechatError;
use super::token::AccessTokenCache;
use super::types::*;
use crate::backoff::{RetrySchedule, Transient};
use crate::config::Secret;
use crate::kv::KvStore;

/// A pooled, cloneable client for one mini program.
#[derive(Clone)]
pub struct WechatClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    appid: String,
    secret: Secret,
    retry: RetryConfig,
    tokens: AccessTokenCache,
}

/// An answer: content type, body, and the body as JSON when it is JSON (parsed once,
/// in [`WechatClient::send`], where `-1` is detected for retries).
struct Answer {
    content_type: String,
    body: actix_web::web::Bytes,
    json: Option<Value>,
}

/// The error a non-zero `errcode` stands for.
fn api_error(value: &Value) -> Option<WechatError> {
    let errcode = value.get("errcode").and_then(Value::as_i64).unwrap_or(0);
    (errcode != 0).then(|| WechatError::Api {
        errcode,
        errmsg: value
            .get("errmsg")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    })
}

/// Turns a non-zero `errcode` into an error.
fn check(value: Value) -> Result<Value, WechatError> {
    match api_error(&value) {
        Some(err) => Err(err),
        None => Ok(value),
    }
}

/// Checks `errcode` and deserializes the rest.
fn parse<T: DeserializeOwned>(answer: Answer) -> Result<T, WechatError> {
    let value = match answer.json {
        Some(value) => value,
        None => serde_json::from_slice(&answer.body)
            .map_err(|e| WechatError::Unexpected(format!("not JSON: {e}")))?,
    };
    serde_json::from_value(check(value)?).map_err(|e| WechatError::Unexpected(e.to_string()))
}

/// `wechat.retry`: up to `max_attempts`, with jittered exponential waits, and never
/// past the call's deadline.
struct RetryWithin<'a> {
    retry: &'a RetryConfig,
    deadline: Instant,
}

impl RetrySchedule for RetryWithin<'_> {
    fn wait_after(&self, failed: u32) -> Option<Duration> {
        if failed >= self.retry.max_attempts {
            return None;
        }
        let exp = crate::backoff::exponential_ms(
            self.retry.base_delay_ms,
            self.retry.max_delay_ms,
            (failed - 1).min(16),
        );
        // Jitter: between half and all of the exponential delay.
        let wait = crate::backoff::jittered(exp);
        (Instant::now() + wait < self.deadline).then_some(wait)
    }
}

impl WechatClient {
    /// A client for `base_url`, sharing access tokens through `kv`.
    pub fn new(
        config: &WechatConfig,
        base_url: &str,
        kv: Arc<dyn KvStore>,
    ) -> Result<Self, WechatError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .timeout(Duration::from_millis(config.timeout_ms))
            .pool_max_idle_per_host(32)
            .build()
            .map_err(|e| WechatError::Transport(e.to_string()))?;
        Ok(WechatClient {
            inner: Arc::new(Inner {
                http,
                base_url: base_url.trim_end_matches('/').to_owned(),
                appid: config.appid.clone(),
                secret: config.secret.clone(),
                retry: config.retry.clone(),
                tokens: AccessTokenCache::new(kv, &config.appid, &config.token),
            }),
        })
    }

    /// The app id this client acts for.
    pub fn appid(&self) -> &str {
        &self.inner.appid
    }

    /// The base URL calls go to.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// One request with retries of transient failures.
    async fn send(
        &self,
        api: &'static str,
        request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Answer, WechatError> {
        let retry = &self.inner.retry;
        let schedule = RetryWithin {
            retry,
            deadline: Instant::now() + Duration::from_millis(retry.deadline_ms),
        };
        crate::retrying!(schedule, api, |attempt| self
            .attempt(api, &request, attempt)
            .await)
    }

    /// One attempt of a call, traced and counted.
    async fn attempt(
        &self,
        api: &'static str,
        request: &impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
        attempt: u32,
    ) -> Result<Answer, WechatError> {
        let started = std::time::Instant::now();
        // A client span per attempt; its trace context travels in the headers.
        let span = tracing::info_span!("wechat", api, otel.kind = "client", attempt);
        let trace_headers = crate::observe::otel::outgoing_headers(&span);
        let outcome =
            tracing::Instrument::instrument(self.send_once(request, trace_headers), span).await;
        let outcome = match outcome {
            Ok(mut answer)
                if answer.content_type.starts_with("application/json")
                    || answer.content_type.starts_with("text/plain") =>
            {
                answer.json = serde_json::from_slice(&answer.body).ok();
                // Surface -1 (busy) here so it is retried like a 5xx.
                match answer.json.as_ref().and_then(api_error) {
                    Some(e) if e.is_transient() => Err(e),
                    _ => Ok(answer),
                }
            }
            other => other,
        };
        let errcode = match &outcome {
            Ok(answer) => answer
                .json
                .as_ref()
                .and_then(|j| j.get("errcode"))
                .and_then(Value::as_i64)
                .unwrap_or(0)
                .to_string(),
            Err(WechatError::Api { errcode, .. }) => errcode.to_string(),
            Err(WechatError::Status(status)) => format!("http_{status}"),
            Err(WechatError::Timeout) => "timeout".to_owned(),
            Err(WechatError::Transport(_)) => "transport".to_owned(),
            Err(WechatError::Unexpected(_)) => "unexpected".to_owned(),
        };
        crate::observe::upstream::record_wechat_call(api, &errcode, started.elapsed());
        tracing::debug!(
            api,
            attempt,
            elapsed_ms = started.elapsed().as_millis() as u64,
            errcode = %errcode,
            "wechat call"
        );
        outcome
    }

    async fn send_once(
        &self,
        request: &impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
        trace_headers: reqwest::header::HeaderMap,
    ) -> Result<Answer, WechatError> {
        let response = request(&self.inner.http)
            .headers(trace_headers)
            .send()
            .await?;
        let status = response.status();
        if status.is_server_error() || status.is_client_error() {
            return Err(WechatError::Status(status.as_u16()));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_owned();
        let body = response.bytes().await?;
        Ok(Answer {
            content_type,
            body,
            json: None,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.inner.base_url)
    }

    /// Runs a call needing the access token; on 40001/42001 refreshes it and retries
    /// once.
    async fn with_token<T, F, Fut>(&self, call: F) -> Result<T, WechatError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T, WechatError>>,
    {
        let token = self.access_token().await?;
        match call(token.clone()).await {
            Err(e) if e.is_token_rejected() => {
                tracing::warn!(errcode = e.errcode(), "access_token rejected; refreshing");
                self.inner.tokens.invalidate(&token).await;
                call(self.access_token().await?).await
            }
            other => other,
        }
    }

    async fn post_with_token<T: DeserializeOwned>(
        &self,
        api: &'static str,
        path: &'static str,
        body: &Value,
    ) -> Result<T, WechatError> {
        self.with_token(|token| async move {
            let answer = self
                .send(api, |http| {
                    http.post(self.url(path))
                        .query(&[("access_token", &token)])
                        .json(body)
                })
                .await?;
            parse(answer)
        })
        .await
    }

    async fn get_with_token<T: DeserializeOwned>(
        &self,
        api: &'static str,
        path: &'static str,
        query: &[(&str, String)],
    ) -> Result<T, WechatError> {
        self.with_token(|token| async move {
            let answer = self
                .send(api, |http| {
                    http.get(self.url(path))
                        .query(&[("access_token", &token)])
                        .query(query)
                })
                .await?;
            parse(answer)
        })
        .await
    }

    /// `GET /sns/jscode2session`: exchanges a `wx.login` code for the user's openid
    /// and session key. An answer without `openid` is an error.
    pub async fn code2session(&self, js_code: &str) -> Result<Code2Session, WechatError> {
        let answer = self
            .send("jscode2session", |http| {
                http.get(self.url("/sns/jscode2session")).query(&[
                    ("appid", self.inner.appid.as_str()),
                    ("secret", self.inner.secret.expose()),
                    ("js_code", js_code),
                    ("grant_type", "authorization_code"),
                ])
            })
            .await?;
        let value: Value = parse(answer)?;
        if value
            .get("openid")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(WechatError::Unexpected(
                "code2Session answer has no openid".into(),
            ));
        }
        serde_json::from_value(value).map_err(|e| WechatError::Unexpected(e.to_string()))
    }

    /// `POST /cgi-bin/stable_token`: the token WeChat keeps stable across callers.
    pub async fn fetch_stable_token(
        &self,
        force_refresh: bool,
    ) -> Result<AccessToken, WechatError> {
        let body = json!({
            "grant_type": "client_credential",
            "appid": self.inner.appid,
            "secret": self.inner.secret.expose(),
            "force_refresh": force_refresh,
        });
        let answer = self
            .send("stable_token", |http| {
                http.post(self.url("/cgi-bin/stable_token")).json(&body)
            })
            .await?;
        parse(answer)
    }

    /// `GET /cgi-bin/token`: the classic token endpoint (each call replaces the token).
    pub async fn fetch_token(&self) -> Result<AccessToken, WechatError> {
        let answer = self
            .send("token", |http| {
                http.get(self.url("/cgi-bin/token")).query(&[
                    ("grant_type", "client_credential"),
                    ("appid", self.inner.appid.as_str()),
                    ("secret", self.inner.secret.expose()),
                ])
            })
            .await?;
        parse(answer)
    }

    /// The current access token, from the shared [`AccessTokenCache`].
    pub async fn access_token(&self) -> Result<String, WechatError> {
        self.inner
            .tokens
            .get(|| self.fetch_stable_token(false))
            .await
    }

    /// `POST /wxa/business/getuserphonenumber`: the phone number behind a
    /// `getPhoneNumber` code.
    pub async fn get_phone_number(&self, code: &str) -> Result<PhoneInfo, WechatError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            phone_info: PhoneInfo,
        }
        let answer: Answer = self
            .post_with_token(
                "getuserphonenumber",
                "/wxa/business/getuserphonenumber",
                &json!({"code": code}),
            )
            .await?;
        Ok(answer.phone_info)
    }

    /// `POST /cgi-bin/message/subscribe/send`; returns WeChat's `msgid`.
    pub async fn send_subscribe_message(
        &self,
        message: &SubscribeMessage,
    ) -> Result<i64, WechatError> {
        let body =
            serde_json::to_value(message).map_err(|e| WechatError::Unexpected(e.to_string()))?;
        let answer: Value = self
            .post_with_token("subscribe_send", "/cgi-bin/message/subscribe/send", &body)
            .await?;
        Ok(answer
            .get("msgid")
            .and_then(Value::as_i64)
            .unwrap_or_default())
    }

    /// `POST /wxa/msg_sec_check` (version 2).
    pub async fn msg_sec_check(
        &self,
        openid: &str,
        scene: u8,
        content: &str,
    ) -> Result<MsgSecCheck, WechatError> {
        let body = json!({"content": content, "version": 2, "scene": scene, "openid": openid});
        self.post_with_token("msg_sec_check", "/wxa/msg_sec_check", &body)
            .await
    }

    /// `POST /wxa/getwxacodeunlimit`: the PNG of an unlimited mini program code.
    pub async fn get_wxa_code_unlimited(
        &self,
        request: &WxaCodeRequest,
    ) -> Result<Vec<u8>, WechatError> {
        let body =
            serde_json::to_value(request).map_err(|e| WechatError::Unexpected(e.to_string()))?;
        self.with_token(|token| {
            let body = &body;
            async move {
                let answer = self
                    .send("getwxacodeunlimit", |http| {
                        http.post(self.url("/wxa/getwxacodeunlimit"))
                            .query(&[("access_token", &token)])
                            .json(body)
                    })
                    .await?;
                if answer.content_type.starts_with("image/") {
                    Ok(answer.body.to_vec())
                } else {
                    parse::<Value>(answer)?;
                    Err(WechatError::Unexpected(
                        "getwxacodeunlimit returned no image".into(),
                    ))
                }
            }
        })
        .await
    }

    /// `POST /wxaapi/newtmpl/addtemplate`: adds a library template; returns `priTmplId`.
    pub async fn add_template(
        &self,
        tid: &str,
        kid_list: &[i64],
        scene_desc: &str,
    ) -> Result<String, WechatError> {
        let body = json!({"tid": tid, "kidList": kid_list, "sceneDesc": scene_desc});
        let answer: Value = self
            .post_with_token("addtemplate", "/wxaapi/newtmpl/addtemplate", &body)
            .await?;
        answer
            .get("priTmplId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| WechatError::Unexpected("addtemplate answer has no priTmplId".into()))
    }

    /// `GET /wxaapi/newtmpl/gettemplate`: the app's templates.
    pub async fn get_templates(&self) -> Result<Vec<Template>, WechatError> {
        let answer: DataList<Template> = self
            .get_with_token("gettemplate", "/wxaapi/newtmpl/gettemplate", &[])
            .await?;
        Ok(answer.data)
    }

    /// `POST /wxaapi/newtmpl/deltemplate`.
    pub async fn delete_template(&self, pri_tmpl_id: &str) -> Result<(), WechatError> {
        let body = json!({"priTmplId": pri_tmpl_id});
        let _: Value = self
            .post_with_token("deltemplate", "/wxaapi/newtmpl/deltemplate", &body)
            .await?;
        Ok(())
    }

    /// `GET /wxaapi/newtmpl/getcategory`: the app's service categories.
    pub async fn get_category(&self) -> Result<Vec<Category>, WechatError> {
        let answer: DataList<Category> = self
            .get_with_token("getcategory", "/wxaapi/newtmpl/getcategory", &[])
            .await?;
        Ok(answer.data)
    }

    /// `GET /wxaapi/newtmpl/getpubtemplatetitles`: library templates of categories.
    pub async fn get_pub_template_titles(
        &self,
        ids: &[i64],
        start: u32,
        limit: u32,
    ) -> Result<PubTemplateTitles, WechatError> {
        let ids = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        self.get_with_token(
            "getpubtemplatetitles",
            "/wxaapi/newtmpl/getpubtemplatetitles",
            &[
                ("ids", ids),
                ("start", start.to_string()),
                ("limit", limit.to_string()),
            ],
        )
        .await
    }

    /// `GET /wxaapi/newtmpl/getpubtemplatekeywords`: a library template's keywords.
    pub async fn get_pub_template_keywords(
        &self,
        tid: &str,
    ) -> Result<Vec<PubTemplateKeyword>, WechatError> {
        let answer: DataList<PubTemplateKeyword> = self
            .get_with_token(
                "getpubtemplatekeywords",
                "/wxaapi/newtmpl/getpubtemplatekeywords",
                &[("tid", tid.to_owned())],
            )
            .await?;
        Ok(answer.data)
    }
}
