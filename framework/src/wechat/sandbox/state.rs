//! The sandbox's data: users, codes, tokens, templates, sent messages, faults, clock.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Seconds a `wx.login` code stays valid.
pub(super) const CODE_TTL_S: i64 = 300;
/// Seconds an access token stays valid.
pub(super) const TOKEN_TTL_S: i64 = 7200;
/// A replaced token keeps working this long, as on WeChat.
pub(super) const TOKEN_GRACE_S: i64 = 300;

/// A simulated WeChat user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxUser {
    /// openid for the sandbox app.
    pub openid: String,
    /// unionid.
    pub unionid: String,
    /// Current session key (base64 of 16 bytes).
    pub session_key: String,
    /// Phone number, if the user has one.
    pub phone: Option<String>,
}

pub(super) struct Code {
    pub openid: String,
    pub issued_at: i64,
    pub used: bool,
}

/// A fault to inject into one endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Path of the endpoint, e.g. `/sns/jscode2session`.
    pub endpoint: String,
    /// Answer with this errcode.
    #[serde(default)]
    pub errcode: Option<i64>,
    /// Its errmsg.
    #[serde(default)]
    pub errmsg: Option<String>,
    /// Answer with this HTTP status instead.
    #[serde(default)]
    pub status: Option<u16>,
    /// Wait this long before answering.
    #[serde(default)]
    pub latency_ms: u64,
    /// Break the connection instead of answering.
    #[serde(default)]
    pub drop: bool,
    /// Only for the next N calls (default: until cleared).
    #[serde(default)]
    pub count: Option<u32>,
    /// Only with this probability, 0 to 1 (default: always).
    #[serde(default)]
    pub probability: Option<f64>,
}

/// A library template and its keywords `(kid, name, rule, example)`.
pub(super) struct LibraryTemplate {
    pub tid: i64,
    pub title: &'static str,
    pub category_id: i64,
    pub keywords: &'static [(i64, &'static str, &'static str, &'static str)],
}

/// One of the app's templates: keyword names like `thing1` with their rule.
pub(super) struct AppTemplate {
    pub title: String,
    pub keywords: Vec<(String, String, String)>,
}

pub(super) const LIBRARY: &[LibraryTemplate] = &[
    LibraryTemplate {
        tid: 1001,
        title: "订单发货通知",
        category_id: 616,
        keywords: &[
            (1, "商品名称", "thing", "连衣裙"),
            (2, "快递单号", "character_string", "SF1234567890"),
            (3, "发货时间", "time", "2026年11月25日 12:00"),
            (4, "订单金额", "amount", "99.00元"),
        ],
    },
    LibraryTemplate {
        tid: 1002,
        title: "订单支付成功通知",
        category_id: 616,
        keywords: &[
            (1, "订单号", "character_string", "202611250001"),
            (2, "支付金额", "amount", "99.00元"),
            (3, "支付时间", "time", "2026年11月25日 12:00"),
            (4, "温馨提示", "phrase", "已支付"),
        ],
    },
];

/// Everything the sandbox remembers.
pub(super) struct State {
    pub appid: String,
    pub secret: String,
    pub risky_words: Vec<String>,
    pub clock_offset_s: i64,
    pub users: HashMap<String, SandboxUser>,
    pub codes: HashMap<String, Code>,
    pub phone_codes: HashMap<String, Code>,
    pub tokens: HashMap<String, i64>,
    pub stable_token: Option<String>,
    pub templates: BTreeMap<String, AppTemplate>,
    pub quotas: HashMap<(String, String), u32>,
    pub messages: Vec<Value>,
    pub faults: HashMap<String, Fault>,
    pub stats: BTreeMap<String, u64>,
    /// The last W3C `traceparent` each endpoint received.
    pub traceparents: BTreeMap<String, String>,
    /// The last W3C `baggage` each endpoint received.
    pub baggage: BTreeMap<String, String>,
    pub next_msgid: i64,
}

pub(super) fn random_token(len: usize) -> String {
    let mut s = String::new();
    while s.len() < len {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s.truncate(len);
    s
}

pub(super) fn random_session_key() -> String {
    use base64::Engine;
    let mut key = [0u8; 16];
    let _ = getrandom::fill(&mut key);
    base64::engine::general_purpose::STANDARD.encode(key)
}

impl State {
    pub(super) fn new(appid: &str, secret: &str, risky_words: Vec<String>) -> Self {
        State {
            appid: appid.to_owned(),
            secret: secret.to_owned(),
            risky_words,
            clock_offset_s: 0,
            users: HashMap::new(),
            codes: HashMap::new(),
            phone_codes: HashMap::new(),
            tokens: HashMap::new(),
            stable_token: None,
            templates: BTreeMap::new(),
            quotas: HashMap::new(),
            messages: Vec::new(),
            faults: HashMap::new(),
            stats: BTreeMap::new(),
            traceparents: BTreeMap::new(),
            baggage: BTreeMap::new(),
            next_msgid: 1_000_000,
        }
    }

    /// Unix seconds on the sandbox's (adjustable) clock.
    pub(super) fn now(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        real + self.clock_offset_s
    }

    /// Issues a new token valid for [`TOKEN_TTL_S`]; earlier ones keep a grace period.
    pub(super) fn issue_token(&mut self) -> (String, i64) {
        let now = self.now();
        for expires in self.tokens.values_mut() {
            *expires = (*expires).min(now + TOKEN_GRACE_S);
        }
        let token = random_token(64);
        self.tokens.insert(token.clone(), now + TOKEN_TTL_S);
        (token, TOKEN_TTL_S)
    }

    /// Checks an `access_token` query value: 41001 missing, 40001 unknown, 42001 expired.
    pub(super) fn check_token(&self, token: Option<&str>) -> Result<(), (i64, &'static str)> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or((41001, "access_token missing"))?;
        match self.tokens.get(token) {
            None => Err((
                40001,
                "invalid credential, access_token is invalid or not latest",
            )),
            Some(expires) if *expires <= self.now() => Err((42001, "access_token expired")),
            Some(_) => Ok(()),
        }
    }

    /// Checks appid and secret: 40013 or 40125.
    pub(super) fn check_credentials(
        &self,
        appid: &str,
        secret: &str,
    ) -> Result<(), (i64, &'static str)> {
        if appid != self.appid {
            return Err((40013, "invalid appid"));
        }
        if secret != self.secret {
            return Err((40125, "invalid appsecret"));
        }
        Ok(())
    }

    /// Takes a single-use code: 40029 unknown or expired, 40163 used.
    pub(super) fn take_code(
        codes: &mut HashMap<String, Code>,
        code: &str,
        now: i64,
    ) -> Result<String, (i64, &'static str)> {
        let entry = codes.get_mut(code).ok_or((40029, "invalid code"))?;
        if now - entry.issued_at > CODE_TTL_S {
            return Err((40029, "invalid code"));
        }
        if entry.used {
            return Err((40163, "code been used"));
        }
        entry.used = true;
        Ok(entry.openid.clone())
    }
}
