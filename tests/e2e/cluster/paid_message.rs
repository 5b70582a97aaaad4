//! A paid order's subscribe message across instances: the payment notification
//! arrives (five times) at one instance, the `order.paid` event crosses the stream,
//! and the buyer gets one message, even when the event is delivered again.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use super::harness::{ADMIN_TOKEN, TestCluster};
use super::{NO_RATE_LIMITS, add_product};
use crate::support::{eventually, json_of};

const PUSH_TOKEN: &str = "clustertoken";
const PUSH_AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const PAID_TITLE: &str = "订单支付成功通知";

/// The nodes' app id: the example shop's default (`example-app/config/default.toml`).
fn shop_appid() -> String {
    let defaults: toml::Table = example_app::DEFAULTS.parse().expect("the shop's defaults");
    defaults["wechat"]["appid"]
        .as_str()
        .expect("wechat.appid")
        .to_owned()
}

async fn sandbox(cluster: &TestCluster, path: &str, body: Value) -> Value {
    let response = cluster
        .client
        .post(cluster.sandbox_url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    response.json().await.unwrap_or(Value::Null)
}

async fn sent_messages(cluster: &TestCluster) -> Vec<Value> {
    let answer: Value = cluster
        .client
        .get(cluster.sandbox_url("/__sandbox/messages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["messages"].as_array().cloned().unwrap_or_default()
}

/// The buyer accepts the subscription prompt; WeChat pushes the choice to node `i`.
async fn accept_subscription(cluster: &TestCluster, i: usize, openid: &str, template: &str) {
    sandbox(
        cluster,
        "/__sandbox/subscriptions",
        json!({"openid": openid, "template_id": template, "count": 1}),
    )
    .await;
    let appid = shop_appid();
    let (path, body) =
        crate::push::subscription_accepted((PUSH_TOKEN, PUSH_AES_KEY, &appid), openid, template);
    let pushed = cluster
        .client
        .post(cluster.url(i, &path))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = pushed.status();
    assert_eq!(status, 200, "{}", pushed.text().await.unwrap_or_default());
}

/// Appends a copy of the stream's `order.paid` entry, as a redelivery would hand
/// the event over again.
fn append_paid_again(cluster: &TestCluster) -> String {
    let stream = cluster.events_stream();
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "--raw", "XRANGE", &stream, "-", "+"])
        .output()
        .expect("redis-cli");
    let lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    // Each entry: its id, then field and value lines.
    let at = lines
        .iter()
        .position(|line| line == "order.paid")
        .expect("an order.paid entry in the stream");
    let field = |name: &str| {
        let start = at.saturating_sub(3);
        let slice = &lines[start..(at + 3).min(lines.len())];
        let i = slice.iter().position(|l| l == name).expect(name);
        slice[i + 1].clone()
    };
    let (id, payload) = (field("id"), field("payload"));
    let appended = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "XADD", &stream, "*"])
        .args(["id", &id, "topic", "order.paid", "payload", &payload])
        .status()
        .expect("redis-cli");
    assert!(appended.success());
    id
}

#[tokio::test]
async fn a_paid_orders_subscribe_message_is_sent_once_across_instances() {
    let cluster = TestCluster::builder()
        .toml(NO_RATE_LIMITS)
        .toml(&format!(
            "[shop]\npaid_template_title = \"{PAID_TITLE}\"\n\
             [message]\npoll_interval_ms = 20\n\
             [order.outbox]\npoll_interval_ms = 20\n\
             [wechat.push]\ntoken = \"{PUSH_TOKEN}\"\nencoding_aes_key = \"{PUSH_AES_KEY}\""
        ))
        .start()
        .await;
    let client = &cluster.client;
    let added = client
        .post(cluster.url(0, "/api/admin/message-templates"))
        .header("X-Admin-Token", ADMIN_TOKEN)
        .json(&json!({"tid": "1002", "kid_list": [1, 2, 3, 4], "scene_desc": "paid"}))
        .send()
        .await
        .unwrap();
    let template = json_of(added, 201).await["template_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let product_id = add_product(&cluster, "订阅款", 5).await;
    let openid = "o_cluster_paid_message";
    let (token, _, _) = cluster.login(1, openid).await;
    accept_subscription(&cluster, 1, openid, &template).await;

    // Ordered and paid through node 2; WeChat Pay notifies it five times.
    let placed = client
        .post(cluster.url(2, "/api/orders"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "cluster-paid-1")
        .json(&json!({"items": [{"product_id": product_id, "qty": 1}]}))
        .send()
        .await
        .unwrap();
    let order_id = json_of(placed, 201).await["order_id"].as_i64().unwrap();
    let params = client
        .post(cluster.url(2, &format!("/api/orders/{order_id}/pay")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    json_of(params, 200).await;
    sandbox(&cluster, "/__sandbox/pay/faults", json!({"copies": 5})).await;
    let paid = sandbox(
        &cluster,
        "/__sandbox/pay/pay",
        json!({"out_trade_no": format!("wa{order_id:010}")}),
    )
    .await;
    assert_eq!(paid["trade_state"], "SUCCESS", "{paid}");

    let mut waited = 0;
    while sent_messages(&cluster).await.is_empty() {
        if waited >= 300 {
            let logs: String = (0..3)
                .flat_map(|i| {
                    cluster
                        .log(i)
                        .lines()
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .collect::<Vec<_>>()
                .join("\n");
            let paid = cluster
                .count("SELECT COUNT(*) AS n FROM orders WHERE status = 'paid'")
                .await;
            panic!(
                "no paid message within 15 s ({paid} paid orders); the nodes' warnings:\n{logs}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    // The event handed over again (as after a crash) queues nothing more.
    let event_id = append_paid_again(&cluster);
    let stream = cluster.events_stream();
    eventually(&format!("the copy of {event_id} was handled"), async || {
        let groups = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "--raw", "XINFO", "GROUPS", &stream])
            .output()
            .expect("redis-cli");
        let text = String::from_utf8_lossy(&groups.stdout).to_string();
        let words: Vec<&str> = text.split_whitespace().collect();
        let behind: u64 = words
            .windows(2)
            .filter(|w| w[0] == "lag" || w[0] == "pending")
            .filter_map(|w| w[1].parse::<u64>().ok())
            .sum();
        behind == 0
    })
    .await;
    // Give a second message every chance to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let messages = sent_messages(&cluster).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["touser"], openid);
    assert_eq!(
        messages[0]["data"]["character_string1"]["value"],
        order_id.to_string()
    );
    assert_eq!(
        cluster
            .count(&format!(
                "SELECT COUNT(*) AS n FROM message_queue WHERE dedupe_key = '{event_id}'"
            ))
            .await,
        1
    );
    let paid_events = cluster
        .count("SELECT COUNT(*) AS n FROM order_outbox WHERE topic = 'order.paid'")
        .await;
    assert_eq!(
        paid_events, 1,
        "one order.paid event for five notifications"
    );
}
