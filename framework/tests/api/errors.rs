use reqwest::StatusCode;
use serde::Deserialize;
use weapp::actix_web::{HttpResponse, web};
use weapp::error::ErrorBody;
use weapp::testing::TestApp;
use weapp::{AppContext, Plugin};

/// Routes that exercise the error paths.
struct ErrorsPlugin;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EchoIn {
    name: String,
    qty: u32,
}

#[derive(Deserialize)]
struct PageQuery {
    #[allow(dead_code)]
    page: u32,
}

async fn echo(body: web::Json<EchoIn>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"name": body.name, "qty": body.qty}))
}

async fn page(_q: web::Query<PageQuery>) -> HttpResponse {
    HttpResponse::NoContent().finish()
}

async fn panics() -> HttpResponse {
    panic!("handler bug")
}

async fn raw(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok().body(body.len().to_string())
}

async fn conflict() -> weapp::Result<HttpResponse> {
    Err(weapp::Error::conflict(
        "out_of_stock",
        "product 7 is out of stock",
    ))
}

async fn uses_db(ctx: AppContext) -> weapp::Result<HttpResponse> {
    let _conn = ctx.db().conn().await?;
    Ok(HttpResponse::Ok().finish())
}

impl Plugin for ErrorsPlugin {
    fn name(&self) -> &'static str {
        "errors"
    }
    fn routes(&self, cfg: &mut web::ServiceConfig) {
        cfg.route("/echo", web::post().to(echo))
            .route("/page", web::get().to(page))
            .route("/panic", web::get().to(panics))
            .route("/raw", web::post().to(raw))
            .route("/conflict", web::get().to(conflict))
            .route("/db", web::get().to(uses_db));
    }
}

async fn spawn() -> TestApp {
    TestApp::builder()
        .set("server.body_limit_bytes", 1024)
        .plugin(&ErrorsPlugin)
        .spawn()
        .await
}

/// Checks the JSON error shape and returns the code.
async fn error_code(response: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let header_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: ErrorBody = response.json().await.expect("JSON error body");
    assert_eq!(body.request_id.as_deref(), Some(header_id.as_str()));
    assert!(!body.message.is_empty());
    body.code
}

fn json_post(app: &TestApp, path: &str, body: &str) -> reqwest::RequestBuilder {
    app.client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned())
}

#[tokio::test]
async fn bad_json_bodies_get_400_with_stable_codes() {
    let app = spawn().await;
    let ok = json_post(&app, "/echo", r#"{"name":"tea","qty":2}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()["content-type"],
        "application/json; charset=utf-8"
    );

    let cases = [
        (r#"{"name":"tea","qty":"#, "malformed_json"),
        ("not json", "malformed_json"),
        (r#"{"name":"tea","qty":"two"}"#, "invalid_body"),
        (r#"{"name":"tea","qty":-1}"#, "invalid_body"),
        (r#"{"name":"tea"}"#, "invalid_body"),
        (r#"{"name":"tea","qty":2,"admin":true}"#, "unknown_field"),
    ];
    for (body, code) in cases {
        let response = json_post(&app, "/echo", body).send().await.unwrap();
        assert_eq!(
            error_code(response, StatusCode::BAD_REQUEST).await,
            code,
            "body {body}"
        );
    }
}

#[tokio::test]
async fn oversize_and_wrong_media_type_are_413_and_415() {
    let app = spawn().await;
    let big = format!(r#"{{"name":"{}","qty":1}}"#, "x".repeat(2000));
    let response = json_post(&app, "/echo", &big).send().await.unwrap();
    assert_eq!(
        error_code(response, StatusCode::PAYLOAD_TOO_LARGE).await,
        "payload_too_large"
    );

    let response = app
        .client
        .post(app.url("/raw"))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response, StatusCode::PAYLOAD_TOO_LARGE).await,
        "payload_too_large"
    );

    let response = app
        .client
        .post(app.url("/echo"))
        .header("content-type", "text/plain")
        .body(r#"{"name":"tea","qty":2}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await,
        "unsupported_media_type"
    );
}

#[tokio::test]
async fn unknown_routes_bad_queries_and_handler_errors_are_json() {
    let app = spawn().await;
    let response = app.client.get(app.url("/nowhere")).send().await.unwrap();
    assert_eq!(
        error_code(response, StatusCode::NOT_FOUND).await,
        "not_found"
    );

    let response = app
        .client
        .get(app.url("/page?page=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response, StatusCode::BAD_REQUEST).await,
        "invalid_query"
    );

    let response = app.client.get(app.url("/conflict")).send().await.unwrap();
    assert_eq!(
        error_code(response, StatusCode::CONFLICT).await,
        "out_of_stock"
    );
}

#[tokio::test]
async fn a_panicking_handler_gives_a_json_500_and_the_server_lives_on() {
    let app = spawn().await;
    let response = app.client.get(app.url("/panic")).send().await.unwrap();
    assert_eq!(
        error_code(response, StatusCode::INTERNAL_SERVER_ERROR).await,
        "internal_error"
    );
    let again = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn a_safe_client_request_id_is_echoed_and_an_unsafe_one_replaced() {
    let app = spawn().await;
    let response = app
        .client
        .get(app.url("/nowhere"))
        .header("x-request-id", "trace-abc_123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-abc_123");
    let body: ErrorBody = response.json().await.unwrap();
    assert_eq!(body.request_id.as_deref(), Some("trace-abc_123"));

    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "<script>")
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(id, "<script>");
    assert_eq!(id.len(), 32);
}

#[tokio::test]
async fn a_pool_that_cannot_connect_gives_503_not_a_hang() {
    let app = TestApp::builder()
        .database_url("postgres://postgres@127.0.0.1:1/none")
        .set("database.migrate_on_start", false)
        .set("database.connect_timeout_ms", 300)
        .plugin(&ErrorsPlugin)
        .spawn()
        .await;
    let started = std::time::Instant::now();
    let response = app.client.get(app.url("/db")).send().await.unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(
        error_code(response, StatusCode::SERVICE_UNAVAILABLE).await,
        "database_unavailable"
    );
}
