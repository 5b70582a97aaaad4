//! The plugin inside a real app: registered, migrated, serving its routes.

use serde_json::{Value, json};
use weapp::testing::spawn_app;
use {{crate_name}} as _;

#[test]
fn the_plugin_is_registered() {
    let names: Vec<&str> = weapp::plugin::registered()
        .iter()
        .map(|p| p.name())
        .collect();
    assert!(names.contains(&"{{plugin_name}}"), "{names:?}");
}

#[tokio::test]
async fn items_are_added_and_listed_for_their_owner() {
    let app = spawn_app().await;
    let (token, _) = app.login("openid-plugin-test").await;
    let url = app.url("/api/{{plugin_name}}/items");

    let added = app
        .client
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({ "title": "first" }))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);

    let refused = app
        .client
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({ "title": "" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["code"], "invalid_item");

    let listed: Value = app
        .client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["title"], "first", "{listed}");
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM {{plugin_name}}_items").await, 1);
    app.stop().await.unwrap();
}
