//! Bad input: clear 4xx answers with stable codes, nothing stored.

use serde_json::json;
use weapp::db::Backend;

use crate::support::*;

#[tokio::test]
async fn malformed_orders_get_clear_codes() {
    let app = builder(Backend::Sqlite).spawn().await;
    let tea = product(&app, 100, 10).await;
    let (token, _) = app.login("o_bad_input").await;
    let cases = [
        (json!([]), 400, "invalid_items"),
        (json!([{"product_id": tea, "qty": 0}]), 400, "invalid_items"),
        (
            json!([{"product_id": tea, "qty": 1_001}]),
            400,
            "invalid_items",
        ),
        (json!([{"product_id": -1, "qty": 1}]), 400, "invalid_items"),
        (
            json!([{"product_id": tea, "qty": 1}, {"product_id": tea, "qty": 2}]),
            400,
            "invalid_items",
        ),
        (
            json!([{"product_id": 424_242, "qty": 1}]),
            422,
            "unknown_product",
        ),
        (
            json!([{"product_id": tea, "qty": 1, "note": "x"}]),
            400,
            "unknown_field",
        ),
        (
            json!([{"product_id": tea, "qty": "1"}]),
            400,
            "invalid_body",
        ),
        (json!("nope"), 400, "invalid_body"),
    ];
    for (items, status, code) in cases {
        let (got, body, _) = place(&app, &token, key(), items.clone()).await;
        assert_eq!(
            (got.as_u16(), body["code"].as_str()),
            (status, Some(code)),
            "{items}: {body}"
        );
    }
    let too_many: Vec<_> = (1..=51)
        .map(|i| json!({"product_id": i, "qty": 1}))
        .collect();
    let (got, body, _) = place(&app, &token, key(), json!(too_many)).await;
    assert_eq!(
        (got.as_u16(), body["code"].as_str()),
        (400, Some("invalid_items"))
    );

    let send = |key: Option<&str>, body: &'static str| {
        let mut request = app
            .client
            .post(app.url("/api/orders"))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, body["code"].as_str().unwrap_or_default().to_owned())
        }
    };
    let valid = r#"{"items":[{"product_id":1,"qty":1}]}"#;
    assert_eq!(
        send(None, valid).await,
        (400, "missing_idempotency_key".into())
    );
    assert_eq!(
        send(Some("has space"), valid).await,
        (400, "invalid_idempotency_key".into())
    );
    assert_eq!(
        send(Some("k1"), "{\"items\": [").await,
        (400, "malformed_json".into())
    );

    let anonymous = app
        .client
        .post(app.url("/api/orders"))
        .header("Idempotency-Key", "k2")
        .json(&json!({"items": [{"product_id": tea, "qty": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    for path in [
        "/api/products?page=0",
        "/api/products?per_page=101",
        "/api/products?size=3",
    ] {
        let (status, body) = get(&app, path, None).await;
        assert_eq!(status, 400, "{path}: {body}");
    }
    let (status, body) = get(&app, "/api/products/abc", None).await;
    assert!(
        status.is_client_error() && body["code"].is_string(),
        "{status} {body}"
    );
    let (status, _) = get(&app, "/api/orders/abc", Some(&token)).await;
    assert!(status.is_client_error());

    assert_eq!(stock(&app, tea).await, 10, "no refused request took stock");
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM orders").await, 0);
    app.stop().await.unwrap();
}

/// On PostgreSQL an order is priced inside its transaction: a refusal found there
/// (a product not for sale, a total that overflows) ends the transaction, keeps
/// nothing, and leaves the connection ready for the next order.
#[tokio::test]
async fn refusals_found_in_the_transaction_leave_nothing_open_on_postgres() {
    // One connection per server worker, so the next order reuses the refused one's.
    let app = builder(Backend::Postgres)
        .set("database.max_connections", 1)
        .spawn()
        .await;
    let tea = product(&app, 100, 10).await;
    // A price the admin API refuses, as rows written before its limit may hold.
    let gold = product(&app, 100, 10).await;
    let price = i64::MAX / 2;
    app.execute(&format!(
        "UPDATE products SET price_fen = {price} WHERE id = {gold}"
    ))
    .await;
    let (token, _) = app.login("o_refused_in_tx").await;
    let refusals = [
        (
            json!([{"product_id": 424_242, "qty": 1}]),
            "unknown_product",
        ),
        (
            json!([{"product_id": tea, "qty": 1}, {"product_id": gold, "qty": 3}]),
            "total_too_large",
        ),
    ];
    for (items, code) in refusals {
        let (status, body, _) = place(&app, &token, key(), items).await;
        assert_eq!((status.as_u16(), body["code"].as_str()), (422, Some(code)));
    }
    let open = "SELECT COUNT(*) AS n FROM pg_stat_activity \
                WHERE datname = current_database() AND state LIKE 'idle in transaction%'";
    assert_eq!(
        count(&app, open).await,
        0,
        "a refused order left its transaction open"
    );
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM orders").await, 0);

    let (status, body, _) =
        place(&app, &token, key(), json!([{"product_id": tea, "qty": 2}])).await;
    assert_eq!(status.as_u16(), 201, "{body}");
    assert_eq!(body["total_fen"], 200);
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM orders").await, 1);
    assert_eq!(stock(&app, tea).await, 8);
    app.stop().await.unwrap();
}

/// One account cannot hold the stock: unpaid orders and units per user are capped,
/// and a refusal is not kept, so the same request succeeds once the user cancels.
#[tokio::test]
async fn one_user_holds_at_most_the_capped_unpaid_orders_and_units() {
    let app = builder(Backend::Sqlite)
        .set("order.max_pending_orders", 2)
        .set("order.max_pending_units", 5)
        .spawn()
        .await;
    let tea = product(&app, 100, 100).await;
    let (token, _) = app.login("o_hoarder").await;
    let one = |qty: i64| json!([{"product_id": tea, "qty": qty}]);
    let (status, first, _) = place(&app, &token, key(), one(2)).await;
    assert_eq!(status, 201, "{first}");
    let (status, body, _) = place(&app, &token, key(), one(4)).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (409, Some("too_many_pending_units"))
    );
    let (status, _, _) = place(&app, &token, key(), one(2)).await;
    assert_eq!(status, 201);
    let third = key();
    let (status, body, _) = place(&app, &token, &third, one(1)).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (409, Some("too_many_pending_orders"))
    );
    assert_eq!(stock(&app, tea).await, 96, "refused orders take nothing");
    // Another user is not affected.
    let (other, _) = app.login("o_other_buyer").await;
    assert_eq!(place(&app, &other, key(), one(1)).await.0, 201);
    // Once the user cancels one, the same request (same key) goes through.
    let first_id = first["order_id"].as_i64().unwrap();
    assert_eq!(cancel(&app, &token, first_id).await, 200);
    let (status, body, replayed) = place(&app, &token, &third, one(1)).await;
    assert_eq!((status.as_u16(), replayed), (201, false), "{body}");
}
