use weapp::testing::{TestApp, metric_sample};

async fn scrape(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
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
        metric_sample(
            &text,
            r#"http_requests_total{method="GET",route="/healthz",status="200"}"#
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        metric_sample(
            &text,
            r#"http_requests_total{method="GET",route="unmatched",status="404"}"#
        ),
        Some(50.0)
    );
    assert_eq!(
        metric_sample(
            &text,
            r#"http_requests_total{method="POST",route="/api/auth/login",status="400"}"#
        ),
        Some(1.0)
    );
    assert!(!text.contains("probe-"), "raw paths never become labels");
    assert_eq!(
        metric_sample(
            &text,
            r#"http_request_duration_seconds_count{method="GET",route="/healthz"}"#
        ),
        Some(3.0)
    );
    assert!(text.contains(
        r#"http_request_duration_seconds_bucket{method="GET",route="/healthz",le="0.001"}"#
    ));
    assert!(text.contains("http_requests_in_flight"));
    assert!(metric_sample(&text, "db_pool_connections").is_some());
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
        metric_sample(
            &text,
            r#"http_requests_total{method="OTHER",route="/healthz",status="404"}"#
        ),
        Some(3.0),
        "{text}"
    );
}

/// Metric names a PromQL expression selects: identifiers written right before a
/// label matcher `{` or a range `[`, or standing alone.
fn metric_names(expr: &str) -> Vec<String> {
    const NOT_METRICS: &[&str] = &[
        "sum",
        "rate",
        "increase",
        "histogram_quantile",
        "by",
        "le",
        "route",
        "api",
        "offset",
        "errcode",
        "status",
        "and",
        "or",
        "unless",
        "without",
        "avg",
        "max",
        "min",
    ];
    let mut names = Vec::new();
    let mut current = String::new();
    let mut in_braces = false;
    let mut in_quotes = false;
    for c in expr.chars().chain(std::iter::once(' ')) {
        if in_quotes {
            in_quotes = c != '"';
            continue;
        }
        match c {
            '"' => in_quotes = true,
            '{' => in_braces = true,
            '}' => in_braces = false,
            _ => {}
        }
        if !in_braces && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            current.push(c);
            continue;
        }
        let word = std::mem::take(&mut current);
        let is_name = word.starts_with(|ch: char| ch.is_ascii_alphabetic() || ch == '_')
            && !NOT_METRICS.contains(&word.as_str())
            && word.contains('_');
        if is_name {
            names.push(word);
        }
    }
    names
}

#[tokio::test]
async fn the_dashboard_and_alert_rules_only_use_metrics_that_exist() {
    let app = weapp::testing::TestApp::builder().spawn().await;
    // Traffic that makes every family appear: a WeChat call, a 404, a DB query.
    app.login("o_metrics_dashboard").await;
    app.client
        .get(app.url("/no/such/path"))
        .send()
        .await
        .unwrap();
    let exposition = app.metrics().await;

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("observability");
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("grafana-dashboard.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let mut exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect();
    let panels = exprs.len();
    let rules = std::fs::read_to_string(root.join("alerts.yml")).unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&rules).expect("the rules are YAML");
    for group in docs[0]["groups"].as_vec().expect("groups") {
        for rule in group["rules"].as_vec().expect("rules") {
            assert!(rule["alert"].as_str().is_some() && rule["for"].as_str().is_some());
            exprs.push(rule["expr"].as_str().expect("expr").to_owned());
        }
    }
    assert!(panels >= 8 && exprs.len() >= panels + 5, "{exprs:?}");
    let mut checked = 0;
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "no metric found in {expr}");
        for name in names {
            let present = exposition
                .lines()
                .any(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")));
            assert!(
                present,
                "{name} (used in `{expr}`) is not in /metrics:\n{exposition}"
            );
            checked += 1;
        }
    }
    assert!(checked >= exprs.len());
    assert!(
        exposition.contains("wechat_api_requests_total{api=\"jscode2session\",errcode=\"0\"}"),
        "{exposition}"
    );
    app.stop().await.unwrap();
}

#[test]
fn metric_names_are_found_in_promql() {
    assert_eq!(
        metric_names(
            r#"sum(rate(http_requests_total{status=~"5.."}[5m])) by (route) / sum(rate(http_requests_total[5m])) by (route)"#
        ),
        ["http_requests_total", "http_requests_total"]
    );
    assert_eq!(
        metric_names(
            "histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket[5m])) by (le, route))"
        ),
        ["http_request_duration_seconds_bucket"]
    );
    assert_eq!(
        metric_names("increase(db_pool_checkout_timeouts[5m]) > 0"),
        ["db_pool_checkout_timeouts"]
    );
}

#[tokio::test]
async fn metrics_can_move_to_their_own_port() {
    let app = weapp::testing::TestApp::builder()
        .set("observe.metrics_port", 0)
        .spawn()
        .await;
    app.client.get(app.url("/healthz")).send().await.unwrap();
    let on_api_port = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(on_api_port.status(), 404, "not on the API port");
    let addr = app
        .ctx
        .get::<weapp::observe::metrics::MetricsAddr>()
        .expect("the metrics server is bound")
        .0;
    assert_ne!(app.address, format!("http://{addr}"));
    let metrics_url = format!("http://{addr}/metrics");
    let text = app
        .client
        .get(&metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/healthz",status="200"} 1"#),
        "{text}"
    );
    let api_route = app
        .client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(api_route.status(), 404, "only /metrics on the metrics port");
    let client = app.client.clone();
    app.stop().await.unwrap();
    assert!(
        client.get(&metrics_url).send().await.is_err(),
        "stopped with the app"
    );
}

#[tokio::test]
async fn the_cpu_profiler_is_admin_only_and_off_by_default() {
    const ADMIN: &str = "profiling-admin-token-0123456789";
    let off = weapp::testing::TestApp::builder()
        .set("auth.admin_tokens.ops", ADMIN)
        .spawn()
        .await;
    let disabled = off
        .client
        .get(off.url("/debug/pprof/profile?seconds=1"))
        .header("X-Admin-Token", ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 404);
    off.stop().await.unwrap();

    let app = weapp::testing::TestApp::builder()
        .set("auth.admin_tokens.ops", ADMIN)
        .set("observe.profiling_enabled", true)
        .spawn()
        .await;
    let get = |query: &str, token: Option<&str>| {
        let mut request = app
            .client
            .get(app.url(&format!("/debug/pprof/profile?{query}")));
        if let Some(token) = token {
            request = request.header("X-Admin-Token", token);
        }
        request.send()
    };
    assert_eq!(get("seconds=1", None).await.unwrap().status(), 401);
    assert_eq!(get("seconds=0", Some(ADMIN)).await.unwrap().status(), 400);
    assert_eq!(get("seconds=61", Some(ADMIN)).await.unwrap().status(), 400);

    // Some work to sample while the profiler runs: until its answer is back, since
    // on a loaded machine the request may reach the handler late.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = std::thread::spawn({
        let done = done.clone();
        move || {
            let mut x = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            x
        }
    });
    let svg = get("seconds=1&format=svg", Some(ADMIN)).await.unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(svg.status(), 200);
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    let text = svg.text().await.unwrap();
    assert!(text.contains("<svg"), "{}", &text[..text.len().min(200)]);
    busy.join().unwrap();

    let pb = get("seconds=1&format=pb", Some(ADMIN)).await.unwrap();
    assert_eq!(pb.status(), 200);
    let bytes = pb.bytes().await.unwrap();
    use pprof::protos::Message;
    let profile = pprof::protos::Profile::decode(bytes.as_ref()).expect("a pprof protobuf");
    assert!(!profile.sample_type.is_empty());
    assert!(
        profile
            .string_table
            .iter()
            .any(|s| s == "cpu" || s == "samples"),
        "{:?}",
        profile.string_table
    );
    app.stop().await.unwrap();
}
