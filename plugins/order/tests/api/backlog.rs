//! Event delivery that falls behind pushes back on new orders: past
//! `order.outbox.max_behind` events not handled yet they get 429 `events_behind`
//! with `Retry-After`, and `order_events_behind` reports the count.

use serde_json::{Value, json};
use weapp::db::Backend;

use crate::support::*;

const TOPIC: &str = "order.backlog_test";

#[tokio::test]
async fn orders_wait_while_event_delivery_is_behind_and_resume_after() {
    let app = builder(Backend::Sqlite)
        .set("order.outbox.max_behind", 5)
        .spawn()
        .await;
    let tea = product(&app, 100, 10).await;
    let (token, _) = app.login("o_backlog").await;
    // Five events not due for an hour: pending, as when delivery cannot keep up.
    let later = chrono::Utc::now().timestamp_millis() + 3_600_000;
    insert_outbox_events(&app, TOPIC, 5, later).await;
    eventually("the worker counted the backlog", || async {
        orders(&app).events_behind() == Some(5)
    })
    .await;

    let refused = place_raw(&app, &token, key(), json!([{"product_id": tea, "qty": 1}])).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "events_behind", "{body}");
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM orders").await, 0);
    let metrics = app.metrics().await;
    assert_eq!(
        weapp::testing::metric_sample(&metrics, "order_events_behind "),
        Some(5.0)
    );
    // The plugin's alert rule watches that very gauge.
    let rules = include_str!("../../observability/alerts.yml");
    assert!(
        rules.contains("expr: max(order_events_behind) > "),
        "{rules}"
    );

    // Delivery caught up: orders are taken again.
    app.execute(&format!("DELETE FROM order_outbox WHERE topic = '{TOPIC}'"))
        .await;
    eventually("the backlog cleared", || async {
        orders(&app).events_behind().is_none()
    })
    .await;
    let (status, order, _) =
        place(&app, &token, key(), json!([{"product_id": tea, "qty": 1}])).await;
    assert_eq!(status, 201, "{order}");
    app.stop().await.unwrap();
}
