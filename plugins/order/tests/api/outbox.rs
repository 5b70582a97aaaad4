//! The outbox: events after commit, retried until handlers succeed, parked after the
//! last attempt; and registration of the plugin itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use weapp::db::Backend;

use crate::support::*;

#[tokio::test]
async fn the_plugin_is_registered_by_linking_it() {
    let names: Vec<&str> = weapp::plugin::registered()
        .iter()
        .map(|p| p.name())
        .collect();
    assert!(names.contains(&"order"), "{names:?}");
}

#[tokio::test]
async fn a_failing_handler_is_retried_until_it_succeeds() {
    let app = builder(Backend::Sqlite)
        .set("order.outbox.base_backoff_ms", 10)
        .spawn()
        .await;
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    app.ctx
        .events()
        .subscribe("flaky-test", "order.created", move |_, _| {
            let seen = seen.clone();
            async move {
                if seen.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(weapp::Error::internal("downstream unavailable"))
                } else {
                    Ok(())
                }
            }
        });
    let tea = product(&app, 100, 10).await;
    let (token, _) = app.login("o_outbox").await;
    place(&app, &token, key(), json!([{"product_id": tea, "qty": 1}])).await;
    eventually("the event is delivered on the third attempt", || {
        let app = &app;
        async move {
            count(
                app,
                "SELECT COUNT(*) AS n FROM order_outbox WHERE state = 'done' AND attempts = 3",
            )
            .await
                == 1
        }
    })
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_event_that_keeps_failing_is_parked() {
    let app = builder(Backend::Postgres)
        .set("order.outbox.base_backoff_ms", 5)
        .set("order.outbox.max_attempts", 3)
        .spawn()
        .await;
    app.ctx
        .events()
        .subscribe("broken-test", "order.created", |_, _| async {
            Err(weapp::Error::internal("always failing"))
        });
    let tea = product(&app, 100, 10).await;
    let (token, _) = app.login("o_outbox_failed").await;
    place(&app, &token, key(), json!([{"product_id": tea, "qty": 1}])).await;
    eventually("the event is parked as failed", || {
        let app = &app;
        async move {
            count(app, "SELECT COUNT(*) AS n FROM order_outbox WHERE state = 'failed' AND attempts = 3 AND last_error LIKE '%always failing%' AND done_at IS NOT NULL").await == 1
        }
    })
    .await;
    app.stop().await.unwrap();
}

/// Several workers (instances) draining one outbox in small batches: each event is
/// delivered once. PostgreSQL claims with `SKIP LOCKED`, MariaDB with the
/// read-then-conditional-update claim.
async fn competing_workers_deliver_each_event_once(backend: Backend) {
    let app = builder(backend)
        .set("order.outbox.batch_size", 4)
        .spawn()
        .await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let record = seen.clone();
    app.ctx
        .events()
        .subscribe("count-test", "order.created", move |_, event| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(event.id.clone());
                Ok(())
            }
        });
    let tea = product(&app, 100, 1_000).await;
    let (token, _) = app.login("o_outbox_workers").await;
    for _ in 0..30 {
        place(&app, &token, key(), json!([{"product_id": tea, "qty": 1}])).await;
    }
    let orders = orders(&app);
    let workers =
        (0..3).map(|_| async { while orders.deliver_outbox(&app.ctx).await.unwrap() > 0 {} });
    futures_util::future::join_all(workers).await;
    eventually("every event is delivered", || {
        let seen = seen.clone();
        async move { seen.lock().unwrap().len() >= 30 }
    })
    .await;
    let mut ids = seen.lock().unwrap().clone();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30);
    assert_eq!(seen.lock().unwrap().len(), 30, "no event delivered twice");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn competing_workers_deliver_each_event_once_on_postgres() {
    competing_workers_deliver_each_event_once(Backend::Postgres).await;
}

#[tokio::test]
async fn competing_workers_deliver_each_event_once_on_mariadb() {
    competing_workers_deliver_each_event_once(Backend::Mysql).await;
}

/// Finished events are deleted after `order.outbox.keep_finished_s`; pending ones
/// never are.
#[tokio::test]
async fn finished_events_are_purged_after_their_time() {
    let app = builder(Backend::Sqlite)
        .set("order.outbox.keep_finished_s", 60)
        .spawn()
        .await;
    let tea = product(&app, 100, 10).await;
    let (token, _) = app.login("o_outbox_purge").await;
    place(&app, &token, key(), json!([{"product_id": tea, "qty": 1}])).await;
    eventually("the event is delivered", || {
        let app = &app;
        async move {
            count(
                app,
                "SELECT COUNT(*) AS n FROM order_outbox WHERE state = 'done'",
            )
            .await
                == 1
        }
    })
    .await;
    let orders = orders(&app);
    let now = chrono::Utc::now().timestamp_millis();
    assert_eq!(
        orders.purge_outbox(now).await.unwrap(),
        0,
        "kept for a minute"
    );
    assert_eq!(orders.purge_outbox(now + 61_000).await.unwrap(), 1);
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM order_outbox").await,
        0
    );
    app.stop().await.unwrap();
}
