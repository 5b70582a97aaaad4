//! Browse, order, pay, cancel: the buyer's path on each backend.

use std::sync::{Arc, Mutex};

use serde_json::json;
use weapp::db::Backend;

use crate::support::*;

async fn journey(backend: Backend) {
    let app = builder(backend).spawn().await;
    let tea = product(&app, 1_250, 10).await;
    let cake = product(&app, 3_000, 5).await;
    let topics = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = topics.clone();
    app.ctx
        .events()
        .subscribe("journey-test", "order.*", move |_, event| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(event.topic.clone());
                Ok(())
            }
        });

    // Browsing is public.
    let (status, page) = get(&app, "/api/products?per_page=1", None).await;
    assert_eq!(status, 200);
    assert_eq!(page["items"][0]["id"], tea);
    assert_eq!(page["has_more"], true);
    let (_, page2) = get(&app, "/api/products?page=2&per_page=1", None).await;
    assert_eq!(page2["items"][0]["id"], cake);
    assert_eq!(page2["has_more"], false);
    let (status, _) = get(&app, "/api/products/999999", None).await;
    assert_eq!(status, 404);

    let (token, user_id) = app.login("o_journey_buyer").await;
    let (status, created, replayed) = place(
        &app,
        &token,
        key(),
        json!([{"product_id": cake, "qty": 1}, {"product_id": tea, "qty": 2}]),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert!(!replayed);
    assert_eq!(created["status"], "pending");
    assert_eq!(created["total_fen"], 2 * 1_250 + 3_000);
    let order_id = created["order_id"].as_i64().unwrap();
    assert_eq!(stock(&app, tea).await, 8);
    assert_eq!(stock(&app, cake).await, 4);

    let (status, view) = get(&app, &format!("/api/orders/{order_id}"), Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(view["items"].as_array().unwrap().len(), 2);
    assert_eq!(view["items"][0]["price_fen"], 1_250);

    // Someone else's order does not exist for them.
    let (other, _) = app.login("o_journey_other").await;
    let (status, body) = get(&app, &format!("/api/orders/{order_id}"), Some(&other)).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, _) = get(&app, "/api/orders", None).await;
    assert_eq!(status, 401);

    // Only the buyer gets the payment parameters.
    let (status, _) = pay_params(&app, &other, order_id).await;
    assert_eq!(status, 404);
    let params = pay(&app, &token, order_id).await;
    assert!(
        params["package"]
            .as_str()
            .unwrap()
            .starts_with("prepay_id=")
    );
    assert_eq!(params["signType"], "RSA");
    let (_, view) = get(&app, &format!("/api/orders/{order_id}"), Some(&token)).await;
    assert_eq!(view["status"], "paid");
    assert!(view["paid_at"].is_string());

    // A paid order cannot be cancelled.
    assert_eq!(cancel(&app, &token, order_id).await, 409);

    // A second order, cancelled by its buyer: stock comes back.
    let (_, second, _) = place(&app, &token, key(), json!([{"product_id": tea, "qty": 3}])).await;
    let second_id = second["order_id"].as_i64().unwrap();
    assert_eq!(stock(&app, tea).await, 5);
    let cancel_second = |token: String| {
        let url = app.url(&format!("/api/orders/{second_id}/cancel"));
        let client = app.client.clone();
        async move { client.post(url).bearer_auth(token).send().await.unwrap() }
    };
    assert_eq!(
        cancel_second(other.clone()).await.status(),
        404,
        "not the owner"
    );
    let response = cancel_second(token.clone()).await;
    assert_eq!(response.status(), 200);
    let view: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        (view["status"].as_str(), view["cancel_reason"].as_str()),
        (Some("cancelled"), Some("user"))
    );
    assert_eq!(stock(&app, tea).await, 8);
    assert_eq!(
        cancel_second(token.clone()).await.status(),
        200,
        "cancelling twice is harmless"
    );
    assert_eq!(stock(&app, tea).await, 8, "restocked once");

    let (status, list) = get(&app, "/api/orders?per_page=1", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(list["items"][0]["order_id"], second_id, "newest first");
    assert_eq!(list["has_more"], true);
    let (_, list) = get(&app, "/api/orders", Some(&token)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    eventually("the outbox delivered every event", || {
        let topics = topics.clone();
        async move { topics.lock().unwrap().len() == 4 }
    })
    .await;
    let mut seen = topics.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [
            "order.cancelled",
            "order.created",
            "order.created",
            "order.paid"
        ]
    );
    // Handlers run before their batch is marked done: wait for the marking too.
    eventually("every outbox row is marked done", || {
        let app = &app;
        async move {
            count(
                app,
                "SELECT COUNT(*) AS n FROM order_outbox WHERE state <> 'done'",
            )
            .await
                == 0
        }
    })
    .await;
    let mine = count(
        &app,
        &format!("SELECT COUNT(*) AS n FROM orders WHERE user_id = {user_id}"),
    )
    .await;
    assert_eq!(mine, 2);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn journey_on_sqlite() {
    journey(Backend::Sqlite).await;
}

#[tokio::test]
async fn journey_on_postgres() {
    journey(Backend::Postgres).await;
}

#[tokio::test]
async fn journey_on_mariadb() {
    journey(Backend::Mysql).await;
}

#[tokio::test]
async fn unpaid_orders_expire_and_restock() {
    let app = builder(Backend::Sqlite)
        .set("order.unpaid_timeout_s", 0)
        .set("order.expiry_interval_ms", 50)
        .spawn()
        .await;
    let tea = product(&app, 100, 3).await;
    let (token, _) = app.login("o_expiry").await;
    let (status, created, _) =
        place(&app, &token, key(), json!([{"product_id": tea, "qty": 2}])).await;
    assert_eq!(status, 201);
    let order_id = created["order_id"].as_i64().unwrap();
    eventually("the unpaid order is cancelled", || {
        let app = &app;
        let token = token.clone();
        async move {
            let (_, view) = get(app, &format!("/api/orders/{order_id}"), Some(&token)).await;
            view["status"] == "cancelled"
        }
    })
    .await;
    let (_, view) = get(&app, &format!("/api/orders/{order_id}"), Some(&token)).await;
    assert_eq!(view["cancel_reason"], "timeout");
    assert_eq!(stock(&app, tea).await, 3);
    // It cannot be paid now; a payment that arrives anyway is an anomaly on record,
    // acknowledged (no retry would change it), not a payment.
    let (status, body) = pay_params(&app, &token, order_id).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (409, Some("order_not_payable"))
    );
    let (status, _) = notify(&app, order_id, "4200000000late", 200, "o_expiry").await;
    assert_eq!(status, 204);
    assert_eq!(status_of(&app, order_id).await, "cancelled");
    let anomaly = app
        .texts("SELECT payload AS t FROM order_outbox WHERE topic = 'payment.anomaly'")
        .await;
    assert!(anomaly[0].contains("order_not_payable"), "{anomaly:?}");
    app.stop().await.unwrap();
}
