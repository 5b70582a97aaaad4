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

/// The shop on three nodes, set to send the paid message; returns the cluster and
/// the template (added through node 0).
async fn shop_sending_paid_messages(toml: &str) -> (TestCluster, String) {
    let cluster = TestCluster::builder()
        .toml(NO_RATE_LIMITS)
        .toml(&format!(
            "[shop]\npaid_template_title = \"{PAID_TITLE}\"\n\
             [order.outbox]\npoll_interval_ms = 20\n\
             [wechat.push]\ntoken = \"{PUSH_TOKEN}\"\nencoding_aes_key = \"{PUSH_AES_KEY}\""
        ))
        .toml(toml)
        .start()
        .await;
    let added = cluster
        .client
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
    (cluster, template)
}

/// One unit of `product_id` ordered through node `i` and paid in (sandbox) WeChat
/// Pay, which notifies node `i`; returns the order id.
pub(super) async fn order_and_pay(
    cluster: &TestCluster,
    i: usize,
    token: &str,
    key: &str,
    product_id: i64,
) -> i64 {
    let placed = cluster
        .client
        .post(cluster.url(i, "/api/orders"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&json!({"items": [{"product_id": product_id, "qty": 1}]}))
        .send()
        .await
        .unwrap();
    let order_id = json_of(placed, 201).await["order_id"].as_i64().unwrap();
    let params = cluster
        .client
        .post(cluster.url(i, &format!("/api/orders/{order_id}/pay")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    json_of(params, 200).await;
    let paid = sandbox(
        cluster,
        "/__sandbox/pay/pay",
        json!({"out_trade_no": format!("wa{order_id:010}")}),
    )
    .await;
    assert_eq!(paid["trade_state"], "SUCCESS", "{paid}");
    order_id
}

#[tokio::test]
async fn a_paid_orders_subscribe_message_is_sent_once_across_instances() {
    let (cluster, template) = shop_sending_paid_messages("[message]\npoll_interval_ms = 20").await;
    let product_id = add_product(&cluster, "订阅款", 5).await;
    let openid = "o_cluster_paid_message";
    let (token, _, _) = cluster.login(1, openid).await;
    accept_subscription(&cluster, 1, openid, &template).await;

    // Ordered and paid through node 2; WeChat Pay notifies it five times.
    sandbox(&cluster, "/__sandbox/pay/faults", json!({"copies": 5})).await;
    let order_id = order_and_pay(&cluster, 2, &token, "cluster-paid-1", product_id).await;

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

#[tokio::test]
async fn messages_a_killed_instance_held_are_sent_by_the_others_never_twice() {
    let (mut cluster, template) = shop_sending_paid_messages(
        "[message]\npoll_interval_ms = 20\nlease_ms = 3000\n\
         [events]\nclaim_idle_ms = 1000\nclaim_interval_ms = 200",
    )
    .await;
    let product_id = add_product(&cluster, "接管款", 50).await;
    // Only node 2 runs: it alone queues and claims the paid messages.
    for i in [0, 1] {
        assert!(cluster.terminate(i).await, "node {i} stops cleanly");
    }
    // WeChat answers each send slowly: node 2 is mid-send when it dies, with the
    // rest of its batch claimed.
    sandbox(
        &cluster,
        "/__sandbox/faults",
        json!({"endpoint": "/cgi-bin/message/subscribe/send", "latency_ms": 2000}),
    )
    .await;
    const BUYERS: usize = 8;
    let mut orders = Vec::new();
    for b in 0..BUYERS {
        let openid = format!("o_cluster_takeover_{b}");
        let (token, _, _) = cluster.login(2, &openid).await;
        accept_subscription(&cluster, 2, &openid, &template).await;
        orders.push(order_and_pay(&cluster, 2, &token, &format!("takeover-{b}"), product_id).await);
    }
    // Once every message is queued and none waits unclaimed, node 2 holds all it
    // has not sent yet: one mid-send (2 s), the others claimed.
    let state =
        |state: &str| format!("SELECT COUNT(*) AS n FROM message_queue WHERE state = '{state}'");
    let mut holding = false;
    for _ in 0..300 {
        let queued = cluster
            .count("SELECT COUNT(*) AS n FROM message_queue")
            .await;
        if queued == BUYERS as i64
            && cluster.count(&state("pending")).await == 0
            && cluster.count(&state("sending")).await == 1
            && cluster.count(&state("claimed")).await >= 1
        {
            holding = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        holding,
        "node 2 never held the messages; it says:\n{}",
        cluster.log(2)
    );
    cluster.kill(2);

    // The others come back with WeChat answering at once, and take over once
    // node 2's leases run out.
    let cleared = cluster
        .client
        .delete(cluster.sandbox_url("/__sandbox/faults"))
        .send()
        .await
        .unwrap();
    assert!(cleared.status().is_success());
    for i in [0, 1] {
        cluster.restart(i).await;
    }
    let finished = "SELECT COUNT(*) AS n FROM message_queue WHERE state IN ('sent', 'failed')";
    let mut done = false;
    for _ in 0..300 {
        if cluster.count(finished).await == BUYERS as i64 {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        done,
        "messages left unfinished; node 0 says:\n{}",
        cluster.log(0)
    );

    // The one mid-send may have reached WeChat: parked, never sent again. The
    // claimed ones were sent by nodes 0 and 1.
    let parked = cluster
        .count(
            "SELECT COUNT(*) AS n FROM message_queue \
             WHERE state = 'failed' AND reason LIKE 'unknown_outcome%'",
        )
        .await;
    let sent = cluster
        .count("SELECT COUNT(*) AS n FROM message_queue WHERE state = 'sent'")
        .await;
    assert_eq!((parked, sent), (1, BUYERS as i64 - 1));
    let messages = sent_messages(&cluster).await;
    for order_id in &orders {
        let copies = messages
            .iter()
            .filter(|m| {
                m["data"]["character_string1"]["value"]
                    .as_str()
                    .and_then(|v| v.parse::<i64>().ok())
                    == Some(*order_id)
            })
            .count();
        assert!(copies <= 1, "order {order_id}: {copies} messages");
    }
    // Every sent row reached WeChat; the parked one may or may not have.
    assert!(
        messages.len() as i64 == sent || messages.len() as i64 == sent + 1,
        "{} messages at WeChat for {sent} sent rows",
        messages.len()
    );
}
