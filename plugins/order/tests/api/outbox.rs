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

/// Several workers (instances) sweeping one outbox in small batches: each event is
/// delivered once. PostgreSQL claims with `SKIP LOCKED`, MariaDB with the
/// read-then-conditional-update claim. The events are due and nobody was told of
/// them (a stopped instance's, say), so only the sweeps find them.
async fn competing_workers_deliver_each_event_once(backend: Backend) {
    let app = builder(backend)
        .set("order.outbox.batch_size", 4)
        .spawn()
        .await;
    let seen = recorder(&app);
    let now = chrono::Utc::now().timestamp_millis();
    insert_outbox_events(&app, "order.swept", 30, now).await;
    let orders = orders(&app);
    let workers =
        (0..3).map(|_| async { while orders.deliver_outbox(&app.ctx).await.unwrap() > 0 {} });
    futures_util::future::join_all(workers).await;
    eventually("every event is delivered", || {
        let seen = seen.clone();
        async move { seen.lock().unwrap().len() >= 30 }
    })
    .await;
    let mut ids: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, id)| id.clone())
        .collect();
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
    // The product's `catalog.product_added` and the order's `order.created`.
    eventually("the events are delivered", || {
        let app = &app;
        async move {
            count(
                app,
                "SELECT COUNT(*) AS n FROM order_outbox WHERE state = 'done'",
            )
            .await
                == 2
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
    assert_eq!(orders.purge_outbox(now + 61_000).await.unwrap(), 2);
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM order_outbox").await,
        0
    );
    app.stop().await.unwrap();
}

/// `(topic, id)` of every `order.*` event a subscriber saw, in delivery order.
fn recorder(app: &weapp::testing::TestApp) -> Arc<std::sync::Mutex<Vec<(String, String)>>> {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    app.ctx
        .events()
        .subscribe("hint-test", "order.*", move |_, event| {
            let record = record.clone();
            async move {
                let seen = (event.topic.clone(), event.id.clone());
                record.lock().unwrap().push(seen);
                Ok(())
            }
        });
    seen
}

/// With the sweep an hour away, events still go out: the transactions that wrote
/// them (placing, cancelling) hand their ids to the worker, and those ids are the
/// rows' own (each backend learns it its own way: `RETURNING`, `LAST_INSERT_ID()`).
/// An event nobody handed over waits for the sweep.
async fn committed_events_are_delivered_by_their_ids(backend: Backend) {
    let app = builder(backend)
        .set("order.outbox.sweep_interval_ms", 3_600_000)
        .spawn()
        .await;
    let seen = recorder(&app);
    // Due only after the worker's first sweep (at start) is surely over.
    let due_at = chrono::Utc::now().timestamp_millis() + 300;
    insert_outbox_events(&app, "order.unhinted", 1, due_at).await;

    let tea = product(&app, 100, 10).await;
    let (token, _) = app.login("o_outbox_hinted").await;
    let (status, order, _) =
        place(&app, &token, key(), json!([{"product_id": tea, "qty": 1}])).await;
    assert_eq!(status, 201, "{order}");
    let order_id = order["order_id"].as_i64().unwrap();
    assert_eq!(cancel(&app, &token, order_id).await, 200);
    eventually("both events are delivered", || {
        let seen = seen.clone();
        async move { seen.lock().unwrap().len() >= 2 }
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;

    let delivered = seen.lock().unwrap().clone();
    let topics: Vec<&str> = delivered.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        topics,
        ["order.created", "order.cancelled"],
        "{delivered:?}"
    );
    for (topic, id) in &delivered {
        let row: i64 = id
            .strip_prefix(weapp_order::outbox::EVENT_ID_PREFIX)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("event id {id}"));
        let sql = format!(
            "SELECT COUNT(*) AS n FROM order_outbox WHERE id = {row} AND topic = '{topic}' \
             AND state = 'done' AND attempts = 1"
        );
        assert_eq!(
            count(&app, &sql).await,
            1,
            "{topic} is row {row}, delivered once"
        );
    }
    let unhinted = "SELECT COUNT(*) AS n FROM order_outbox WHERE topic = 'order.unhinted' AND state = 'pending' AND attempts = 0";
    assert_eq!(count(&app, unhinted).await, 1, "due, but nobody named it");

    assert_eq!(orders(&app).deliver_outbox(&app.ctx).await.unwrap(), 1);
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert_eq!(seen.lock().unwrap()[2].0, "order.unhinted");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn committed_events_are_delivered_by_their_ids_on_postgres() {
    committed_events_are_delivered_by_their_ids(Backend::Postgres).await;
}

#[tokio::test]
async fn committed_events_are_delivered_by_their_ids_on_mariadb() {
    committed_events_are_delivered_by_their_ids(Backend::Mysql).await;
}

#[tokio::test]
async fn committed_events_are_delivered_by_their_ids_on_sqlite() {
    committed_events_are_delivered_by_their_ids(Backend::Sqlite).await;
}

#[tokio::test]
async fn subscribers_get_the_plugins_events_as_types() {
    use weapp::events::Delivered;
    use weapp_order::events::{Cancelled, Created, Paid};

    let app = builder(Backend::Sqlite).spawn().await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    {
        let events = app.ctx.events();
        let created = seen.clone();
        events.on("typed-test", move |_, e: Delivered<Created>| {
            created.lock().unwrap().push(format!(
                "created {} by {:?} for {}",
                e.event.order_id, e.event.user_id, e.event.total_fen
            ));
            async { Ok(()) }
        });
        let paid = seen.clone();
        events.on("typed-test", move |_, e: Delivered<Paid>| {
            paid.lock().unwrap().push(format!(
                "paid {} for {}",
                e.event.order_id, e.event.total_fen
            ));
            async { Ok(()) }
        });
        let cancelled = seen.clone();
        events.on("typed-test", move |_, e: Delivered<Cancelled>| {
            cancelled.lock().unwrap().push(format!(
                "cancelled {} ({})",
                e.event.order_id, e.event.reason
            ));
            async { Ok(()) }
        });
    }
    let tea = product(&app, 700, 10).await;
    let (token, user_id) = app.login("o_typed").await;
    let (_, first, _) = place(&app, &token, key(), json!([{"product_id": tea, "qty": 2}])).await;
    let (_, second, _) = place(&app, &token, key(), json!([{"product_id": tea, "qty": 1}])).await;
    let (first, second) = (
        first["order_id"].as_i64().unwrap(),
        second["order_id"].as_i64().unwrap(),
    );
    assert_eq!(
        notify(&app, first, "4200000000typed", 1_400, "o_typed")
            .await
            .0,
        204
    );
    assert_eq!(cancel(&app, &token, second).await, 200);

    let expected = [
        format!("created {first} by Some({user_id}) for 1400"),
        format!("created {second} by Some({user_id}) for 700"),
        format!("paid {first} for 1400"),
        format!("cancelled {second} (user)"),
    ];
    eventually("every event reaches its typed subscriber", || {
        let seen = seen.clone();
        let expected = expected.clone();
        async move {
            let mut got = seen.lock().unwrap().clone();
            got.sort();
            let mut want = expected.to_vec();
            want.sort();
            got == want
        }
    })
    .await;
    app.stop().await.unwrap();
}
