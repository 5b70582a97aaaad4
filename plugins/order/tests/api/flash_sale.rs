//! Flash-sale mode: units reserved in Redis (202 `reserved`), orders written in
//! batches, the database the final word, the counters rebuilt from it, and the
//! mode refused where it cannot run.

use std::collections::HashMap;

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use weapp::db::{Backend, DbConn};
use weapp::diesel_async::SimpleAsyncConnection;
use weapp::testing::{TestApp, TestAppBuilder};

use crate::support::*;

fn flash_builder() -> TestAppBuilder {
    builder(Backend::Postgres)
        .redis()
        .set("auth.admin_tokens.ops", ADMIN)
        .set("order.flash_sale.sold_out_recheck_ms", 50)
        .set("order.flash_sale.reconcile_interval_ms", 200)
}

fn sale_path(product: i64) -> String {
    format!("/api/admin/products/{product}/flash-sale")
}

/// Puts `product` on flash sale; returns the sale.
async fn start_sale(app: &TestApp, product: i64, per_user_limit: i64) -> Value {
    let body = json!({ "per_user_limit": per_user_limit });
    let (status, sale) = admin(app, Method::PUT, &sale_path(product), Some(body)).await;
    assert_eq!(status, 200, "{sale}");
    sale
}

async fn sale(app: &TestApp, product: i64) -> Value {
    let (status, sale) = admin(app, Method::GET, &sale_path(product), None).await;
    assert_eq!(status, 200, "{sale}");
    sale
}

/// A Redis connection of the app, and the prefix of `product`'s sale keys.
fn sale_redis(app: &TestApp, product: i64) -> (weapp::kv::RedisConnection, String) {
    let client = app.ctx.get::<weapp::kv::RedisClient>().expect("redis");
    let base = format!("{}order:fs:{{{product}}}:", client.key_prefix());
    (client.connection().expect("a connection"), base)
}

/// `n` buyers: `(token, user id)`.
async fn buyers(app: &TestApp, tag: &str, n: usize) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(app.login(&format!("o_flash_{tag}_{i}")).await);
    }
    out
}

/// Holds the product's stock row locked, as a long transaction would: the writers
/// wait, so reservations stay reserved.
async fn lock_stock(app: &TestApp, product: i64) -> DbConn {
    let mut conn = app.ctx.db().conn().await.expect("a connection");
    let DbConn::Postgres(c) = &mut conn else {
        panic!("flash sales run on PostgreSQL");
    };
    c.batch_execute(&format!(
        "BEGIN; SELECT qty FROM stock WHERE product_id = {product} FOR UPDATE"
    ))
    .await
    .expect("stock row locked");
    conn
}

/// Runs `sql` in the locked transaction, then commits it.
async fn unlock(mut conn: DbConn, sql: &str) {
    let DbConn::Postgres(c) = &mut conn else {
        unreachable!()
    };
    c.batch_execute(&format!("{sql} COMMIT"))
        .await
        .expect("committed");
}

async fn order_view(app: &TestApp, token: &str, id: i64) -> (StatusCode, Value) {
    get(app, &format!("/api/orders/{id}"), Some(token)).await
}

async fn written(app: &TestApp, ids: &[i64], status: &str) -> i64 {
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    app.count(&format!(
        "SELECT COUNT(*) AS n FROM orders WHERE id IN ({list}) AND status = '{status}'"
    ))
    .await
}

/// Reserves `items` under `key` (202) and waits until the order is written
/// (pending); returns its id.
async fn reserve_written(app: &TestApp, token: &str, key: &str, items: Value) -> i64 {
    let (status, body, _) = place(app, token, key, items).await;
    assert_eq!(status, 202, "{body}");
    let id = body["order_id"].as_i64().unwrap();
    eventually("the order is written", || async {
        written(app, &[id], "pending").await == 1
    })
    .await;
    id
}

#[tokio::test]
async fn many_buyers_at_once_get_exactly_the_stock_and_every_reservation_is_written() {
    let app = flash_builder().spawn().await;
    let tea = product(&app, 300, 20).await;
    let sale_view = start_sale(&app, tea, 2).await;
    assert_eq!(sale_view["available"], 20, "{sale_view}");
    let buyers = buyers(&app, "many", 12).await;
    let shop = &app;
    let attempts = buyers.iter().flat_map(|(token, user)| {
        (0..3).map(move |_| async move {
            let line = json!([{"product_id": tea, "qty": 1}]);
            let (status, body, _) = place(shop, token, key(), line).await;
            (*user, status, body)
        })
    });
    let answers = join_all(attempts).await;
    let mut held: HashMap<i64, usize> = HashMap::new();
    let mut accepted = Vec::new();
    for (user, status, body) in &answers {
        match status.as_u16() {
            202 => {
                assert_eq!(body["status"], "reserved", "{body}");
                assert_eq!(body["total_fen"], 300, "{body}");
                *held.entry(*user).or_default() += 1;
                accepted.push(body["order_id"].as_i64().expect("order id"));
            }
            409 => assert!(
                ["out_of_stock", "flash_sale_limit"].contains(&body["code"].as_str().unwrap_or("")),
                "{body}"
            ),
            _ => panic!("unexpected answer {status}: {body}"),
        }
    }
    assert_eq!(
        accepted.len(),
        20,
        "the stock, no more and no less: {answers:?}"
    );
    assert!(held.values().all(|n| *n <= 2), "{held:?}");

    eventually(
        "every reservation is written as a pending order",
        || async { written(&app, &accepted, "pending").await == 20 },
    )
    .await;
    assert_eq!(
        app.count(&format!(
            "SELECT qty AS n FROM stock WHERE product_id = {tea}"
        ))
        .await,
        0
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COALESCE(SUM(qty), 0)::BIGINT AS n FROM order_items WHERE product_id = {tea}"
        ))
        .await,
        20,
        "one unit per order, and no other order of the product"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM order_outbox WHERE topic = 'order.created'")
            .await,
        20
    );
    let (token, _) = &buyers[0];
    let (status, view) = order_view(&app, token, accepted[0]).await;
    if status == 200 {
        assert_eq!(view["status"], "pending", "{view}");
    }
    eventually("the sale shows nothing queued and nothing left", || async {
        let view = sale(&app, tea).await;
        view["stock"] == 0 && view["available"] == 0 && view["queued"] == 0
    })
    .await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"order_flash_reservations_total{outcome="reserved"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_reservation_is_shown_reserved_until_written_and_a_retry_gets_its_answer() {
    let app = flash_builder().spawn().await;
    let tea = product(&app, 250, 5).await;
    let other = product(&app, 100, 5).await;
    start_sale(&app, tea, 5).await;
    let (token, _) = app.login("o_flash_reserved").await;
    let (stranger, _) = app.login("o_flash_stranger").await;
    let lock = lock_stock(&app, tea).await;

    let k = key();
    let line = json!([{"product_id": tea, "qty": 2}]);
    let (status, first, replayed) = place(&app, &token, &k, line.clone()).await;
    assert_eq!((status.as_u16(), replayed), (202, false), "{first}");
    assert_eq!(first["status"], "reserved");
    assert_eq!(first["total_fen"], 500);
    let id = first["order_id"].as_i64().unwrap();
    let (status, again, replayed) = place(&app, &token, &k, line.clone()).await;
    assert_eq!((status.as_u16(), replayed), (202, true));
    assert_eq!(again, first);
    let (status, reused, _) = place(&app, &token, &k, json!([{"product_id": tea, "qty": 1}])).await;
    assert_eq!(status, 422, "{reused}");
    assert_eq!(reused["code"], "idempotency_key_reused");
    let mixed = json!([{"product_id": tea, "qty": 1}, {"product_id": other, "qty": 1}]);
    let (status, body, _) = place(&app, &token, key(), mixed).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "flash_sale_single_line");

    let (status, view) = order_view(&app, &token, id).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "reserved");
    assert_eq!(
        view["items"],
        json!([{"product_id": tea, "qty": 2, "price_fen": 250}])
    );
    assert_eq!(order_view(&app, &stranger, id).await.0, 404);
    assert_eq!(cancel(&app, &token, id).await, 409);
    let (status, body) = pay_params(&app, &token, id).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "order_not_payable");
    assert_eq!(sale(&app, tea).await["queued"], 1);

    unlock(lock, "").await;
    eventually("the reservation is written", || async {
        order_view(&app, &token, id).await.1["status"] == "pending"
    })
    .await;
    let (status, replay, replayed) = place(&app, &token, &k, line).await;
    assert_eq!((status.as_u16(), replayed), (202, true));
    assert_eq!(replay["order_id"], id);
    let (_, list) = get(&app, "/api/orders", Some(&token)).await;
    assert_eq!(list["items"][0]["order_id"], id, "{list}");
    assert_eq!(stock(&app, tea).await, 3);
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after() {
    let app = flash_builder()
        .set("order.flash_sale.max_queued", 1)
        .spawn()
        .await;
    let tea = product(&app, 100, 10).await;
    start_sale(&app, tea, 1).await;
    let buyers = buyers(&app, "busy", 3).await;
    let lock = lock_stock(&app, tea).await;
    let line = json!([{"product_id": tea, "qty": 1}]);
    let (status, first, _) = place(&app, &buyers[0].0, key(), line.clone()).await;
    assert_eq!(status, 202, "{first}");
    let refused = place_raw(&app, &buyers[1].0, key(), line.clone()).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "flash_sale_busy", "{body}");
    unlock(lock, "").await;
    let id = first["order_id"].as_i64().unwrap();
    eventually("the queue drains", || async {
        written(&app, &[id], "pending").await == 1
    })
    .await;
    let (status, body, _) = place(&app, &buyers[2].0, key(), line).await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test]
async fn the_database_refuses_reservations_it_has_no_units_for() {
    let app = flash_builder().spawn().await;
    let tea = product(&app, 100, 3).await;
    start_sale(&app, tea, 1).await;
    let buyers = buyers(&app, "refused", 3).await;
    let lock = lock_stock(&app, tea).await;
    let line = json!([{"product_id": tea, "qty": 1}]);
    let mut ids = Vec::new();
    for (token, _) in &buyers {
        let (status, body, _) = place(&app, token, key(), line.clone()).await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["order_id"].as_i64().unwrap());
    }
    // Someone sets the stock to 1 in the database while the three are queued.
    unlock(
        lock,
        &format!("UPDATE stock SET qty = 1 WHERE product_id = {tea};"),
    )
    .await;
    eventually("all three are written", || async {
        written(&app, &ids, "pending").await + written(&app, &ids, "cancelled").await == 3
    })
    .await;
    assert_eq!(written(&app, &ids, "pending").await, 1);
    assert_eq!(stock(&app, tea).await, 0);
    let refused = ids.iter().zip(&buyers).skip(1);
    for (id, (token, _)) in refused.clone() {
        let (_, view) = order_view(&app, token, *id).await;
        assert_eq!(view["status"], "cancelled", "{view}");
        assert_eq!(view["cancel_reason"], "out_of_stock", "{view}");
    }
    eventually("Redis counts what the database has", || async {
        sale(&app, tea).await["available"] == 0
    })
    .await;
    // Two more units: a refused buyer's unit was given back, so they may buy again.
    let (status, body) = admin(
        &app,
        Method::PUT,
        &format!("/api/admin/products/{tea}/stock"),
        Some(json!({"delta": 2})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    eventually("the new units can be reserved", || async {
        sale(&app, tea).await["available"] == 2
    })
    .await;
    let (status, body, _) = place(&app, &buyers[2].0, key(), line.clone()).await;
    assert_eq!(status, 202, "{body}");
    let (status, body, _) = place(&app, &buyers[0].0, key(), line).await;
    assert_eq!(status, 409, "the first buyer still holds theirs: {body}");
    assert_eq!(body["code"], "flash_sale_limit");
}

#[tokio::test]
async fn a_cancelled_order_gives_its_unit_back_to_the_sale_and_its_buyer() {
    let app = flash_builder().spawn().await;
    let tea = product(&app, 100, 1).await;
    start_sale(&app, tea, 1).await;
    let (alice, _) = app.login("o_flash_alice").await;
    let (bob, _) = app.login("o_flash_bob").await;
    let line = json!([{"product_id": tea, "qty": 1}]);
    let (status, body, _) = place(&app, &alice, key(), line.clone()).await;
    assert_eq!(status, 202, "{body}");
    let id = body["order_id"].as_i64().unwrap();
    let (status, body, _) = place(&app, &bob, key(), line.clone()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "out_of_stock");
    eventually("the order is written", || async {
        written(&app, &[id], "pending").await == 1
    })
    .await;
    assert_eq!(cancel(&app, &alice, id).await, 200);
    eventually("bob gets the unit back on sale", || async {
        place(&app, &bob, key(), line.clone()).await.0 == 202
    })
    .await;
    // Alice's cancelled unit no longer counts against her limit, but none is left.
    let (status, body, _) = place(&app, &alice, key(), line).await;
    assert_eq!(status, 409);
    assert_eq!(body["code"], "out_of_stock", "{body}");
}

#[tokio::test]
async fn only_units_of_a_product_on_sale_have_the_sale_synced_again() {
    // No periodic sync within the test: every sync is one something woke.
    let app = flash_builder()
        .set("order.flash_sale.reconcile_interval_ms", 600_000)
        .spawn()
        .await;
    let tea = product(&app, 100, 1).await;
    let cake = product(&app, 200, 10).await;
    start_sale(&app, tea, 1).await;
    let (token, _) = app.login("o_flash_elsewhere").await;
    let mut cakes = Vec::new();
    for _ in 0..3 {
        let (status, body, _) =
            place(&app, &token, key(), json!([{"product_id": cake, "qty": 1}])).await;
        assert_eq!(status, 201, "{body}");
        cakes.push(body["order_id"].as_i64().unwrap());
    }
    let before = metric(&app, "order_flash_syncs_total").await;
    // The shop's ordinary cancellations (unpaid orders expiring do the same).
    for id in cakes {
        assert_eq!(cancel(&app, &token, id).await, 200);
    }
    // A sync they woke would have run by now.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        metric(&app, "order_flash_syncs_total").await,
        before,
        "cancelled orders of another product leave the sale alone"
    );

    let id = reserve_written(&app, &token, &key(), json!([{"product_id": tea, "qty": 1}])).await;
    assert_eq!(cancel(&app, &token, id).await, 200);
    eventually("the sale's own unit is on sale again", || async {
        sale(&app, tea).await["available"] == 1
    })
    .await;
    assert!(metric(&app, "order_flash_syncs_total").await > before);
}

#[tokio::test]
async fn cancellations_in_a_row_are_synced_together() {
    let app = flash_builder()
        .set("order.flash_sale.reconcile_interval_ms", 600_000)
        .set("order.flash_sale.resync_interval_ms", 2_000)
        .spawn()
        .await;
    let tea = product(&app, 100, 10).await;
    start_sale(&app, tea, 10).await;
    let (token, _) = app.login("o_flash_cancels").await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        let line = json!([{"product_id": tea, "qty": 1}]);
        ids.push(reserve_written(&app, &token, &key(), line).await);
    }
    let before = metric(&app, "order_flash_syncs_total").await;
    for id in ids {
        assert_eq!(cancel(&app, &token, id).await, 200);
    }
    eventually("the ten units are on sale again", || async {
        sale(&app, tea).await["available"] == 10
    })
    .await;
    // The first cancellation's sync at once, the other nine's together after it.
    let syncs = metric(&app, "order_flash_syncs_total").await - before;
    assert!(syncs <= 2.0, "{syncs} syncs for ten cancellations");
}

#[tokio::test]
async fn an_ended_sale_leaves_redis_once_written_and_its_keys_still_answer() {
    let app = flash_builder()
        .set("order.flash_sale.refresh_interval_ms", 50)
        .spawn()
        .await;
    let tea = product(&app, 100, 5).await;
    start_sale(&app, tea, 2).await;
    let (token, _) = app.login("o_flash_ended").await;
    let first_key = key();
    let line = json!([{"product_id": tea, "qty": 1}]);
    let id = reserve_written(&app, &token, &first_key, line.clone()).await;
    let (mut redis, base) = sale_redis(&app, tea);
    let counters = [
        format!("{base}stock"),
        format!("{base}users"),
        format!("{base}keys"),
    ];
    let watcher = redis.clone();
    let left = async || -> i64 {
        redis::cmd("EXISTS")
            .arg(&counters)
            .query_async(&mut watcher.clone())
            .await
            .unwrap()
    };
    assert_eq!(left().await, 3);

    let (status, ended) = admin(&app, Method::DELETE, &sale_path(tea), None).await;
    assert_eq!(status, 200, "{ended}");
    // A reservation still held (not yet written) keeps the sale in Redis.
    let _: () = redis::cmd("HSET")
        .arg(format!("{base}held"))
        .arg(999)
        .arg("held")
        .query_async(&mut redis)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(left().await, 3, "kept while a reservation is held");
    let _: () = redis::cmd("HDEL")
        .arg(format!("{base}held"))
        .arg(999)
        .query_async(&mut redis)
        .await
        .unwrap();
    eventually(
        "the ended sale's counters and key records are dropped",
        || async { left().await == 0 },
    )
    .await;

    // A retry of a key of the sale is answered from the database: the same order.
    let (status, replay, replayed) = place(&app, &token, &first_key, line.clone()).await;
    assert_eq!((status.as_u16(), replayed), (202, true), "{replay}");
    assert_eq!(replay["order_id"], id);
    let (status, body, _) = place(&app, &token, key(), line.clone()).await;
    assert_eq!(status, 201, "placed the ordinary way: {body}");
    // Started again, the counters come from the database afresh.
    start_sale(&app, tea, 2).await;
    assert_eq!(sale(&app, tea).await["available"], 3);
    let (status, body, _) = place(&app, &token, key(), line).await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test]
async fn an_unpaid_flash_order_expires_and_its_unit_goes_back_on_sale() {
    let app = flash_builder()
        .set("order.unpaid_timeout_s", 1)
        .set("order.expiry_interval_ms", 100)
        .spawn()
        .await;
    let tea = product(&app, 100, 1).await;
    start_sale(&app, tea, 1).await;
    let (token, _) = app.login("o_flash_late").await;
    let line = json!([{"product_id": tea, "qty": 1}]);
    let (status, body, _) = place(&app, &token, key(), line.clone()).await;
    assert_eq!(status, 202, "{body}");
    let id = body["order_id"].as_i64().unwrap();
    eventually("the order expires", || async {
        written(&app, &[id], "cancelled").await == 1
    })
    .await;
    eventually("the unit is on sale again", || async {
        sale(&app, tea).await["available"] == 1
    })
    .await;
    let (status, body, _) = place(&app, &token, key(), line).await;
    assert_eq!(status, 202, "the same buyer may buy again: {body}");
}

#[tokio::test]
async fn a_sale_redis_lost_is_rebuilt_from_the_database() {
    let app = flash_builder()
        .set("order.flash_sale.reconcile_interval_ms", 60_000)
        .spawn()
        .await;
    let tea = product(&app, 100, 10).await;
    start_sale(&app, tea, 2).await;
    let (token, _) = app.login("o_flash_rebuilt").await;
    let first_key = key();
    let line = json!([{"product_id": tea, "qty": 2}]);
    let id = reserve_written(&app, &token, &first_key, line.clone()).await;

    // Redis restarted without its data.
    let (mut redis, base) = sale_redis(&app, tea);
    let pattern = format!("{base}*");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "{pattern}");
    let _: i64 = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut redis)
        .await
        .unwrap();

    let refused = place_raw(&app, &token, key(), json!([{"product_id": tea, "qty": 1}])).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "flash_sale_loading", "{body}");
    eventually("the counters are rebuilt", || async {
        sale(&app, tea).await["available"] == 8
    })
    .await;
    let (status, replay, replayed) = place(&app, &token, &first_key, line).await;
    assert_eq!((status.as_u16(), replayed), (202, true), "{replay}");
    assert_eq!(replay["order_id"], id);
    let (status, body, _) =
        place(&app, &token, key(), json!([{"product_id": tea, "qty": 1}])).await;
    assert_eq!(
        status, 409,
        "the buyer's two units are counted again: {body}"
    );
    assert_eq!(body["code"], "flash_sale_limit");
}

#[tokio::test]
async fn flash_sales_are_refused_without_postgresql_and_redis() {
    let no_redis = builder(Backend::Postgres)
        .set("auth.admin_tokens.ops", ADMIN)
        .spawn()
        .await;
    let tea = product(&no_redis, 100, 1).await;
    let body = json!({"per_user_limit": 1});
    let (status, refused) =
        admin(&no_redis, Method::PUT, &sale_path(tea), Some(body.clone())).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["code"], "flash_sale_unsupported");

    let file = std::env::temp_dir().join(format!("weapp-flash-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}", file.display());
    let sqlite = builder(Backend::Sqlite)
        .database_url(&url)
        .set("auth.admin_tokens.ops", ADMIN)
        .redis()
        .spawn()
        .await;
    let tea = product(&sqlite, 100, 1).await;
    let (status, refused) = admin(&sqlite, Method::PUT, &sale_path(tea), Some(body)).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["code"], "flash_sale_unsupported");
    // A sale left running (say, by a copy of the database): the app does not start.
    sqlite
        .execute(&format!(
            "INSERT INTO order_flash_sales (product_id, per_user_limit, active, started_at, updated_at) \
             VALUES ({tea}, 1, TRUE, 0, 0)"
        ))
        .await;
    sqlite.stop().await.unwrap();
    let error = builder(Backend::Sqlite)
        .database_url(&url)
        .try_spawn()
        .await
        .err()
        .expect("the app refuses to start");
    assert!(error.to_string().contains("flash sale"), "{error}");
    // The database and SQLite's write-ahead log and shared-memory files beside it.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
}

#[tokio::test]
async fn a_reservation_written_but_not_forgotten_is_not_written_twice() {
    let app = flash_builder().spawn().await;
    let tea = product(&app, 100, 5).await;
    start_sale(&app, tea, 5).await;
    let (token, _) = app.login("o_flash_twice").await;
    let id = reserve_written(&app, &token, &key(), json!([{"product_id": tea, "qty": 2}])).await;
    eventually("and forgotten by Redis", || async {
        sale(&app, tea).await["queued"] == 0
    })
    .await;

    // As if the writer stopped between its commit and telling Redis: the
    // reservation is queued and held again.
    let (mut redis, base) = sale_redis(&app, tea);
    let record: String = redis::cmd("HVALS")
        .arg(format!("{base}keys"))
        .query_async::<Vec<String>>(&mut redis)
        .await
        .unwrap()
        .pop()
        .expect("the key's record");
    let hash = record.rsplit(':').next().unwrap().to_owned();
    let user = app
        .count(&format!("SELECT user_id AS n FROM orders WHERE id = {id}"))
        .await;
    // order:user:qty:total:reserved at:expires at:request hash:key
    let payload = format!("{id}:{user}:2:200:1:2:{hash}:again");
    let _: () = redis::pipe()
        .cmd("HSET")
        .arg(format!("{base}held"))
        .arg(id)
        .arg(&payload)
        .cmd("XADD")
        .arg(format!("{base}queue"))
        .arg("*")
        .arg("p")
        .arg(&payload)
        .query_async(&mut redis)
        .await
        .unwrap();
    eventually("the entry is settled again", || async {
        sale(&app, tea).await["queued"] == 0
    })
    .await;
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM order_items WHERE product_id = {tea}"
        ))
        .await,
        1,
        "one order"
    );
    assert_eq!(stock(&app, tea).await, 3, "its units taken once");
    eventually("Redis counts the database's units", || async {
        sale(&app, tea).await["available"] == 3
    })
    .await;
}

#[tokio::test]
async fn a_write_pace_spreads_the_writes_and_loses_nothing() {
    let app = flash_builder()
        .set("order.flash_sale.max_writes_per_s", 5)
        .set("order.flash_sale.batch_size", 2)
        .spawn()
        .await;
    let tea = product(&app, 100, 20).await;
    start_sale(&app, tea, 1).await;
    let buyers = buyers(&app, "paced", 10).await;
    let mut ids = Vec::new();
    for (token, _) in &buyers {
        let (status, body, _) =
            place(&app, token, key(), json!([{"product_id": tea, "qty": 1}])).await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["order_id"].as_i64().unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let early = written(&app, &ids, "pending").await;
    assert!(
        early <= 6,
        "two a batch, five a second: {early} written at once"
    );
    eventually("every reservation is written at the pace", || async {
        written(&app, &ids, "pending").await == 10
    })
    .await;
}
