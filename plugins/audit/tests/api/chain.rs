//! Recording, verification after tampering, deduplication, concurrency.

use serde_json::json;
use weapp::db::Backend;
use weapp::testing::TestApp;
use weapp_audit::{AuditEvent, Tampering};

async fn spawn(backend: Backend) -> TestApp {
    TestApp::builder().database(backend).spawn().await
}

async fn sql(app: &TestApp, statement: &str) {
    use diesel_async::RunQueryDsl;
    let mut conn = app.ctx.db().conn().await.unwrap();
    weapp::with_conn!(conn, |c| diesel::sql_query(statement).execute(c).await)
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

async fn verify(app: &TestApp) -> weapp_audit::Verification {
    weapp_audit::flush(&app.ctx).await.unwrap();
    weapp_audit::verify::verify(app.ctx.db()).await.unwrap()
}

async fn five_rows(app: &TestApp) {
    for i in 1..=5 {
        let event = AuditEvent::new("admin", "test.action", format!("thing:{i}"))
            .details(json!({"n": i, "phone": "13812348000"}));
        assert!(weapp_audit::record(&app.ctx, event).await.unwrap());
    }
    weapp_audit::flush(&app.ctx).await.unwrap();
}

async fn tampering_is_found(backend: Backend) {
    // Edited details.
    let app = spawn(backend).await;
    five_rows(&app).await;
    let report = verify(&app).await;
    assert_eq!(
        (report.rows, report.tampering.clone()),
        (5, None),
        "{report:?}"
    );
    sql(
        &app,
        "UPDATE audit_log SET details = '{\"n\":99}' WHERE id = 3",
    )
    .await;
    assert_eq!(
        verify(&app).await.tampering,
        Some(Tampering::Edited { id: 3 })
    );
    app.stop().await.unwrap();

    // Edited hashed field.
    let app = spawn(backend).await;
    five_rows(&app).await;
    sql(&app, "UPDATE audit_log SET actor = 'user:1' WHERE id = 2").await;
    assert_eq!(
        verify(&app).await.tampering,
        Some(Tampering::Edited { id: 2 })
    );
    app.stop().await.unwrap();

    // A deleted row in the middle.
    let app = spawn(backend).await;
    five_rows(&app).await;
    sql(&app, "DELETE FROM audit_log WHERE id = 4").await;
    assert_eq!(
        verify(&app).await.tampering,
        Some(Tampering::Deleted {
            first_missing: 4,
            next_present: 5
        })
    );
    app.stop().await.unwrap();

    // The last row deleted.
    let app = spawn(backend).await;
    five_rows(&app).await;
    sql(&app, "DELETE FROM audit_log WHERE id = 5").await;
    assert_eq!(
        verify(&app).await.tampering,
        Some(Tampering::HeadMismatch {
            last_row: 4,
            head: 5
        })
    );
    app.stop().await.unwrap();

    // A row rewritten with a correctly recomputed hash: the next row no longer follows.
    let app = spawn(backend).await;
    five_rows(&app).await;
    sql(&app, "UPDATE audit_log SET hash = prev_hash WHERE id = 2").await;
    let found = verify(&app).await.tampering;
    assert!(
        matches!(
            found,
            Some(Tampering::Edited { id: 2 }) | Some(Tampering::Inserted { id: 3 })
        ),
        "{found:?}"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn tampering_is_found_on_sqlite() {
    tampering_is_found(Backend::Sqlite).await;
}

#[tokio::test]
async fn tampering_is_found_on_postgres() {
    tampering_is_found(Backend::Postgres).await;
}

#[tokio::test]
async fn tampering_is_found_on_mariadb() {
    tampering_is_found(Backend::Mysql).await;
}

#[tokio::test]
async fn personal_data_is_redacted_and_events_are_recorded_once() {
    let app = spawn(Backend::Sqlite).await;
    five_rows(&app).await;
    let event = AuditEvent::new("system", "test.once", "thing:1").event_id("evt-1");
    assert!(weapp_audit::record(&app.ctx, event.clone()).await.unwrap());
    assert!(!weapp_audit::record(&app.ctx, event.clone()).await.unwrap());
    weapp_audit::flush(&app.ctx).await.unwrap();
    // Redelivered after it was chained: staged again, chained once.
    assert!(weapp_audit::record(&app.ctx, event).await.unwrap());
    weapp_audit::flush(&app.ctx).await.unwrap();
    let rows = app
        .texts("SELECT details AS t FROM audit_log WHERE action = 'test.action'")
        .await;
    assert_eq!(rows.len(), 5);
    for details in rows {
        assert!(!details.contains("13812348000"), "{details}");
        assert!(details.contains("[redacted]"));
    }
    assert_eq!(verify(&app).await.rows, 6);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn concurrent_appends_keep_one_chain() {
    let app = spawn(Backend::Postgres).await;
    let appends = (0..40).map(|i| {
        let ctx = app.ctx.clone();
        async move {
            weapp_audit::record(
                &ctx,
                AuditEvent::new("system", "test.parallel", format!("n:{i}")),
            )
            .await
            .unwrap()
        }
    });
    let recorded = futures_util::future::join_all(appends).await;
    assert!(recorded.into_iter().all(|r| r));
    let report = verify(&app).await;
    assert_eq!((report.rows, report.tampering), (40, None));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn logins_and_bus_events_are_audited() {
    let app = spawn(Backend::Sqlite).await;
    let (_, user_id) = app.login("o_audited").await;
    app.ctx
        .events()
        .publish(
            &app.ctx,
            weapp::events::Event {
                id: "order-outbox:7".into(),
                topic: "order.paid".into(),
                payload: json!({"order_id": 7, "user_id": user_id, "total_fen": 100}),
            },
        )
        .await
        .unwrap();
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName, Debug, PartialEq)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        actor: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        action: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        target: String,
    }
    weapp_audit::flush(&app.ctx).await.unwrap();
    let mut conn = app.ctx.db().conn().await.unwrap();
    let rows: Vec<Row> = weapp::with_conn!(conn, |c| {
        diesel::sql_query("SELECT actor, action, target FROM audit_log ORDER BY id")
            .load(c)
            .await
    })
    .unwrap();
    drop(conn);
    let user = format!("user:{user_id}");
    assert_eq!(
        rows,
        [
            Row {
                actor: user.clone(),
                action: "auth.login".into(),
                target: user.clone()
            },
            Row {
                actor: "payment".into(),
                action: "order.paid".into(),
                target: "order:7".into()
            },
        ]
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_idle_chainer_takes_no_lock_and_a_busy_one_waits_for_it() {
    use diesel_async::SimpleAsyncConnection;
    let app = spawn(Backend::Postgres).await;
    weapp_audit::flush(&app.ctx).await.unwrap();
    // Another session holds the chain head.
    let mut holder = app.ctx.db().conn().await.unwrap();
    weapp::with_conn!(holder, |c| {
        c.batch_execute("BEGIN; SELECT * FROM audit_chain_head WHERE id = 1 FOR UPDATE")
            .await
    })
    .unwrap();
    // Nothing staged: chaining is a no-op and does not queue behind the lock.
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        weapp_audit::flush(&app.ctx),
    )
    .await
    .expect("an idle chainer does not wait for the head lock")
    .unwrap();
    // Something staged: chaining needs the lock, so it waits until it is released.
    let event = AuditEvent::new("admin", "test.locked", "thing:1");
    assert!(weapp_audit::record(&app.ctx, event).await.unwrap());
    let ctx = app.ctx.clone();
    let chaining = tokio::spawn(async move { weapp_audit::flush(&ctx).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!chaining.is_finished(), "chaining waited for the head lock");
    weapp::with_conn!(holder, |c| c.batch_execute("ROLLBACK").await).unwrap();
    drop(holder);
    chaining.await.unwrap().unwrap();
    assert_eq!(verify(&app).await.rows, 1);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_batch_from_the_bus_is_chained_at_once_and_redeliveries_are_skipped() {
    let app = spawn(Backend::Postgres).await;
    let event = |id: &str, order: i64| weapp::events::Event {
        id: id.to_owned(),
        topic: "order.created".to_owned(),
        payload: json!({"order_id": order, "user_id": 7, "total_fen": 100}),
    };
    let bus = app.ctx.events();
    let first = bus
        .publish_batch(&app.ctx, vec![event("test:1", 1), event("test:2", 2)])
        .await;
    assert!(first.iter().all(Result::is_ok), "{first:?}");
    // Chained straight away: nothing waits in staging.
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM audit_pending").await,
        0
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_log").await, 2);
    // A redelivered batch (the outbox is at least once) adds only what is new, even
    // when it names an event twice.
    let again = bus
        .publish_batch(
            &app.ctx,
            vec![event("test:2", 2), event("test:3", 3), event("test:3", 3)],
        )
        .await;
    assert!(again.iter().all(Result::is_ok), "{again:?}");
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM audit_log WHERE event_id LIKE 'test:%'")
            .await,
        3
    );
    let report = verify(&app).await;
    assert_eq!((report.rows, report.tampering), (3, None));
    app.stop().await.unwrap();
}

/// A bus event's details keep only the keys allowed for its topic: personal fields
/// a publisher sends (whatever their spelling) never reach the append-only log.
#[tokio::test]
async fn bus_event_details_keep_only_allowed_keys() {
    let app = spawn(Backend::Sqlite).await;
    let events = [
        (
            "auth.profile",
            json!({"user_id": 5, "nickName": "Band", "avatarUrl": "https://x/a.png",
                   "phoneNumber": "13812348000", "reason": "shared"}),
        ),
        (
            "wechat.push.text",
            json!({"MsgType": "text", "Content": "my address is …", "FromUserName": "o_secret",
                   "CreateTime": 1764000000, "MsgId": 9}),
        ),
        (
            "order.created",
            json!({"order_id": 8, "user_id": 5, "total_fen": 300, "address": "Somewhere"}),
        ),
    ];
    for (i, (topic, payload)) in events.iter().enumerate() {
        app.ctx
            .events()
            .publish(
                &app.ctx,
                weapp::events::Event {
                    id: format!("allow-list:{i}"),
                    topic: (*topic).into(),
                    payload: payload.clone(),
                },
            )
            .await
            .unwrap();
    }
    weapp_audit::flush(&app.ctx).await.unwrap();
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName, Debug)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        action: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        details: String,
    }
    let mut conn = app.ctx.db().conn().await.unwrap();
    let rows: Vec<Row> = weapp::with_conn!(conn, |c| {
        diesel::sql_query("SELECT action, details FROM audit_log ORDER BY id")
            .load(c)
            .await
    })
    .unwrap();
    drop(conn);
    let details = |action: &str| -> serde_json::Value {
        let row = rows.iter().find(|r| r.action == action).expect(action);
        serde_json::from_str(&row.details).unwrap()
    };
    assert_eq!(
        details("auth.profile"),
        json!({"user_id": 5, "reason": "shared"})
    );
    assert_eq!(
        details("wechat.push.text"),
        json!({"MsgType": "text", "CreateTime": 1764000000})
    );
    assert_eq!(
        details("order.created"),
        json!({"order_id": 8, "user_id": 5, "total_fen": 300})
    );
    for row in &rows {
        for personal in [
            "Band",
            "a.png",
            "13812348000",
            "address",
            "o_secret",
            "Somewhere",
        ] {
            assert!(
                !row.details.contains(personal),
                "{personal} in {}",
                row.details
            );
        }
    }
    app.stop().await.unwrap();
}
