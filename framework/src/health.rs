//! `GET /healthz` (the process is alive) and `GET /readyz` (its dependencies answer).

use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::AppContext;
use crate::error::JSON_UTF8;

/// `[health]`: readiness checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Time each dependency check in `/readyz` may take.
    pub check_timeout_ms: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            check_timeout_ms: 1_000,
        }
    }
}

impl crate::config::ConfigSection for HealthConfig {
    const NAME: &'static str = "health";

    fn issues(&self, _config: &crate::config::Config) -> Vec<crate::config::ConfigIssue> {
        if self.check_timeout_ms == 0 {
            return vec![crate::config::ConfigIssue::new(
                "health.check_timeout_ms",
                "must be at least 1",
            )];
        }
        Vec::new()
    }
}
crate::config_section!(HealthConfig);

/// When the configuration was last reloaded; the app's reload sets it, `/healthz`
/// reports it. A service in the app's context.
#[derive(Debug, Default)]
pub struct LastReload(std::sync::RwLock<Option<chrono::DateTime<chrono::Utc>>>);

impl LastReload {
    /// The time of the last reload, if any.
    pub fn get(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        *self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a reload now.
    pub fn record_now(&self) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(chrono::Utc::now());
    }
}

/// Body of `/healthz`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: String,
    /// The app's version.
    pub version: String,
    /// Commit the app was built from (`unknown` unless the app says, with
    /// `App::commit`).
    pub git_hash: String,
    /// The weapp version the app was built on.
    pub framework_version: String,
    /// Commit weapp was built from.
    pub framework_git_hash: String,
    /// RFC 3339 start time.
    pub started_at: String,
    /// Seconds since start.
    pub uptime_s: i64,
    /// Requests per second over the last minute.
    pub qps_1m: f64,
    /// RFC 3339 time of the last configuration reload (SIGHUP), if any.
    pub last_reload: Option<String>,
}

/// One dependency's state in `/readyz`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Check {
    /// `up` or `down`.
    pub status: String,
    /// What answers: `postgres`, `mysql`, `sqlite`, `redis` or `memory`.
    pub backend: String,
    /// Why it is down, in general terms (`unreachable`, or no answer in time); the
    /// driver's own message, which may name hosts and users, stays in the log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Body of `/readyz`; on failure it also carries the error shape's `code` and `message`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: String,
    /// `not_ready` when unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Names the failing dependencies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The request id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `database` and `kv`.
    pub checks: std::collections::BTreeMap<String, Check>,
}

pub(crate) async fn healthz(ctx: AppContext) -> HttpResponse {
    let build = ctx.build_info();
    let started = ctx.started_at();
    json(
        StatusCode::OK,
        &Health {
            status: "ok".into(),
            version: build.version.clone(),
            git_hash: build.git_hash.clone(),
            framework_version: build.framework_version.clone(),
            framework_git_hash: build.framework_git_hash.clone(),
            started_at: started.to_rfc3339(),
            uptime_s: (chrono::Utc::now() - started).num_seconds(),
            qps_1m: ctx
                .get::<crate::observe::rate::RequestRate>()
                .map_or(0.0, |rate| (rate.per_second() * 100.0).round() / 100.0),
            last_reload: ctx
                .get::<LastReload>()
                .and_then(|r| r.get())
                .map(|t| t.to_rfc3339()),
        },
    )
}

/// Why a dependency did not answer `/readyz`: for the log, and for the client.
enum Down {
    /// It answered with an error: the text goes to the log only.
    Failed(String),
    /// It did not answer in time.
    TimedOut(Duration),
}

fn check(dependency: &str, backend: &str, result: Result<(), Down>) -> Check {
    let (status, error) = match result {
        Ok(()) => ("up", None),
        Err(Down::Failed(e)) => {
            tracing::warn!(dependency, error = %e, "not ready");
            ("down", Some("unreachable".to_owned()))
        }
        Err(Down::TimedOut(timeout)) => {
            tracing::warn!(dependency, ?timeout, "not ready: no answer in time");
            ("down", Some(format!("no answer within {timeout:?}")))
        }
    };
    Check {
        status: status.into(),
        backend: backend.into(),
        error,
    }
}

pub(crate) async fn readyz(ctx: AppContext) -> HttpResponse {
    // Checked at load; a section that cannot be read falls back to its default.
    let settings = ctx.config().get::<HealthConfig>().unwrap_or_default();
    let timeout = Duration::from_millis(settings.check_timeout_ms);
    let kv_check = async {
        match tokio::time::timeout(timeout, ctx.kv().ping()).await {
            Ok(result) => result.map_err(|e| Down::Failed(e.to_string())),
            Err(_) => Err(Down::TimedOut(timeout)),
        }
    };
    let (db, kv) = tokio::join!(ctx.db().ping(timeout), kv_check);
    let checks: std::collections::BTreeMap<String, Check> = [
        (
            "database".to_owned(),
            check(
                "database",
                ctx.db().backend().name(),
                db.map_err(|e| Down::Failed(e.to_string())),
            ),
        ),
        ("kv".to_owned(), check("kv", ctx.kv().backend(), kv)),
    ]
    .into();
    let down: Vec<&str> = checks
        .iter()
        .filter(|(_, c)| c.status != "up")
        .map(|(name, _)| name.as_str())
        .collect();
    if down.is_empty() {
        return json(
            StatusCode::OK,
            &Readiness {
                status: "ready".into(),
                code: None,
                message: None,
                request_id: None,
                checks,
            },
        );
    }
    let message = format!("unavailable: {}", down.join(", "));
    json(
        StatusCode::SERVICE_UNAVAILABLE,
        &Readiness {
            status: "unavailable".into(),
            code: Some("not_ready".into()),
            message: Some(message),
            request_id: crate::http::current_request_id(),
            checks,
        },
    )
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8)))
        .body(serde_json::to_vec(body).unwrap_or_default())
}
