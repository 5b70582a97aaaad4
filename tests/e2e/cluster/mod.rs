//! Several processes of the shop sharing PostgreSQL and Redis ([`TestCluster`]):
//! sessions, rate limits, the access_token, stock and the audit chain hold across
//! instances.

mod flash_crash;
mod harness;
mod paid_message;
mod realtime;

use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::future::join_all;
use harness::{ADMIN_TOKEN, TestCluster};
use serde_json::{Value, json};

/// No rate limits unless a test sets its own: logins come in bursts from one IP.
pub(crate) const NO_RATE_LIMITS: &str = "[guard]\nrate_limits = []";

async fn me(cluster: &TestCluster, node: usize, token: &str) -> u16 {
    cluster
        .client
        .get(cluster.url(node, "/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn sessions_cross_instances(cluster: TestCluster) {
    let (token, _, user_id) = cluster.login(0, "o_cluster_session").await;
    for node in 0..3 {
        assert_eq!(me(&cluster, node, &token).await, 200, "node {node}");
    }
    let body: Value = cluster
        .client
        .get(cluster.url(1, "/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["id"], user_id, "{body}");

    let out = cluster
        .client
        .post(cluster.url(1, "/api/auth/logout-all"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(out.status().is_success(), "{}", out.status());
    for node in [0, 2] {
        assert_eq!(me(&cluster, node, &token).await, 401, "node {node} refuses");
    }
}

#[tokio::test]
async fn a_session_works_on_every_instance_and_logout_all_ends_it_everywhere() {
    sessions_cross_instances(TestCluster::builder().toml(NO_RATE_LIMITS).start().await).await;
}

#[tokio::test]
async fn sessions_cross_instances_on_a_redis_cluster_too() {
    let cluster = TestCluster::builder()
        .toml(NO_RATE_LIMITS)
        .redis_cluster()
        .start()
        .await;
    sessions_cross_instances(cluster).await;
}

#[tokio::test]
async fn a_per_user_rate_limit_is_one_budget_across_instances() {
    let cluster = TestCluster::builder()
        .toml(
            r#"[[guard.rate_limits]]
prefix = "/api/me"
per_user = { burst = 5, per_second = 0.01 }"#,
        )
        .start()
        .await;
    let (token, _, _) = cluster.login(0, "o_cluster_limited").await;
    let mut statuses = Vec::new();
    for i in 0..15 {
        statuses.push(me(&cluster, i % 3, &token).await);
    }
    let allowed = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((allowed, limited), (5, 10), "{statuses:?}");
}

async fn one_access_token_for_fifty_callers(cluster: TestCluster) {
    let mut users = Vec::new();
    for i in 0..50 {
        let openid = format!("o_cluster_phone_{i}");
        cluster
            .client
            .post(cluster.sandbox_url("/__sandbox/login"))
            .json(&json!({"openid": openid, "phone": format!("1391234{i:04}")}))
            .send()
            .await
            .unwrap();
        let (token, _, _) = cluster.login(i % 3, &openid).await;
        let code: Value = cluster
            .client
            .post(cluster.sandbox_url("/__sandbox/phone-code"))
            .json(&json!({"openid": openid}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        users.push((i % 3, token, code["code"].as_str().unwrap().to_owned()));
    }
    assert_eq!(
        cluster.sandbox_stats().await["/cgi-bin/stable_token"],
        Value::Null,
        "no token fetched before the phone calls"
    );
    let calls = users.iter().map(|(node, token, code)| {
        cluster
            .client
            .post(cluster.url(*node, "/api/auth/phone"))
            .bearer_auth(token)
            .json(&json!({ "code": code }))
            .send()
    });
    for answer in join_all(calls).await {
        let answer = answer.unwrap();
        assert_eq!(answer.status(), 200, "{:?}", answer.text().await);
    }
    let stats = cluster.sandbox_stats().await;
    assert_eq!(stats["/cgi-bin/stable_token"], 1, "{stats}");
    assert_eq!(stats["/wxa/business/getuserphonenumber"], 50, "{stats}");
}

#[tokio::test]
async fn fifty_callers_on_three_instances_fetch_one_access_token() {
    one_access_token_for_fifty_callers(TestCluster::builder().toml(NO_RATE_LIMITS).start().await)
        .await;
}

#[tokio::test]
async fn fifty_callers_fetch_one_access_token_on_a_redis_cluster_too() {
    let cluster = TestCluster::builder()
        .toml(NO_RATE_LIMITS)
        .redis_cluster()
        .start()
        .await;
    one_access_token_for_fifty_callers(cluster).await;
}

/// An operator adds a product with `stock` units through node 0; returns its id.
pub(crate) async fn add_product(cluster: &TestCluster, name: &str, stock: i64) -> i64 {
    let added = cluster
        .client
        .post(cluster.url(0, "/api/admin/products"))
        .header("X-Admin-Token", ADMIN_TOKEN)
        .json(&json!({"name": name, "price_fen": 9900, "stock": stock}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    added.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

#[tokio::test]
async fn four_hundred_buyers_on_three_instances_buy_exactly_the_stock() {
    let cluster = TestCluster::builder().toml(NO_RATE_LIMITS).start().await;
    let product_id = add_product(&cluster, "限量款", 100).await;

    let mut buyers = Vec::new();
    for i in 0..400 {
        let (token, _, _) = cluster.login(i % 3, &format!("o_cluster_buyer_{i}")).await;
        buyers.push(token);
    }
    let orders = buyers.iter().enumerate().map(|(i, token)| {
        cluster
            .client
            .post(cluster.url(i % 3, "/api/orders"))
            .bearer_auth(token)
            .header("Idempotency-Key", format!("cluster-buy-{i}"))
            .json(&json!({"items": [{"product_id": product_id, "qty": 1}]}))
            .send()
    });
    let mut placed = 0;
    let mut sold_out = 0;
    let mut placed_on = [0; 3];
    for (i, answer) in join_all(orders).await.into_iter().enumerate() {
        let answer = answer.unwrap();
        match answer.status().as_u16() {
            201 => {
                placed += 1;
                placed_on[i % 3] += 1;
            }
            409 => {
                let body: Value = answer.json().await.unwrap();
                assert_eq!(body["code"], "out_of_stock", "{body}");
                sold_out += 1;
            }
            other => panic!("unexpected {other}: {:?}", answer.text().await),
        }
    }
    assert_eq!((placed, sold_out), (100, 300));
    let rows = cluster
        .count(&format!(
            "SELECT COUNT(*) AS n FROM order_items WHERE product_id = {product_id}"
        ))
        .await;
    assert_eq!(rows, 100, "one order line per sold unit");
    let stock = cluster
        .count(&format!(
            "SELECT qty AS n FROM stock WHERE product_id = {product_id}"
        ))
        .await;
    assert_eq!(stock, 0);
    // Every instance that sold a unit committed its share in groups (one whose
    // requests all came after the sell-out, on a busy machine, sold none).
    for node in (0..3).filter(|node| placed_on[*node] > 0) {
        let metrics = cluster
            .client
            .get(cluster.url(node, "/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let batches =
            weapp::testing::metric_sample(&metrics, "order_batch_orders_count").unwrap_or_default();
        assert!(batches > 0.0, "node {node} committed no batch");
    }
}

/// Short leases and claims, so a killed instance's work is taken over in seconds.
const QUICK_TAKEOVER: &str = r#"[guard]
rate_limits = []

[order.outbox]
lease_ms = 1000

[events]
claim_idle_ms = 1000
claim_interval_ms = 200"#;

/// Places one order for each buyer, spread over the nodes, counting each placed
/// one in `placed_so_far`; a request that fails (its node killed) is retried on the
/// next node with the same Idempotency-Key. Returns how many were placed, and how
/// many requests failed and were retried.
async fn place_orders(
    cluster: &TestCluster,
    buyers: &[String],
    product_id: i64,
    placed_so_far: &AtomicUsize,
) -> (usize, usize) {
    let retried = &AtomicUsize::new(0);
    // A bounded number in flight, so the load lasts over many group commits and
    // a kill after the first tenth always finds the dying node's later requests
    // still to come (all at once, one node could finish its share first).
    let in_flight = &tokio::sync::Semaphore::new(24);
    let orders = buyers.iter().enumerate().map(|(i, token)| async move {
        let _slot = in_flight.acquire().await.expect("never closed");
        for attempt in 0..3 {
            let answer = cluster
                .client
                .post(cluster.url((i + attempt) % 3, "/api/orders"))
                .bearer_auth(token)
                .header("Idempotency-Key", format!("kill-test-{i}"))
                .json(&json!({"items": [{"product_id": product_id, "qty": 1}]}))
                .send()
                .await;
            match answer.map(|a| a.status().as_u16()) {
                Ok(201) => {
                    placed_so_far.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                Ok(other) => panic!("order {i} answered {other}"),
                // Its node died mid-request: the order may or may not be placed.
                Err(_) => {
                    retried.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        false
    });
    let placed = join_all(orders).await.into_iter().filter(|p| *p).count();
    (placed, retried.load(Ordering::Relaxed))
}

#[tokio::test]
async fn an_instance_killed_mid_load_loses_nothing_and_repeats_nothing() {
    let mut cluster = TestCluster::builder().toml(QUICK_TAKEOVER).start().await;
    let product_id = add_product(&cluster, "耐用款", 10_000).await;
    let cluster_ref = &cluster;
    let logins =
        (0..300).map(|i| async move { cluster_ref.login(i % 3, &format!("o_kill_{i}")).await });
    let buyers: Vec<String> = join_all(logins).await.into_iter().map(|l| l.0).collect();

    // Node 2 dies with SIGKILL while the orders come in, with whatever it leased
    // from the outbox or read from the event stream.
    // Once a tenth of the orders are placed, so that the rest are in flight
    // whatever the machine's speed.
    let placed_so_far = AtomicUsize::new(0);
    let killer = async {
        for _ in 0..10_000 {
            if placed_so_far.load(Ordering::Relaxed) >= buyers.len() / 10 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        cluster.kill(2);
    };
    let ((placed, retried), ()) = tokio::join!(
        place_orders(&cluster, &buyers, product_id, &placed_so_far),
        killer
    );
    assert!(
        retried > 0,
        "the kill came after the load: nothing was interrupted"
    );
    assert_eq!(
        placed, 300,
        "each order placed, on a retry if its node died"
    );
    assert_eq!(
        cluster.count("SELECT COUNT(*) AS n FROM orders").await,
        300,
        "one order per idempotency key: none placed twice"
    );
    let stock = format!("SELECT qty AS n FROM stock WHERE product_id = {product_id}");
    assert_eq!(cluster.count(&stock).await, 10_000 - 300);

    // Every order event is delivered and audited once: the dead node's outbox
    // leases run out and the others take its rows; its unacknowledged stream
    // entries are claimed by the live consumers.
    let undelivered = "SELECT COUNT(*) AS n FROM order_outbox WHERE state <> 'done'";
    let audited = "SELECT COUNT(*) AS n FROM audit_log WHERE event_id LIKE 'order-outbox:%'";
    let staged = "SELECT COUNT(*) AS n FROM audit_pending WHERE event_id LIKE 'order-outbox:%'";
    let events = "SELECT COUNT(*) AS n FROM order_outbox";
    let mut standing = (0, 0, 0);
    for _ in 0..300 {
        standing = (
            cluster.count(undelivered).await,
            cluster.count(audited).await + cluster.count(staged).await,
            cluster.count(events).await,
        );
        if standing.0 == 0 && standing.1 == standing.2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (left, recorded, total) = standing;
    assert_eq!(
        left,
        0,
        "outbox rows not delivered; node 0 says:\n{}",
        cluster.log(0)
    );
    assert!(total >= 300, "an order.placed event per order: {total}");
    assert_eq!(
        recorded, total,
        "each event audited once (event ids are unique)"
    );

    cluster.restart(2).await;
    assert_eq!(
        me(&cluster, 2, &buyers[0]).await,
        200,
        "the restarted node serves"
    );

    // One chain holds the rows every instance wrote: the logins through each, the
    // order events whichever instance consumed them.
    let (verified, said) = cluster.command(&["audit", "verify"]);
    assert!(verified && said.contains("audit log OK"), "{said}");
    let logins = "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'auth.login'";
    assert_eq!(cluster.count(logins).await, 300, "a chained row per login");
}

#[tokio::test]
async fn sigterm_drains_an_instance_while_the_others_serve() {
    let mut cluster = TestCluster::builder().toml(NO_RATE_LIMITS).start().await;
    let (token, _, _) = cluster.login(0, "o_cluster_drain").await;
    assert!(
        cluster.terminate(1).await,
        "node 1 exits cleanly on SIGTERM"
    );
    for node in [0, 2] {
        assert_eq!(me(&cluster, node, &token).await, 200, "node {node}");
    }
}
