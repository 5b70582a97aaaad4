use weapp::testing::TestApp;

async fn scrape(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// The value of one sample line, e.g. `http_requests_total{...} 3`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn requests_are_counted_by_route_pattern_and_unknown_paths_share_one_series() {
    let app = TestApp::builder().spawn().await;
    for _ in 0..3 {
        app.client.get(app.url("/healthz")).send().await.unwrap();
    }
    for i in 0..50 {
        app.client
            .get(app.url(&format!("/scanner/probe-{i}")))
            .send()
            .await
            .unwrap();
    }
    app.client
        .post(app.url("/api/auth/login"))
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();

    let response = scrape(&app, None).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    assert_eq!(
        sample(
            &text,
            r#"http_requests_total{method="GET",route="/healthz",status="200"}"#
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"http_requests_total{method="GET",route="unmatched",status="404"}"#
        ),
        Some(50.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"http_requests_total{method="POST",route="/api/auth/login",status="400"}"#
        ),
        Some(1.0)
    );
    assert!(!text.contains("probe-"), "raw paths never become labels");
    assert_eq!(
        sample(
            &text,
            r#"http_request_duration_seconds_count{method="GET",route="/healthz"}"#
        ),
        Some(3.0)
    );
    assert!(text.contains(
        r#"http_request_duration_seconds_bucket{method="GET",route="/healthz",le="0.001"}"#
    ));
    assert!(text.contains("http_requests_in_flight"));
    assert!(sample(&text, "db_pool_connections").is_some());
}

#[tokio::test]
async fn a_metrics_token_guards_the_endpoint() {
    let app = TestApp::builder()
        .set("observe.metrics_token", "scrape-secret")
        .spawn()
        .await;
    assert_eq!(scrape(&app, None).await.status(), 401);
    assert_eq!(scrape(&app, Some("wrong")).await.status(), 401);
    assert_eq!(scrape(&app, Some("scrape-secret")).await.status(), 200);
}

#[tokio::test]
async fn metrics_can_be_switched_off() {
    let app = TestApp::builder()
        .set("observe.metrics_enabled", false)
        .spawn()
        .await;
    assert_eq!(scrape(&app, None).await.status(), 404);
}

#[tokio::test]
async fn odd_methods_share_one_label() {
    let app = TestApp::builder().spawn().await;
    for method in ["PROPFIND", "BREW", "XYZ1"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        app.client
            .request(method, app.url("/healthz"))
            .send()
            .await
            .unwrap();
    }
    let text = scrape(&app, None).await.text().await.unwrap();
    assert!(
        !text.contains("PROPFIND") && !text.contains("BREW"),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"http_requests_total{method="OTHER",route="/healthz",status="404"}"#
        ),
        Some(3.0),
        "{text}"
    );
}
