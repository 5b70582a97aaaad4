//! A flash sale through crashes: three instances take orders while, at random
//! points, an instance is killed (SIGKILL, mid-batch as often as not), Redis is
//! killed and restarted from its append-only file, or PostgreSQL stops as in a crash
//! and recovers. After the drain the ledger must hold: every reservation answered
//! `202` is an order with the units it was answered for, units sold plus units on
//! hand is the stock (the stock never below zero), no buyer holds more than the
//! limit, and Redis counts what the database has. The seed of the random points is
//! printed with any failure (`WEAPP_CRASH_SEED` replays one).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};
use weapp::testing::{PrivatePostgres, PrivateRedis};

use super::harness::{ADMIN_TOKEN, TestCluster, count_on};
use super::{NO_RATE_LIMITS, add_product};

const STOCK: i64 = 120;
const LIMIT: i64 = 4;
const BUYERS: usize = 40;
const ROUNDS: usize = 12;
const BURST: usize = 50;
/// Cancellations per burst: units come back, so the sale goes on through the crashes.
const CANCELS: usize = 8;

/// xorshift64*: a small reproducible stream of random numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One order request of a buyer: its key and body stay the same on every retry.
#[derive(Clone)]
struct Attempt {
    buyer: usize,
    key: String,
    qty: i64,
}

/// What the clients learned.
#[derive(Default)]
struct Ledger {
    /// Reservations answered 202: order id → (buyer, qty).
    reserved: BTreeMap<i64, (usize, i64)>,
    /// The order each key was answered with.
    by_key: HashMap<String, i64>,
    /// Requests with no definitive answer yet (connection lost, 5xx, 429): retried.
    open: Vec<Attempt>,
    /// Answers by status and code, for the failure message.
    answers: BTreeMap<String, usize>,
}

enum Crash {
    Instance(usize),
    Redis,
    Postgres,
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    product: i64,
    attempt: &Attempt,
) -> Option<(u16, Value)> {
    let answer = client
        .post(format!("{url}/api/orders"))
        .bearer_auth(token)
        .header("Idempotency-Key", &attempt.key)
        .json(&json!({"items": [{"product_id": product, "qty": attempt.qty}]}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    let status = answer.status().as_u16();
    Some((status, answer.json().await.unwrap_or(Value::Null)))
}

/// Cancels order `id` as its buyer; the status, if an answer came.
async fn cancel(client: &reqwest::Client, url: &str, token: &str, id: i64) -> Option<u16> {
    let answer = client
        .post(format!("{url}/api/orders/{id}/cancel"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    Some(answer.status().as_u16())
}

impl Ledger {
    /// Records an answer; `seed` names the run in a failure.
    fn record(&mut self, attempt: Attempt, answer: Option<(u16, Value)>, seed: u64) {
        let Some((status, body)) = answer else {
            *self.answers.entry("no answer".into()).or_default() += 1;
            self.open.push(attempt);
            return;
        };
        let code = body["code"].as_str().unwrap_or("").to_owned();
        *self.answers.entry(format!("{status} {code}")).or_default() += 1;
        match status {
            202 => {
                let id = body["order_id"].as_i64().expect("order id");
                assert_eq!(body["status"], "reserved", "seed {seed}: {body}");
                if let Some(first) = self.by_key.insert(attempt.key.clone(), id) {
                    assert_eq!(first, id, "seed {seed}: a retry got another order");
                }
                self.reserved.insert(id, (attempt.buyer, attempt.qty));
            }
            409 => assert!(
                ["out_of_stock", "flash_sale_limit"].contains(&code.as_str()),
                "seed {seed}: {body}"
            ),
            429 | 500..=599 => self.open.push(attempt),
            _ => panic!("seed {seed}: unexpected answer {status}: {body}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flash_sale_keeps_its_ledger_through_instance_redis_and_postgresql_crashes() {
    let seed = std::env::var("WEAPP_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 | 1)
                .unwrap_or(1)
        });
    println!("flash-sale crash test seed {seed}");
    let mut rng = Rng(seed);
    let postgres = PrivatePostgres::start();
    let mut redis = PrivateRedis::start();
    let mut cluster = TestCluster::builder()
        .database_url(postgres.url())
        .redis_url(redis.url())
        .toml(NO_RATE_LIMITS)
        .toml(
            "[order]\nmax_pending_orders = 0\nmax_pending_units = 0\n\
             [order.flash_sale]\nreconcile_interval_ms = 300\nsold_out_recheck_ms = 50\n\
             claim_after_ms = 1000\nbatch_size = 16\nrefresh_interval_ms = 100\n\
             [order.outbox]\npoll_interval_ms = 20\nlease_ms = 1000",
        )
        .start()
        .await;
    let product = add_product(&cluster, "秒杀款", STOCK).await;
    let started = cluster
        .client
        .put(cluster.url(0, &format!("/api/admin/products/{product}/flash-sale")))
        .header("X-Admin-Token", ADMIN_TOKEN)
        .json(&json!({"per_user_limit": LIMIT}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    // The other instances learn of the sale within `refresh_interval_ms`.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut tokens = Vec::new();
    for i in 0..BUYERS {
        let (token, _, _) = cluster.login(i % 3, &format!("o_flash_crash_{i}")).await;
        tokens.push(token);
    }

    let mut ledger = Ledger::default();
    let mut next_key = 0;
    let mut crashes: Vec<Crash> = (0..3)
        .flat_map(|i| {
            [
                Crash::Instance(i),
                Crash::Redis,
                Crash::Postgres,
                Crash::Instance(2 - i),
            ]
        })
        .collect();
    for round in 0..ROUNDS {
        let crash = crashes.remove(rng.below(crashes.len()));
        let urls: Vec<String> = (0..3).map(|i| cluster.url(i, "")).collect();
        let mut attempts = std::mem::take(&mut ledger.open);
        while attempts.len() < BURST {
            next_key += 1;
            attempts.push(Attempt {
                buyer: rng.below(BUYERS),
                key: format!("crash-{seed}-{next_key}"),
                qty: 1 + rng.below(2) as i64,
            });
        }
        let plan: Vec<(Attempt, String)> = attempts
            .into_iter()
            .map(|a| (a, urls[rng.below(3)].clone()))
            .collect();
        let delay = Duration::from_millis(rng.below(300) as u64);
        let downtime = Duration::from_millis(100 + rng.below(500) as u64);
        let client = &cluster.client;
        let tokens = &tokens;
        let burst = join_all(plan.into_iter().map(|(attempt, url)| async move {
            let answer = send(client, &url, &tokens[attempt.buyer], product, &attempt).await;
            (attempt, answer)
        }));
        let crashing = async {
            tokio::time::sleep(delay).await;
            match crash {
                Crash::Instance(i) => cluster.kill(i),
                Crash::Redis => {
                    tokio::task::block_in_place(|| redis.crash());
                    tokio::time::sleep(downtime).await;
                    tokio::task::block_in_place(|| redis.start_again());
                }
                Crash::Postgres => {
                    tokio::task::block_in_place(|| postgres.crash());
                    tokio::time::sleep(downtime).await;
                    tokio::task::block_in_place(|| postgres.start_again());
                }
            }
        };
        let ids: Vec<(i64, usize)> = ledger
            .reserved
            .iter()
            .map(|(id, (b, _))| (*id, *b))
            .collect();
        let cancels = (0..CANCELS.min(ids.len()))
            .map(|_| (ids[rng.below(ids.len())], urls[rng.below(3)].clone()))
            .collect::<Vec<_>>();
        let cancelling = join_all(cancels.into_iter().map(|((id, buyer), url)| async move {
            cancel(client, &url, &tokens[buyer], id).await
        }));
        let (answers, cancelled, ()) = tokio::join!(burst, cancelling, crashing);
        for (attempt, answer) in answers {
            ledger.record(attempt, answer, seed);
        }
        for status in cancelled {
            let status = status.map_or("no answer".to_owned(), |s| s.to_string());
            assert!(
                ["200", "409", "503", "no answer"].contains(&status.as_str()),
                "seed {seed}: a cancellation answered {status}"
            );
            *ledger
                .answers
                .entry(format!("cancel {status}"))
                .or_default() += 1;
        }
        if let Crash::Instance(i) = crash {
            cluster.restart(i).await;
        }
        println!("round {round}: {:?}", ledger.answers);
    }

    // Every request without a definitive answer is sent again until it has one, as
    // a client with its key would.
    for _ in 0..100 {
        if ledger.open.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        for attempt in std::mem::take(&mut ledger.open) {
            let url = cluster.url(0, "");
            let answer = send(
                &cluster.client,
                &url,
                &tokens[attempt.buyer],
                product,
                &attempt,
            )
            .await;
            ledger.record(attempt, answer, seed);
        }
    }
    assert!(
        ledger.open.is_empty(),
        "seed {seed}: requests never answered"
    );

    let view = || async {
        cluster
            .client
            .get(cluster.url(0, &format!("/api/admin/products/{product}/flash-sale")))
            .header("X-Admin-Token", ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let mut drained = Value::Null;
    for _ in 0..300 {
        drained = view().await;
        if drained["queued"] == 0 && drained["available"] == drained["stock"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        drained["queued"], 0,
        "seed {seed}: the queue drained: {drained}"
    );
    assert_eq!(
        drained["available"], drained["stock"],
        "seed {seed}: Redis counts what the database has: {drained}"
    );

    // A pool of its own: connections made before PostgreSQL's crashes are gone.
    let db = weapp::db::Db::connect(&weapp::db::DatabaseConfig {
        url: weapp::config::ConnectionUrl::new(postgres.url()),
        ..Default::default()
    })
    .expect("a pool");
    let ids = ledger
        .reserved
        .keys()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    assert!(
        !ledger.reserved.is_empty(),
        "seed {seed}: {:?}",
        ledger.answers
    );
    let written = count_on(
        &db,
        &format!("SELECT COUNT(*) AS n FROM orders WHERE id IN ({ids})"),
    )
    .await;
    assert_eq!(
        written as usize,
        ledger.reserved.len(),
        "seed {seed}: every reservation answered 202 is an order (none lost)"
    );
    let all_orders = count_on(
        &db,
        &format!("SELECT COUNT(*) AS n FROM order_items WHERE product_id = {product}"),
    )
    .await;
    assert_eq!(
        all_orders as usize,
        ledger.reserved.len(),
        "seed {seed}: no order the buyers were not answered for"
    );
    let units_reserved: i64 = ledger.reserved.values().map(|(_, qty)| qty).sum();
    let units_in_lines = count_on(
        &db,
        &format!(
            "SELECT COALESCE(SUM(qty), 0)::BIGINT AS n FROM order_items WHERE order_id IN ({ids})"
        ),
    )
    .await;
    assert_eq!(
        units_in_lines, units_reserved,
        "seed {seed}: each order holds the units it was answered for"
    );
    let sold = count_on(
        &db,
        &format!(
            "SELECT COALESCE(SUM(i.qty), 0)::BIGINT AS n FROM order_items i \
             JOIN orders o ON o.id = i.order_id \
             WHERE i.product_id = {product} AND o.status <> 'cancelled'"
        ),
    )
    .await;
    let on_hand = count_on(
        &db,
        &format!("SELECT qty AS n FROM stock WHERE product_id = {product}"),
    )
    .await;
    assert!(on_hand >= 0, "seed {seed}: stock {on_hand}");
    assert_eq!(
        sold + on_hand,
        STOCK,
        "seed {seed}: units sold ({sold}) + on hand ({on_hand}) = the stock; nothing oversold"
    );
    let most_held = count_on(
        &db,
        &format!(
            "SELECT COALESCE(MAX(units), 0)::BIGINT AS n FROM (SELECT SUM(i.qty) AS units \
             FROM order_items i JOIN orders o ON o.id = i.order_id \
             WHERE i.product_id = {product} AND o.status <> 'cancelled' GROUP BY o.user_id) t"
        ),
    )
    .await;
    assert!(most_held <= LIMIT, "seed {seed}: a buyer holds {most_held}");
    println!(
        "seed {seed}: {} reservations, {sold} units sold, {on_hand} on hand; answers {:?}",
        ledger.reserved.len(),
        ledger.answers
    );
}
