//! `/api/admin/products`: operators add products, change them, take them off sale
//! and set stock; buyers see the result; each change is an audited `catalog.*`
//! event naming the admin token; callers without an admin token change nothing.

use std::sync::{Arc, Mutex};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use weapp::db::Backend;
use weapp::testing::TestApp;
use weapp_order::NewProduct;

use crate::support::*;

async fn spawn(backend: Backend) -> TestApp {
    builder(backend)
        .set("auth.admin_tokens.ops", ADMIN)
        .spawn()
        .await
}

/// Every `catalog.*` event's payload, in delivery order.
fn catalog_events(app: &TestApp) -> Arc<Mutex<Vec<(String, Value)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    app.ctx
        .events()
        .subscribe("catalog-test", "catalog.*", move |_, event| {
            let record = record.clone();
            async move {
                let entry = (event.topic.clone(), event.payload.clone());
                record.lock().unwrap().push(entry);
                Ok(())
            }
        });
    seen
}

async fn the_catalogue_is_managed_through_the_admin_api(backend: Backend) {
    let app = spawn(backend).await;
    let events = catalog_events(&app);

    let (status, added) = admin(
        &app,
        Method::POST,
        "/api/admin/products",
        Some(json!({"name": "Oolong 乌龙茶", "description": "250 g", "price_fen": 3_800, "stock": 10})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let id = added["id"].as_i64().expect("id");
    assert_eq!(added["name"], "Oolong 乌龙茶");
    assert_eq!(added["active"], true);
    assert_eq!(added["stock"], 10);
    let (status, public) = get(&app, &format!("/api/products/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(public["price_fen"], 3_800);

    let (status, changed) = admin(
        &app,
        Method::PATCH,
        &format!("/api/admin/products/{id}"),
        Some(json!({"price_fen": 4_200, "name": "Oolong"})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (changed["price_fen"].as_i64(), changed["name"].as_str()),
        (Some(4_200), Some("Oolong"))
    );
    assert_eq!(changed["description"], "250 g", "fields not given stay");

    // Off sale: gone for buyers, still there for admins, not orderable.
    let (status, _) = admin(
        &app,
        Method::PATCH,
        &format!("/api/admin/products/{id}"),
        Some(json!({"active": false})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = get(&app, &format!("/api/products/{id}"), None).await;
    assert_eq!(status, 404);
    let (_, listed) = get(&app, "/api/products", None).await;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );
    let (_, catalogue) = admin(&app, Method::GET, "/api/admin/products", None).await;
    assert_eq!(catalogue["items"][0]["active"], false, "{catalogue}");
    let (token, _) = app.login("o_catalogue").await;
    let (status, body, _) = place(&app, &token, key(), json!([{"product_id": id, "qty": 1}])).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (422, Some("unknown_product"))
    );
    admin(
        &app,
        Method::PATCH,
        &format!("/api/admin/products/{id}"),
        Some(json!({"active": true})),
    )
    .await;

    // Stock: set, adjusted, and refused below zero with nothing changed.
    let stock_path = format!("/api/admin/products/{id}/stock");
    let (status, set) = admin(&app, Method::PUT, &stock_path, Some(json!({"qty": 7}))).await;
    assert_eq!(
        (status.as_u16(), set["stock"].as_i64()),
        (200, Some(7)),
        "{set}"
    );
    let (status, adjusted) =
        admin(&app, Method::PUT, &stock_path, Some(json!({"delta": -3}))).await;
    assert_eq!(
        (status.as_u16(), adjusted["stock"].as_i64()),
        (200, Some(4)),
        "{adjusted}"
    );
    let (status, refused) = admin(&app, Method::PUT, &stock_path, Some(json!({"delta": -5}))).await;
    assert_eq!(
        (status.as_u16(), refused["code"].as_str()),
        (409, Some("stock_out_of_range")),
        "{refused}"
    );
    assert_eq!(stock(&app, id).await, 4);
    let (status, placed, _) =
        place(&app, &token, key(), json!([{"product_id": id, "qty": 4}])).await;
    assert_eq!(status, 201, "{placed}");
    assert_eq!(placed["total_fen"], 16_800, "the new price applies");
    assert_eq!(stock(&app, id).await, 0);

    // Every change, once, naming the token used and what changed.
    eventually("the six catalogue events are delivered", || {
        let events = events.clone();
        async move { events.lock().unwrap().len() >= 6 }
    })
    .await;
    let events = events.lock().unwrap().clone();
    let topics: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        topics,
        [
            "catalog.product_added",
            "catalog.product_changed",
            "catalog.product_changed",
            "catalog.product_changed",
            "catalog.stock_changed",
            "catalog.stock_changed",
        ]
    );
    assert!(
        events
            .iter()
            .all(|(_, p)| p["admin"] == "ops" && p["product_id"] == id)
    );
    assert_eq!(events[1].1["changed"], json!(["name", "price_fen"]));
    assert_eq!(
        (events[4].1["qty"].as_i64(), events[4].1["delta"].as_i64()),
        (Some(7), Some(-3))
    );
    assert_eq!(
        (events[5].1["qty"].as_i64(), events[5].1["delta"].as_i64()),
        (Some(4), Some(-3))
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_catalogue_is_managed_through_the_admin_api_on_sqlite() {
    the_catalogue_is_managed_through_the_admin_api(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_catalogue_is_managed_through_the_admin_api_on_postgres() {
    the_catalogue_is_managed_through_the_admin_api(Backend::Postgres).await;
}

#[tokio::test]
async fn the_catalogue_is_managed_through_the_admin_api_on_mariadb() {
    the_catalogue_is_managed_through_the_admin_api(Backend::Mysql).await;
}

#[tokio::test]
async fn catalogue_changes_need_an_admin_token() {
    let app = spawn(Backend::Sqlite).await;
    let tea = product(&app, 100, 5).await;
    let (user_token, _) = app.login("o_not_admin").await;
    let attempts = [
        (
            Method::POST,
            "/api/admin/products".to_owned(),
            json!({"name": "x", "price_fen": 1}),
        ),
        (
            Method::PATCH,
            format!("/api/admin/products/{tea}"),
            json!({"price_fen": 1}),
        ),
        (
            Method::PUT,
            format!("/api/admin/products/{tea}/stock"),
            json!({"qty": 999}),
        ),
        (Method::GET, "/api/admin/products".to_owned(), Value::Null),
    ];
    for (method, path, body) in attempts {
        for header in [
            None,
            Some(("X-Admin-Token", "wrong")),
            Some(("Authorization", "bearer")),
        ] {
            let mut request = app
                .client
                .request(method.clone(), app.url(&path))
                .json(&body);
            match header {
                Some(("Authorization", _)) => request = request.bearer_auth(&user_token),
                Some((name, value)) => request = request.header(name, value),
                None => {}
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            assert_eq!(
                (status.as_u16(), body["code"].as_str()),
                (401, Some("admin_token_required")),
                "{method} {path} with {header:?}"
            );
        }
    }
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM products").await, 1);
    assert_eq!(stock(&app, tea).await, 5);
    let (_, public) = get(&app, &format!("/api/products/{tea}"), None).await;
    assert_eq!(public["price_fen"], 100);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn bad_catalogue_changes_are_refused_with_their_codes() {
    let app = spawn(Backend::Sqlite).await;
    let tea = product(&app, 100, 5).await;
    let long_name = "茶".repeat(201);
    let refused = [
        (
            Method::POST,
            "/api/admin/products".to_owned(),
            json!({"name": " ", "price_fen": 1}),
            400,
            "invalid_product",
        ),
        (
            Method::POST,
            "/api/admin/products".to_owned(),
            json!({"name": long_name, "price_fen": 1}),
            400,
            "invalid_product",
        ),
        (
            Method::POST,
            "/api/admin/products".to_owned(),
            json!({"name": "x", "price_fen": -1}),
            400,
            "invalid_product",
        ),
        (
            Method::POST,
            "/api/admin/products".to_owned(),
            json!({"name": "x", "price_fen": 1, "stock": -2}),
            400,
            "invalid_product",
        ),
        (
            Method::POST,
            "/api/admin/products".to_owned(),
            json!({"name": "x", "price_fen": 1, "colour": "red"}),
            400,
            "unknown_field",
        ),
        (
            Method::POST,
            "/api/admin/products".to_owned(),
            json!({"name": "x", "price_fen": "1"}),
            400,
            "invalid_body",
        ),
        (
            Method::PATCH,
            format!("/api/admin/products/{tea}"),
            json!({}),
            400,
            "invalid_product",
        ),
        (
            Method::PATCH,
            format!("/api/admin/products/{tea}"),
            json!({"price_fen": 100_000_000_000i64}),
            400,
            "invalid_product",
        ),
        (
            Method::PATCH,
            format!("/api/admin/products/{}", tea + 1000),
            json!({"price_fen": 1}),
            404,
            "not_found",
        ),
        (
            Method::PUT,
            format!("/api/admin/products/{tea}/stock"),
            json!({"qty": 1, "delta": 1}),
            400,
            "invalid_product",
        ),
        (
            Method::PUT,
            format!("/api/admin/products/{tea}/stock"),
            json!({}),
            400,
            "invalid_product",
        ),
        (
            Method::PUT,
            format!("/api/admin/products/{tea}/stock"),
            json!({"qty": -1}),
            400,
            "invalid_product",
        ),
        (
            Method::PUT,
            format!("/api/admin/products/{tea}/stock"),
            json!({"delta": i64::MIN}),
            400,
            "invalid_product",
        ),
        (
            Method::PUT,
            format!("/api/admin/products/{}/stock", tea + 1000),
            json!({"delta": 1}),
            404,
            "not_found",
        ),
        (
            Method::PUT,
            format!("/api/admin/products/{}/stock", tea + 1000),
            json!({"qty": 1}),
            404,
            "not_found",
        ),
        (
            Method::GET,
            format!("/api/admin/products/{}", tea + 1000),
            Value::Null,
            404,
            "not_found",
        ),
    ];
    for (method, path, body, status, code) in refused {
        let sent = body.clone();
        let (got, answer) = admin(
            &app,
            method.clone(),
            &path,
            (!body.is_null()).then_some(body),
        )
        .await;
        assert_eq!(
            (got.as_u16(), answer["code"].as_str()),
            (status, Some(code)),
            "{method} {path} {sent}: {answer}"
        );
    }
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM products").await, 1);
    let (_, entry) = admin(
        &app,
        Method::GET,
        &format!("/api/admin/products/{tea}"),
        None,
    )
    .await;
    assert_eq!(
        (entry["price_fen"].as_i64(), entry["stock"].as_i64()),
        (Some(100), Some(5)),
        "{entry}"
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM order_outbox WHERE topic LIKE 'catalog.%'"
        )
        .await,
        1,
        "only the product added"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn seeding_adds_only_the_products_the_catalogue_lacks() {
    let app = spawn(Backend::Sqlite).await;
    let product = |name: &str| NewProduct {
        name: name.to_owned(),
        description: String::new(),
        price_fen: 500,
        stock: 3,
        active: true,
    };
    let first = orders(&app)
        .seed_products(&[product("tea"), product("cup")])
        .await
        .unwrap();
    assert_eq!(
        first.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["tea", "cup"]
    );
    let again = orders(&app)
        .seed_products(&[product("tea"), product("pot")])
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["pot"]
    );
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM products").await, 3);
    let events = app
        .texts("SELECT payload AS t FROM order_outbox WHERE topic = 'catalog.product_added'")
        .await;
    assert_eq!(events.len(), 3);
    assert!(
        events.iter().all(|p| p.contains("\"admin\":\"seed\"")),
        "{events:?}"
    );
    app.stop().await.unwrap();
}

/// Setting what is already there changes nothing and succeeds: MySQL counts only
/// changed rows unless asked for found rows, which would read as "no such product".
#[tokio::test]
async fn setting_the_same_values_again_succeeds_on_mariadb() {
    let app = spawn(Backend::Mysql).await;
    let tea = product(&app, 100, 5).await;
    for _ in 0..2 {
        let (status, body) = admin(
            &app,
            Method::PATCH,
            &format!("/api/admin/products/{tea}"),
            Some(json!({"price_fen": 300, "active": true})),
        )
        .await;
        assert_eq!(
            (status.as_u16(), body["price_fen"].as_i64()),
            (200, Some(300)),
            "{body}"
        );
        let (status, body) = admin(
            &app,
            Method::PUT,
            &format!("/api/admin/products/{tea}/stock"),
            Some(json!({"qty": 9})),
        )
        .await;
        assert_eq!(
            (status.as_u16(), body["stock"].as_i64()),
            (200, Some(9)),
            "{body}"
        );
    }
    app.stop().await.unwrap();
}
