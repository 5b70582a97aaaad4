//! Retention with a controllable clock: details move to the archive, the chain holds.

use weapp::db::Backend;
use weapp::testing::TestApp;
use weapp_audit::AuditEvent;
use weapp_audit::config::RetentionRule;

async fn retention_on(backend: Backend) {
    let app = TestApp::builder().database(backend).spawn().await;
    for i in 0..3 {
        let login = AuditEvent::new(format!("user:{i}"), "auth.login", format!("user:{i}"))
            .details(serde_json::json!({"client": "wx"}));
        weapp_audit::record(&app.ctx, login).await.unwrap();
    }
    let order = AuditEvent::new("user:1", "order.paid", "order:1");
    weapp_audit::record(&app.ctx, order).await.unwrap();
    weapp_audit::flush(&app.ctx).await.unwrap();
    let rules = [RetentionRule {
        action: "auth.*".into(),
        keep_s: 72 * 3_600,
    }];
    let now = chrono::Utc::now().timestamp_millis();

    let db = app.ctx.db();
    let early = weapp_audit::retention::archive_expired(db, &rules, now + 71 * 3_600_000).await;
    assert_eq!(early.unwrap(), 0, "within 72 h nothing moves");
    let late = weapp_audit::retention::archive_expired(db, &rules, now + 73 * 3_600_000).await;
    assert_eq!(late.unwrap(), 3);
    let again = weapp_audit::retention::archive_expired(db, &rules, now + 74 * 3_600_000).await;
    assert_eq!(again.unwrap(), 0, "archiving is done once");

    let count = |sql: &'static str| app.count(sql);
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM audit_log WHERE details IS NULL").await,
        3
    );
    assert_eq!(count("SELECT COUNT(*) AS n FROM audit_archive").await, 3);
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'order.paid' AND details IS NOT NULL").await,
        1,
        "other actions keep their details"
    );
    let report = weapp_audit::verify::verify(db).await.unwrap();
    assert_eq!(
        (report.rows, report.tampering),
        (4, None),
        "the chain survives archiving"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn retention_archives_expired_details_on_sqlite() {
    retention_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn retention_archives_expired_details_on_postgres() {
    retention_on(Backend::Postgres).await;
}
