//! The real-time relay across shop processes: a socket on one instance hears what
//! another instance publishes, pushes or ends, and a stopping instance says
//! "going away".

use std::time::Duration;

use serde_json::json;
use weapp_e2e::ws::{Ws, close_code, connect, next_json, send};

use super::harness::TestCluster;
use super::paid_message::order_and_pay;
use super::{NO_RATE_LIMITS, add_product};

const WAIT: Duration = Duration::from_secs(30);

async fn socket(cluster: &TestCluster, node: usize, token: &str) -> Ws {
    connect(&cluster.url(node, ""), token)
        .await
        .unwrap_or_else(|e| panic!("/ws on node {node}: {e}"))
}

async fn answer(ws: &mut Ws, frame: serde_json::Value) -> serde_json::Value {
    send(ws, &frame).await.unwrap();
    next_json(ws, WAIT).await.unwrap()
}

#[tokio::test]
async fn a_socket_hears_rooms_pushes_and_logouts_from_other_instances() {
    let mut cluster = TestCluster::builder()
        .toml(NO_RATE_LIMITS)
        .toml("[order.outbox]\npoll_interval_ms = 20")
        .start()
        .await;
    let product_id = add_product(&cluster, "推送款", 5).await;
    let (buyer, _, _) = cluster.login(0, "o_ws_buyer").await;
    let (streamer, _, streamer_id) = cluster.login(2, "o_ws_streamer").await;
    let mut on_node0 = socket(&cluster, 0, &buyer).await;
    let mut on_node2 = socket(&cluster, 2, &streamer).await;
    for ws in [&mut on_node0, &mut on_node2] {
        let joined = answer(ws, json!({"type": "join", "room": "live:cluster", "id": 1})).await;
        assert_eq!(joined, json!({"type": "ack", "id": 1}));
    }

    // Published on node 2, heard on node 0.
    send(
        &mut on_node2,
        &json!({"type": "publish", "room": "live:cluster", "data": "开播了"}),
    )
    .await
    .unwrap();
    let message =
        json!({"type": "message", "room": "live:cluster", "from": streamer_id, "data": "开播了"});
    assert_eq!(next_json(&mut on_node0, WAIT).await.unwrap(), message);
    // The publisher gets its ack and its own copy, at once, from its own instance.
    let mut own = [
        next_json(&mut on_node2, WAIT).await.unwrap(),
        next_json(&mut on_node2, WAIT).await.unwrap(),
    ];
    own.sort_by_key(|frame| frame["type"].as_str().unwrap_or("").to_owned());
    assert_eq!(own, [json!({"type": "ack"}), message]);

    // Ordered and paid through node 1; the buyer's socket on node 0 is told.
    let order_id = order_and_pay(&cluster, 1, &buyer, "ws-paid-1", product_id).await;
    let pushed = next_json(&mut on_node0, WAIT).await.unwrap();
    assert_eq!(pushed["type"], "push", "{pushed}");
    assert_eq!(pushed["topic"], "order.paid");
    assert_eq!(pushed["data"]["order_id"], order_id);
    assert_eq!(pushed["data"]["total_fen"], 9900);

    // Logged out through node 1: the socket on node 0 closes with 4001.
    let out = cluster
        .client
        .post(cluster.url(1, "/api/auth/logout"))
        .bearer_auth(&buyer)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert_eq!(close_code(&mut on_node0, WAIT).await.unwrap(), Some(4001));

    // Node 2 stopping (SIGTERM) closes its sockets with 1001 "going away".
    let pong = answer(&mut on_node2, json!({"type": "ping"})).await;
    assert_eq!(pong, json!({"type": "pong"}));
    let stopping = close_code(&mut on_node2, WAIT);
    let (code, exited) = tokio::join!(stopping, cluster.terminate(2));
    assert!(exited, "node 2 exits cleanly");
    assert_eq!(code.unwrap(), Some(1001));
}
