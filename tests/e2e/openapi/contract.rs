//! The document describes every operation's answers, is valid OpenAPI 3.1, and
//! what the shop answers matches it.

use serde_json::Value;
use weapp::testing::TestApp;

use super::document;
use super::schema::{conforms, resolve, response_schema};

#[tokio::test]
async fn every_operation_describes_its_answers_and_every_reference_resolves() {
    let app = TestApp::builder().spawn().await;
    let doc = document(&app).await;
    let mut undescribed = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, op) in methods.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            // Each operation says what success looks like, beyond a bare "200".
            if responses
                .get("200")
                .is_some_and(|r| r["description"] == "Success")
            {
                undescribed.push(format!("{method} {path}"));
            }
            assert!(responses.contains_key("default"), "{method} {path}");
        }
    }
    assert!(
        undescribed.is_empty(),
        "described by no Spec: {undescribed:?}"
    );

    // Every `$ref` anywhere names a schema that exists.
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 20, "{all:?}");
    for reference in all {
        resolve(&doc, &serde_json::json!({ "$ref": reference }));
    }

    let order = &doc["paths"]["/api/orders"]["post"];
    assert_eq!(order["parameters"][0]["name"], "Idempotency-Key");
    assert_eq!(order["parameters"][0]["in"], "header");
    assert_eq!(
        order["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CreateOrder"
    );
    let conflicts = &order["responses"]["409"]["content"]["application/json"]["schema"]["properties"]
        ["code"]["enum"];
    assert!(
        conflicts
            .as_array()
            .unwrap()
            .contains(&"out_of_stock".into()),
        "{conflicts}"
    );
    let unauthorized = &order["responses"]["401"]["content"]["application/json"]["schema"];
    assert!(
        unauthorized.to_string().contains("expired_token"),
        "{unauthorized}"
    );
    let products = &doc["paths"]["/api/products"]["get"]["parameters"];
    assert!(products.to_string().contains("per_page"), "{products}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_document_is_valid_openapi() {
    let app = TestApp::builder().spawn().await;
    let doc = document(&app).await;
    app.stop().await.unwrap();
    let python = std::env::var("WEAPP_TEST_PYTHON").expect(
        "WEAPP_TEST_PYTHON: the Python with tests/requirements.txt; run the suite \
         through tests/run.sh, which installs it",
    );
    let file = std::env::temp_dir().join(format!("weapp-openapi-{}.json", std::process::id()));
    std::fs::write(&file, doc.to_string()).unwrap();
    let output = std::process::Command::new(&python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("the test Python runs");
    let _ = std::fs::remove_file(&file);
    assert!(
        output.status.success(),
        "openapi-spec-validator refused the document:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// What the shop answers matches what its document says it answers.
#[tokio::test]
async fn answers_match_their_documented_schemas() {
    let app = TestApp::builder().spawn().await;
    let doc = document(&app).await;
    let (token, _) = app.login("o_openapi_conformance").await;
    let orders = app.ctx.get::<weapp_order::Orders>().unwrap();
    let product = weapp_order::NewProduct {
        name: "契约茶".into(),
        description: "for the contract".into(),
        price_fen: 100,
        stock: 5,
        active: true,
    };
    let product_id = orders.seed_products(&[product]).await.unwrap()[0].id;
    let one_product = format!("/api/products/{product_id}");
    let get = |path: &str| app.client.get(app.url(path)).bearer_auth(&token).send();
    let checks: Vec<(&str, &str, u16, Value)> = vec![
        (
            "/healthz",
            "/healthz",
            200,
            get("/healthz").await.unwrap().json().await.unwrap(),
        ),
        (
            "/readyz",
            "/readyz",
            200,
            get("/readyz").await.unwrap().json().await.unwrap(),
        ),
        (
            "/api/me",
            "/api/me",
            200,
            get("/api/me").await.unwrap().json().await.unwrap(),
        ),
        (
            "/api/products",
            "/api/products",
            200,
            get("/api/products").await.unwrap().json().await.unwrap(),
        ),
        (
            &one_product,
            "/api/products/{id}",
            200,
            get(&one_product).await.unwrap().json().await.unwrap(),
        ),
        (
            "/api/orders",
            "/api/orders",
            200,
            get("/api/orders").await.unwrap().json().await.unwrap(),
        ),
        (
            "/api/me/export",
            "/api/me/export",
            200,
            get("/api/me/export").await.unwrap().json().await.unwrap(),
        ),
        (
            "/api/orders/999999",
            "/api/orders/{id}",
            404,
            get("/api/orders/999999")
                .await
                .unwrap()
                .json()
                .await
                .unwrap(),
        ),
    ];
    for (url, path, status, body) in checks {
        let schema = match status {
            404 => {
                &doc["paths"][path]["get"]["responses"]["404"]["content"]["application/json"]["schema"]
            }
            _ => response_schema(&doc, "get", path, status),
        };
        if let Err(e) = conforms(&doc, schema, &body, url) {
            panic!("GET {url}: {e}\n{body}");
        }
    }
    let placed = app
        .client
        .post(app.url("/api/orders"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "openapi-1")
        .json(&serde_json::json!({"items": [{"product_id": product_id, "qty": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 201);
    let body: Value = placed.json().await.unwrap();
    conforms(
        &doc,
        response_schema(&doc, "post", "/api/orders", 201),
        &body,
        "order",
    )
    .unwrap_or_else(|e| panic!("POST /api/orders: {e}\n{body}"));
    let order_id = body["order_id"].as_i64().unwrap();
    let list: Value = get("/api/orders").await.unwrap().json().await.unwrap();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
    conforms(
        &doc,
        response_schema(&doc, "get", "/api/orders", 200),
        &list,
        "orders",
    )
    .unwrap_or_else(|e| panic!("GET /api/orders: {e}\n{list}"));
    let one: Value = get(&format!("/api/orders/{order_id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    conforms(
        &doc,
        response_schema(&doc, "get", "/api/orders/{id}", 200),
        &one,
        "order view",
    )
    .unwrap_or_else(|e| panic!("GET /api/orders/{order_id}: {e}\n{one}"));
    app.stop().await.unwrap();
}
