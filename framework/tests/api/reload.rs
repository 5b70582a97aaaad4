//! Live reload: rate limits, CORS origins and the log filter change without a
//! restart; a bad configuration is refused and the running one kept.

use weapp::app::LiveConfig;
use weapp::guard::{GuardConfig, Limit, RateLimitRule};
use weapp::health::Health;
use weapp::observe::ObserveConfig;
use weapp::testing::TestApp;

async fn preflight(app: &TestApp, origin: &str) -> Option<String> {
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/healthz"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned())
}

async fn health(app: &TestApp) -> Health {
    app.client
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_reload_changes_rate_limits_cors_origins_and_the_log_filter() {
    let app = TestApp::builder().spawn().await;
    assert_eq!(preflight(&app, "https://ops.example.com").await, None);
    assert_eq!(health(&app).await.last_reload, None);
    for _ in 0..3 {
        assert_eq!(
            app.client
                .get(app.url("/readyz"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }

    let mut next = app.ctx.config().clone();
    let mut guard = (*next.get::<GuardConfig>().unwrap()).clone();
    guard.cors.allowed_origins = vec!["https://ops.example.com".into()];
    guard.rate_limits = vec![RateLimitRule {
        prefix: "/readyz".into(),
        per_ip: Some(Limit {
            burst: 2,
            per_second: 0.1,
        }),
        per_user: None,
    }];
    next.set_section(guard);
    let mut observe = (*next.get::<ObserveConfig>().unwrap()).clone();
    observe.log_level = "warn,weapp=debug".into();
    next.set_section(observe);
    let changed = app.ctx.reload(&next).unwrap();
    assert_eq!(
        changed,
        ["observe.log_level", "guard.rate_limits", "guard.cors"]
    );

    assert_eq!(
        preflight(&app, "https://ops.example.com").await.as_deref(),
        Some("https://ops.example.com")
    );
    let statuses: Vec<u16> = futures_util::future::join_all((0..3).map(|_| async {
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }))
    .await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        1,
        "{statuses:?}"
    );
    assert!(health(&app).await.last_reload.is_some());
    assert_eq!(app.ctx.live().log_level, "warn,weapp=debug");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_bad_configuration_is_refused_and_the_running_one_kept() {
    let app = TestApp::builder()
        .set("guard.cors.allowed_origins", ["https://ops.example.com"])
        .spawn()
        .await;
    let mut bad_limit = app.ctx.config().clone();
    let mut guard = (*bad_limit.get::<GuardConfig>().unwrap()).clone();
    guard.cors.allowed_origins = vec![];
    guard.rate_limits = vec![RateLimitRule {
        prefix: "/readyz".into(),
        per_ip: Some(Limit {
            burst: 0,
            per_second: 1.0,
        }),
        per_user: None,
    }];
    bad_limit.set_section(guard.clone());
    let refused = app.ctx.reload(&bad_limit).unwrap_err();
    assert!(
        refused.to_string().contains("guard.rate_limits"),
        "{refused}"
    );

    let mut bad_filter = app.ctx.config().clone();
    guard.rate_limits.clear();
    bad_filter.set_section(guard);
    let mut observe = (*bad_filter.get::<ObserveConfig>().unwrap()).clone();
    observe.log_level = "weapp=loud".into();
    bad_filter.set_section(observe);
    assert!(app.ctx.reload(&bad_filter).is_err());

    assert_eq!(
        preflight(&app, "https://ops.example.com").await.as_deref(),
        Some("https://ops.example.com"),
        "the running origins stay"
    );
    assert!(app.ctx.live().guard.rate_limits.is_empty());
    assert_eq!(health(&app).await.last_reload, None);
    app.stop().await.unwrap();
}

/// An admin route for the test below.
struct AdminProbe;

async fn whoami(admin: weapp::auth::AdminCaller) -> weapp::actix_web::HttpResponse {
    weapp::actix_web::HttpResponse::Ok().body(admin.name)
}

impl weapp::Plugin for AdminProbe {
    fn name(&self) -> &'static str {
        "admin-probe"
    }
    fn routes(&self, cfg: &mut weapp::actix_web::web::ServiceConfig) {
        cfg.route("/api/admin/whoami", weapp::actix_web::web::get().to(whoami));
    }
}

/// A leaked admin token is revoked by a reload, without a restart.
#[tokio::test]
async fn a_reload_replaces_the_admin_tokens() {
    const OLD: &str = "an-old-admin-token-that-leaked-0001";
    const NEW: &str = "a-new-admin-token-from-the-store-0002";
    let app = TestApp::builder()
        .set("auth.admin_tokens.ops", OLD)
        .plugin(&AdminProbe)
        .spawn()
        .await;
    let call = |token: &'static str| {
        app.client
            .get(app.url("/api/admin/whoami"))
            .header("X-Admin-Token", token)
            .send()
    };
    assert_eq!(call(OLD).await.unwrap().text().await.unwrap(), "ops");

    let mut next = app.ctx.config().clone();
    let mut auth = (*next.get::<weapp::auth::AuthConfig>().unwrap()).clone();
    auth.admin_tokens = [("ops2".to_owned(), weapp::config::Secret::new(NEW))].into();
    next.set_section(auth);
    let changed = app.ctx.reload(&next).unwrap();
    assert_eq!(changed, ["auth.admin_tokens"]);

    assert_eq!(
        call(OLD).await.unwrap().status(),
        401,
        "the old token is revoked"
    );
    assert_eq!(call(NEW).await.unwrap().text().await.unwrap(), "ops2");
    app.stop().await.unwrap();
}
