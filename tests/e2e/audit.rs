//! What the composed app audits on its own.

use serde_json::json;
use weapp::testing::TestApp;

#[tokio::test]
async fn a_body_with_an_unknown_field_is_refused_and_audited() {
    let app = TestApp::builder().spawn().await;
    let (token, user_id) = app.login("o_rejected_body").await;
    let response = app
        .client
        .post(app.url("/api/orders"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "k-rejected")
        .json(&json!({"items": [{"product_id": 1, "qty": 1}], "discount": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unknown_field");

    weapp_audit::flush(&app.ctx).await.unwrap();
    let entries = weapp_audit::verify::rows_about(app.ctx.db(), &format!("user:{user_id}"))
        .await
        .unwrap();
    let rejected: Vec<_> = entries
        .iter()
        .filter(|e| e["action"] == "request.rejected")
        .collect();
    assert_eq!(rejected.len(), 1, "{entries:?}");
    let rows = app
        .texts("SELECT details AS t FROM audit_log WHERE action = 'request.rejected'")
        .await;
    let details: serde_json::Value = serde_json::from_str(&rows[0]).unwrap();
    assert_eq!(details["route"], "/api/orders");
    assert_eq!(details["field"], "discount");
    assert!(rows[0].len() < 200, "no body content is kept: {}", rows[0]);
    app.stop().await.unwrap();
}

/// Without an account nobody grows the append-only log: an anonymous rejection is
/// counted in a metric, not audited.
#[tokio::test]
async fn an_anonymous_body_with_an_unknown_field_is_counted_not_audited() {
    let app = TestApp::builder().spawn().await;
    for _ in 0..3 {
        let response = app
            .client
            .post(app.url("/api/auth/login"))
            .json(&json!({"code": "anything", "padding": "x".repeat(100)}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "unknown_field");
    }
    weapp_audit::flush(&app.ctx).await.unwrap();
    let rows = app
        .texts("SELECT action AS t FROM audit_log WHERE action = 'request.rejected'")
        .await;
    assert!(rows.is_empty(), "{rows:?}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(
            r#"http_rejected_bodies_total{reason="unknown_field",route="/api/auth/login"} 3"#
        ),
        "{metrics}"
    );
    app.stop().await.unwrap();
}
