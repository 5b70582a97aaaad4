//! `/api/openapi.json` lists the composed app's routes, and only real ones.

use serde_json::Value;
use weapp::testing::TestApp;

/// Every route of the shop: framework, auth, privacy, order, message.
const SHOP_ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/openapi.json"),
    ("post", "/api/auth/login"),
    ("post", "/api/auth/refresh"),
    ("post", "/api/auth/logout"),
    ("post", "/api/auth/logout-all"),
    ("post", "/api/auth/profile"),
    ("post", "/api/auth/phone"),
    ("get", "/api/me"),
    ("get", "/api/me/export"),
    ("delete", "/api/me"),
    ("get", "/api/products"),
    ("get", "/api/products/{id}"),
    ("post", "/api/orders"),
    ("get", "/api/orders"),
    ("get", "/api/orders/{id}"),
    ("post", "/api/orders/{id}/cancel"),
    ("post", "/api/orders/{id}/pay"),
    ("post", "/api/admin/orders/{id}/refund"),
    ("post", "/api/pay/notify/{merchant}"),
    ("get", "/wechat/push"),
    ("post", "/wechat/push"),
    ("get", "/api/admin/products"),
    ("post", "/api/admin/products"),
    ("get", "/api/admin/products/{id}"),
    ("patch", "/api/admin/products/{id}"),
    ("put", "/api/admin/products/{id}/stock"),
    ("get", "/api/admin/message-templates"),
    ("post", "/api/admin/message-templates"),
    ("post", "/api/admin/message-templates/sync"),
    ("delete", "/api/admin/message-templates/{id}"),
];

#[tokio::test]
async fn the_document_lists_every_route_and_each_is_served() {
    let app = TestApp::builder().spawn().await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in SHOP_ROUTES {
        let op = &paths[*path][*method];
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{method} {path} is not documented"
        );
    }
    assert_eq!(
        paths["/api/orders"]["post"]["security"][0]["bearer"],
        serde_json::json!([])
    );
    assert_eq!(
        paths["/api/orders/{id}"]["get"]["parameters"][0]["name"],
        "id"
    );

    // Each documented operation is a real route: the server does not answer with its
    // fallback for unknown routes (which names the path it could not route).
    for (path, methods) in paths {
        for method in methods.as_object().unwrap().keys() {
            let url = app.url(&path.replace("{id}", "1"));
            let request = match method.as_str() {
                "get" => app.client.get(&url),
                "post" => app.client.post(&url).body("{}"),
                "put" => app.client.put(&url).body("{}"),
                "patch" => app.client.patch(&url).body("{}"),
                "delete" => app.client.delete(&url),
                other => panic!("unexpected method {other}"),
            };
            let response = request.send().await.unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            assert!(
                !body.contains("no route for"),
                "{method} {path} is documented but not served: {status} {body}"
            );
        }
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_document_built_without_a_server_is_the_one_served() {
    // `cargo run -- openapi` and `cargo run -- sdk` build it without connecting.
    let app = TestApp::builder()
        .set("plugins.disabled", ["probe"])
        .spawn()
        .await;
    let served = document(&app).await;
    let config = app.ctx.config().clone();
    app.stop().await.unwrap();
    let built = weapp::App::new(config).openapi().unwrap();
    assert!(built["paths"]["/api/orders"]["post"].is_object(), "{built}");
    assert_eq!(built, served);
}

/// The app's `/api/openapi.json`.
async fn document(app: &TestApp) -> Value {
    app.client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn documented_paths(app: &TestApp) -> Vec<String> {
    document(app).await["paths"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

/// Each app documents its own routes, kept in its context: an app without the
/// order plugin (nor the shop, which needs it), started beside the shop in one
/// process, lists no order route.
#[tokio::test]
async fn two_apps_in_one_process_each_document_their_own_routes() {
    let shop = TestApp::builder().spawn().await;
    let without_orders = TestApp::builder()
        .set("plugins.disabled", ["shop", "order"])
        .spawn()
        .await;
    let shop_paths = documented_paths(&shop).await;
    let other_paths = documented_paths(&without_orders).await;
    assert!(
        shop_paths.iter().any(|p| p == "/api/orders"),
        "{shop_paths:?}"
    );
    assert!(
        !other_paths.iter().any(|p| p.starts_with("/api/orders")),
        "{other_paths:?}"
    );
    assert!(other_paths.iter().any(|p| p == "/api/auth/login"));
    shop.stop().await.unwrap();
    without_orders.stop().await.unwrap();
}

mod contract;
mod fuzz;
mod schema;
