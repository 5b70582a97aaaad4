//! The WeChat API paths the sandbox answers.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::state::{AppTemplate, LIBRARY, State};
use super::{Injected, Sandbox, json_body, ok_json, wechat_error};

type Query = HashMap<String, String>;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sns/jscode2session", web::get().to(jscode2session))
        .route("/cgi-bin/token", web::get().to(token))
        .route("/cgi-bin/stable_token", web::post().to(stable_token))
        .route(
            "/wxa/business/getuserphonenumber",
            web::post().to(phone_number),
        )
        .route(
            "/cgi-bin/message/subscribe/send",
            web::post().to(subscribe_send),
        )
        .route("/wxaapi/newtmpl/addtemplate", web::post().to(add_template))
        .route("/wxaapi/newtmpl/gettemplate", web::get().to(get_templates))
        .route(
            "/wxaapi/newtmpl/deltemplate",
            web::post().to(delete_template),
        )
        .route("/wxaapi/newtmpl/getcategory", web::get().to(get_category))
        .route(
            "/wxaapi/newtmpl/getpubtemplatetitles",
            web::get().to(pub_titles),
        )
        .route(
            "/wxaapi/newtmpl/getpubtemplatekeywords",
            web::get().to(pub_keywords),
        )
        .route("/wxa/msg_sec_check", web::post().to(msg_sec_check))
        .route("/wxa/getwxacodeunlimit", web::post().to(wxacode));
}

fn query(req: &HttpRequest) -> Query {
    web::Query::<Query>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default()
}

fn err((errcode, errmsg): (i64, &str)) -> HttpResponse {
    wechat_error(errcode, errmsg)
}

/// Counts the call, applies faults, then runs `f` on the state.
async fn handle(
    sandbox: &Sandbox,
    req: &HttpRequest,
    f: impl FnOnce(&mut State, &Query) -> Result<HttpResponse, HttpResponse>,
) -> HttpResponse {
    let traceparent = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok());
    let baggage = req.headers().get("baggage").and_then(|v| v.to_str().ok());
    if let Injected::Answer(response) = sandbox.enter(req.path(), traceparent, baggage).await {
        return response;
    }
    let q = query(req);
    let mut state = sandbox.lock();
    f(&mut state, &q).unwrap_or_else(|e| e)
}

/// As [`handle`], for calls that need a valid `access_token`.
async fn handle_with_token(
    sandbox: &Sandbox,
    req: &HttpRequest,
    f: impl FnOnce(&mut State, &Query) -> Result<HttpResponse, HttpResponse>,
) -> HttpResponse {
    handle(sandbox, req, |state, q| {
        state
            .check_token(q.get("access_token").map(String::as_str))
            .map_err(err)?;
        f(state, q)
    })
    .await
}

fn field<'a>(q: &'a Query, name: &str) -> &'a str {
    q.get(name).map(String::as_str).unwrap_or_default()
}

async fn jscode2session(sb: web::Data<Sandbox>, req: HttpRequest) -> HttpResponse {
    handle(&sb, &req, |state, q| {
        state
            .check_credentials(field(q, "appid"), field(q, "secret"))
            .map_err(err)?;
        let now = state.now();
        let openid = State::take_code(&mut state.codes, field(q, "js_code"), now).map_err(err)?;
        let user = &state.users[&openid];
        Ok(ok_json(json!({
            "openid": user.openid,
            "session_key": user.session_key,
            "unionid": user.unionid,
        })))
    })
    .await
}

async fn token(sb: web::Data<Sandbox>, req: HttpRequest) -> HttpResponse {
    handle(&sb, &req, |state, q| {
        if field(q, "grant_type") != "client_credential" {
            return Err(wechat_error(40002, "invalid grant_type"));
        }
        state
            .check_credentials(field(q, "appid"), field(q, "secret"))
            .map_err(err)?;
        let (token, expires_in) = state.issue_token();
        Ok(ok_json(
            json!({"access_token": token, "expires_in": expires_in}),
        ))
    })
    .await
}

async fn stable_token(sb: web::Data<Sandbox>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    handle(&sb, &req, |state, _| {
        let body = json_body(&body)?;
        let text = |name: &str| {
            body.get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        if text("grant_type") != "client_credential" {
            return Err(wechat_error(40002, "invalid grant_type"));
        }
        state
            .check_credentials(&text("appid"), &text("secret"))
            .map_err(err)?;
        let force = body
            .get("force_refresh")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let now = state.now();
        let current = state
            .stable_token
            .as_ref()
            .and_then(|t| state.tokens.get(t).map(|exp| (t.clone(), *exp)))
            .filter(|(_, exp)| *exp - now > super::state::TOKEN_GRACE_S);
        let (token, expires_in) = match current {
            Some((token, expires)) if !force => (token, expires - now),
            _ => {
                let (token, ttl) = state.issue_token();
                state.stable_token = Some(token.clone());
                (token, ttl)
            }
        };
        Ok(ok_json(
            json!({"access_token": token, "expires_in": expires_in}),
        ))
    })
    .await
}

async fn phone_number(sb: web::Data<Sandbox>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    handle_with_token(&sb, &req, |state, _| {
        let body = json_body(&body)?;
        let code = body.get("code").and_then(Value::as_str).unwrap_or_default();
        let now = state.now();
        let openid = State::take_code(&mut state.phone_codes, code, now).map_err(err)?;
        let phone = state.users[&openid].phone.clone().unwrap_or_default();
        Ok(ok_json(json!({
            "errcode": 0,
            "errmsg": "ok",
            "phone_info": {
                "phoneNumber": phone,
                "purePhoneNumber": phone,
                "countryCode": "86",
                "watermark": {"timestamp": now, "appid": state.appid},
            }
        })))
    })
    .await
}

async fn subscribe_send(
    sb: web::Data<Sandbox>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    handle_with_token(&sb, &req, |state, _| {
        let body = json_body(&body)?;
        let touser = body
            .get("touser")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let template_id = body
            .get("template_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !state.users.contains_key(&touser) {
            return Err(wechat_error(40003, "invalid openid"));
        }
        let template = state
            .templates
            .get(&template_id)
            .ok_or_else(|| wechat_error(40037, "invalid template_id"))?;
        let data = body
            .get("data")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (name, _, rule) in &template.keywords {
            let value = data
                .get(name)
                .and_then(|v| v.get("value"))
                .and_then(Value::as_str);
            match value {
                Some(value) if crate::wechat::keywords::value_ok(rule, value) => {}
                _ => {
                    return Err(wechat_error(
                        47003,
                        &format!("argument invalid! data.{name}.value invalid"),
                    ));
                }
            }
        }
        if let Some(unknown) = data
            .keys()
            .find(|k| !template.keywords.iter().any(|(n, _, _)| n == *k))
        {
            return Err(wechat_error(
                47003,
                &format!("argument invalid! data.{unknown} unknown"),
            ));
        }
        let quota = state
            .quotas
            .entry((touser.clone(), template_id.clone()))
            .or_default();
        if *quota == 0 {
            return Err(wechat_error(43101, "user refuse to accept the msg"));
        }
        *quota -= 1;
        state.next_msgid += 1;
        let msgid = state.next_msgid;
        let mut stored = body.clone();
        stored["msgid"] = json!(msgid);
        state.messages.push(stored);
        Ok(ok_json(
            json!({"errcode": 0, "errmsg": "ok", "msgid": msgid}),
        ))
    })
    .await
}

async fn add_template(sb: web::Data<Sandbox>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    handle_with_token(&sb, &req, |state, _| {
        let body = json_body(&body)?;
        let tid: i64 = match body.get("tid") {
            Some(Value::String(s)) => s.parse().unwrap_or(-1),
            Some(v) => v.as_i64().unwrap_or(-1),
            None => -1,
        };
        let library = LIBRARY
            .iter()
            .find(|t| t.tid == tid)
            .ok_or_else(|| wechat_error(200014, "template tid not exist"))?;
        let kids: Vec<i64> = body
            .get("kidList")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        if kids.len() < 2 || kids.len() > 5 {
            return Err(wechat_error(
                200020,
                "kidList length must be between 2 and 5",
            ));
        }
        let mut keywords = Vec::new();
        for kid in kids {
            let (_, name, rule, _) = library
                .keywords
                .iter()
                .find(|k| k.0 == kid)
                .ok_or_else(|| wechat_error(200015, "keyword id not exist"))?;
            keywords.push((
                format!("{rule}{kid}"),
                (*name).to_owned(),
                (*rule).to_owned(),
            ));
        }
        let id = super::state::random_token(43);
        state.templates.insert(
            id.clone(),
            AppTemplate {
                title: library.title.to_owned(),
                keywords,
            },
        );
        Ok(ok_json(
            json!({"errcode": 0, "errmsg": "ok", "priTmplId": id}),
        ))
    })
    .await
}

async fn get_templates(sb: web::Data<Sandbox>, req: HttpRequest) -> HttpResponse {
    handle_with_token(&sb, &req, |state, _| {
        let data: Vec<Value> = state
            .templates
            .iter()
            .map(|(id, t)| {
                let content: String = t.keywords.iter().map(|(key, name, _)| format!("{name}:{{{{{key}.DATA}}}}\n")).collect();
                json!({"priTmplId": id, "title": t.title, "content": content, "example": "", "type": 2})
            })
            .collect();
        Ok(ok_json(json!({"errcode": 0, "errmsg": "ok", "data": data})))
    })
    .await
}

async fn delete_template(
    sb: web::Data<Sandbox>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    handle_with_token(&sb, &req, |state, _| {
        let body = json_body(&body)?;
        let id = body
            .get("priTmplId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        state
            .templates
            .remove(id)
            .ok_or_else(|| wechat_error(40037, "invalid template_id"))?;
        Ok(ok_json(json!({"errcode": 0, "errmsg": "ok"})))
    })
    .await
}

async fn get_category(sb: web::Data<Sandbox>, req: HttpRequest) -> HttpResponse {
    handle_with_token(&sb, &req, |_, _| {
        Ok(ok_json(
            json!({"errcode": 0, "errmsg": "ok", "data": [{"id": 616, "name": "电商平台"}]}),
        ))
    })
    .await
}

async fn pub_titles(sb: web::Data<Sandbox>, req: HttpRequest) -> HttpResponse {
    handle_with_token(&sb, &req, |_, q| {
        let ids: Vec<i64> = field(q, "ids").split(',').filter_map(|s| s.trim().parse().ok()).collect();
        let start: usize = field(q, "start").parse().unwrap_or(0);
        let limit: usize = field(q, "limit").parse().unwrap_or(30).min(30);
        let matching: Vec<_> = LIBRARY.iter().filter(|t| ids.contains(&t.category_id)).collect();
        let data: Vec<Value> = matching
            .iter()
            .skip(start)
            .take(limit)
            .map(|t| json!({"tid": t.tid, "title": t.title, "type": 2, "categoryId": t.category_id.to_string()}))
            .collect();
        Ok(ok_json(json!({"errcode": 0, "errmsg": "ok", "count": matching.len(), "data": data})))
    })
    .await
}

async fn pub_keywords(sb: web::Data<Sandbox>, req: HttpRequest) -> HttpResponse {
    handle_with_token(&sb, &req, |_, q| {
        let tid: i64 = field(q, "tid").parse().unwrap_or(-1);
        let template = LIBRARY.iter().find(|t| t.tid == tid).ok_or_else(|| wechat_error(200014, "template tid not exist"))?;
        let data: Vec<Value> = template
            .keywords
            .iter()
            .map(|(kid, name, rule, example)| json!({"kid": kid, "name": name, "example": example, "rule": rule}))
            .collect();
        Ok(ok_json(json!({"errcode": 0, "errmsg": "ok", "count": data.len(), "data": data})))
    })
    .await
}

async fn msg_sec_check(sb: web::Data<Sandbox>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    handle_with_token(&sb, &req, |state, _| {
        let body = json_body(&body)?;
        if body.get("version").and_then(Value::as_i64) != Some(2) {
            return Err(wechat_error(47001, "data format error: version must be 2"));
        }
        let openid = body.get("openid").and_then(Value::as_str).unwrap_or_default();
        if !state.users.contains_key(openid) {
            return Err(wechat_error(40003, "invalid openid"));
        }
        let content = body.get("content").and_then(Value::as_str).unwrap_or_default();
        let hit = state.risky_words.iter().find(|w| content.contains(w.as_str()));
        let (suggest, label) = if hit.is_some() { ("risky", 20006) } else { ("pass", 100) };
        Ok(ok_json(json!({
            "errcode": 0,
            "errmsg": "ok",
            "result": {"suggest": suggest, "label": label},
            "detail": [{"strategy": "keyword", "errcode": 0, "suggest": suggest, "label": label, "keyword": hit}],
            "trace_id": super::state::random_token(24),
        })))
    })
    .await
}

async fn wxacode(sb: web::Data<Sandbox>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    handle_with_token(&sb, &req, |_, _| {
        let body = json_body(&body)?;
        let scene = body
            .get("scene")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if scene.is_empty() || scene.chars().count() > 32 {
            return Err(wechat_error(40169, "invalid length for scene"));
        }
        let width = body
            .get("width")
            .and_then(Value::as_u64)
            .unwrap_or(430)
            .clamp(280, 1280) as u32;
        Ok(HttpResponse::Ok()
            .content_type("image/png")
            .body(super::png::code_image(scene, width / 4)))
    })
    .await
}
