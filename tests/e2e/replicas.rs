//! The shop on a PostgreSQL primary with a streaming replica: the public catalogue
//! is read from the replica, and a buyer always sees their own new order even
//! while the replica has not applied it.

use serde_json::{Value, json};
use weapp::testing::{ReplicatedDatabase, TestApp};

use crate::support::json_of;

const ADMIN: &str = "replica-admin-token-0123456789";

async fn add_product(app: &TestApp, name: &str) -> i64 {
    let added = app
        .client
        .post(app.url("/api/admin/products"))
        .header("X-Admin-Token", ADMIN)
        .json(&json!({"name": name, "price_fen": 500, "stock": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    added.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// One unit of `product_id`, ordered by the holder of `token`; returns the order id.
async fn place_order(app: &TestApp, token: &str, key: &str, product_id: i64) -> i64 {
    let placed = app
        .client
        .post(app.url("/api/orders"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&json!({"items": [{"product_id": product_id, "qty": 1}]}))
        .send()
        .await
        .unwrap();
    json_of(placed, 201).await["order_id"].as_i64().unwrap()
}

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = app.client.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn catalogue_names(app: &TestApp) -> Vec<String> {
    let (status, body) = get(app, "/api/products?per_page=100", None).await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn wait_until_replica_in_use(app: &TestApp) {
    for _ in 0..200 {
        if app.ctx.db().replica_standings().iter().all(|r| r.usable) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!(
        "replica never in use: {:?}",
        app.ctx.db().replica_standings()
    );
}

#[tokio::test]
async fn the_catalogue_comes_from_the_replica_and_a_buyer_reads_their_own_writes() {
    let pair = ReplicatedDatabase::create_pausable().await;
    let app = TestApp::builder()
        .database_url(pair.url())
        .redis()
        .set("database.replica_urls", [pair.replica_url()])
        // Lenient bound, so the paused replica stays in use for this test.
        .set("database.max_replica_lag_ms", 600_000)
        .set("database.replica_check_interval_ms", 20)
        .set("auth.admin_tokens.ops", ADMIN)
        .spawn()
        .await;
    wait_until_replica_in_use(&app).await;
    let first = add_product(&app, "replicated-first").await;
    pair.wait_replayed().await;
    assert!(
        catalogue_names(&app)
            .await
            .contains(&"replicated-first".to_owned())
    );
    let (buyer, _) = app.login("o_replica_buyer").await;
    let (browser, _) = app.login("o_replica_browser").await;

    pair.pause_replay().await;
    let second = add_product(&app, "replicated-second").await;
    // Served by the replica, which has not applied the new product yet.
    assert!(
        !catalogue_names(&app)
            .await
            .contains(&"replicated-second".to_owned())
    );
    assert_eq!(
        get(&app, &format!("/api/products/{second}"), None).await.0,
        404
    );
    assert_eq!(get(&app, "/api/admin/products", None).await.0, 401);

    let order_id = place_order(&app, &buyer, "replica-order-1", first).await;
    // The buyer has just written: their reads go to the primary.
    let (status, list) = get(&app, "/api/orders", Some(&buyer)).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"][0]["order_id"], order_id, "{list}");
    let (status, one) = get(&app, &format!("/api/orders/{order_id}"), Some(&buyer)).await;
    assert_eq!((status, &one["status"]), (200, &json!("pending")), "{one}");
    // Someone else's view is the replica's, as before.
    let (status, none) = get(&app, "/api/orders", Some(&browser)).await;
    assert_eq!((status, &none["items"]), (200, &json!([])), "{none}");

    pair.resume_replay().await;
    pair.wait_replayed().await;
    assert!(
        catalogue_names(&app)
            .await
            .contains(&"replicated-second".to_owned())
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("db_replica_usable{replica=\"postgres://postgres@127.0.0.1:5443/"),
        "{metrics}"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn without_the_write_marker_a_buyer_would_read_stale_orders() {
    // The counter-test of the one above: the same write seen through a replica that
    // has not applied it is missing, so the marker is what makes it visible.
    let pair = ReplicatedDatabase::create_pausable().await;
    let app = TestApp::builder()
        .database_url(pair.url())
        .set("database.replica_urls", [pair.replica_url()])
        .set("database.max_replica_lag_ms", 600_000)
        .set("database.replica_check_interval_ms", 20)
        .set("auth.admin_tokens.ops", ADMIN)
        .spawn()
        .await;
    wait_until_replica_in_use(&app).await;
    let product = add_product(&app, "marker").await;
    let (buyer, user_id) = app.login("o_replica_marker").await;
    pair.wait_replayed().await;
    pair.pause_replay().await;
    place_order(&app, &buyer, "replica-order-2", product).await;
    assert_eq!(
        get(&app, "/api/orders", Some(&buyer)).await.1["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Forget the marker (as if the window had passed with the replica still behind,
    // which the lag bound rules out): the replica's stale answer shows.
    app.ctx
        .kv()
        .delete(&format!("db:wrote:{user_id}"))
        .await
        .unwrap();
    assert_eq!(
        get(&app, "/api/orders", Some(&buyer)).await.1["items"],
        json!([])
    );
    pair.resume_replay().await;
    app.stop().await.unwrap();
}
