//! `Idempotency-Key`: replays, reuse with another body, concurrency, refusals.

use serde_json::json;
use weapp::db::Backend;

use crate::support::*;

#[tokio::test]
async fn a_retry_gets_the_first_answer_and_no_second_order() {
    let app = builder(Backend::Sqlite).spawn().await;
    let tea = product(&app, 500, 10).await;
    let (token, user_id) = app.login("o_idem").await;
    let k = key();
    let items = json!([{"product_id": tea, "qty": 2}]);
    let (status, first, replayed) = place(&app, &token, &k, items.clone()).await;
    assert_eq!((status.as_u16(), replayed), (201, false));
    let (status, again, replayed) = place(&app, &token, &k, items).await;
    assert_eq!((status.as_u16(), replayed), (201, true));
    assert_eq!(first, again);
    assert_eq!(stock(&app, tea).await, 8, "stock taken once");
    let orders = count(
        &app,
        &format!("SELECT COUNT(*) AS n FROM orders WHERE user_id = {user_id}"),
    )
    .await;
    assert_eq!(orders, 1);

    // The same key with another body is a client bug.
    let (status, body, _) = place(&app, &token, &k, json!([{"product_id": tea, "qty": 3}])).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );

    // Keys are per user: another user's identical key is a new order.
    let (other, _) = app.login("o_idem_other").await;
    let (status, theirs, replayed) =
        place(&app, &other, &k, json!([{"product_id": tea, "qty": 2}])).await;
    assert_eq!((status.as_u16(), replayed), (201, false));
    assert_ne!(theirs["order_id"], first["order_id"]);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn out_of_stock_keeps_nothing_and_replays_the_refusal() {
    let app = builder(Backend::Postgres).spawn().await;
    let scarce = product(&app, 100, 1).await;
    let plenty = product(&app, 200, 5).await;
    let (token, user_id) = app.login("o_oos").await;
    let k = key();
    let items = json!([{"product_id": plenty, "qty": 2}, {"product_id": scarce, "qty": 2}]);
    let (status, body, _) = place(&app, &token, &k, items.clone()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "out_of_stock");
    assert_eq!(body["product_id"], scarce);
    assert!(
        body["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "a refusal names its request like any error: {body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&scarce.to_string())
    );
    assert_eq!(
        stock(&app, plenty).await,
        5,
        "the other line's stock is untouched"
    );
    assert_eq!(stock(&app, scarce).await, 1);
    let kept = count(
        &app,
        &format!("SELECT COUNT(*) AS n FROM orders WHERE user_id = {user_id}"),
    )
    .await;
    assert_eq!(kept, 0, "nothing of the order is kept");
    let items_kept = count(&app, "SELECT COUNT(*) AS n FROM order_items").await;
    assert_eq!(items_kept, 0);

    let (status, mut again, replayed) = place(&app, &token, &k, items).await;
    assert_eq!((status.as_u16(), replayed), (409, true));
    assert!(
        again["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{again}"
    );
    assert_ne!(
        again["request_id"], body["request_id"],
        "the replay's own id"
    );
    let mut body = body;
    again.as_object_mut().unwrap().remove("request_id");
    body.as_object_mut().unwrap().remove("request_id");
    assert_eq!(again, body, "otherwise the same answer");
    app.stop().await.unwrap();
}

async fn one_key_many_requests(backend: Backend) {
    let app = builder(backend).spawn().await;
    let tea = product(&app, 100, 100).await;
    let (token, user_id) = app.login("o_idem_race").await;
    let k = key();
    let attempts = (0..12).map(|_| place(&app, &token, &k, json!([{"product_id": tea, "qty": 1}])));
    let answers = futures_util::future::join_all(attempts).await;
    let mut order_ids = std::collections::BTreeSet::new();
    for (status, body, _) in &answers {
        match status.as_u16() {
            201 => {
                order_ids.insert(body["order_id"].as_i64().unwrap());
            }
            409 => assert_eq!(body["code"], "request_in_progress", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(
        order_ids.len(),
        1,
        "every 201 names the same order: {answers:?}"
    );
    let orders = count(
        &app,
        &format!("SELECT COUNT(*) AS n FROM orders WHERE user_id = {user_id}"),
    )
    .await;
    assert_eq!(orders, 1);
    assert_eq!(stock(&app, tea).await, 99);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn concurrent_requests_with_one_key_make_one_order_on_postgres() {
    one_key_many_requests(Backend::Postgres).await;
}

#[tokio::test]
async fn concurrent_requests_with_one_key_make_one_order_on_mariadb() {
    one_key_many_requests(Backend::Mysql).await;
}

#[tokio::test]
async fn concurrent_requests_with_one_key_make_one_order_on_sqlite() {
    one_key_many_requests(Backend::Sqlite).await;
}

#[tokio::test]
async fn old_keys_are_purged() {
    let app = builder(Backend::Sqlite)
        .set("order.idempotency_ttl_s", 60)
        .spawn()
        .await;
    let tea = product(&app, 100, 10).await;
    let (token, _) = app.login("o_idem_purge").await;
    let k = key();
    place(&app, &token, &k, json!([{"product_id": tea, "qty": 1}])).await;
    let orders = orders(&app);
    let now = chrono::Utc::now().timestamp_millis();
    assert_eq!(
        orders.purge_idempotency_keys(now).await.unwrap(),
        0,
        "still fresh"
    );
    assert_eq!(
        orders.purge_idempotency_keys(now + 61_000).await.unwrap(),
        1
    );
    // The key is free again: a new order.
    let (status, _, replayed) =
        place(&app, &token, &k, json!([{"product_id": tea, "qty": 1}])).await;
    assert_eq!((status.as_u16(), replayed), (201, false));
    app.stop().await.unwrap();
}
