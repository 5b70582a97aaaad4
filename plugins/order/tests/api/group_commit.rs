//! Group commit on PostgreSQL: concurrent orders share transactions, and a batch that
//! cannot commit as a whole changes no answer.

use std::collections::HashSet;

use serde_json::json;
use weapp::db::Backend;

use crate::support::*;

/// One lane, so orders arriving while it writes queue up and share the next batch.
async fn one_lane_app() -> weapp::testing::TestApp {
    builder(Backend::Postgres)
        .set("database.max_connections", 16)
        .set("order.group_commit.lanes", 1)
        .spawn()
        .await
}

#[tokio::test]
async fn concurrent_orders_share_transactions_and_each_keeps_its_own_rows() {
    let app = one_lane_app().await;
    let item = product(&app, 250, 1_000).await;
    let (token, _) = app.login("o_grouped").await;
    let keys: Vec<String> = (0..40).map(|_| key()).collect();
    let buys = keys.iter().enumerate().map(|(i, k)| {
        let qty = 1 + (i as i64 % 3);
        place(&app, &token, k, json!([{"product_id": item, "qty": qty}]))
    });
    let answers = futures_util::future::join_all(buys).await;

    let mut ids = HashSet::new();
    let mut units = 0;
    for (i, (status, body, replayed)) in answers.iter().enumerate() {
        assert_eq!(status.as_u16(), 201, "{body}");
        assert!(!replayed);
        let qty = 1 + (i as i64 % 3);
        units += qty;
        assert_eq!(body["total_fen"], 250 * qty, "{body}");
        let id = body["order_id"].as_i64().expect("order_id");
        assert!(ids.insert(id), "order ids are distinct");
        let sql = format!(
            "SELECT COUNT(*) AS n FROM orders o JOIN order_items i ON i.order_id = o.id \
             WHERE o.id = {id} AND o.total_fen = {} AND i.qty = {qty} AND i.price_fen = 250",
            250 * qty
        );
        assert_eq!(
            count(&app, &sql).await,
            1,
            "order {id} is stored as answered"
        );
    }
    assert_eq!(stock(&app, item).await, 1_000 - units);
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM orders").await, 40);
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM order_idempotency_keys").await,
        40
    );
    // Rows written by one transaction share its id (xmin): fewer transactions than
    // orders means orders were committed together.
    let transactions = count(&app, "SELECT COUNT(DISTINCT xmin::text) AS n FROM orders").await;
    assert!(
        transactions < 40,
        "40 concurrent orders took {transactions} transactions"
    );
    // Each order's event is delivered once, under its own order.
    eventually("every order's event is delivered", || async {
        count(
            &app,
            "SELECT COUNT(*) AS n FROM order_outbox WHERE state = 'done' AND topic = 'order.created'",
        )
        .await
            == 40
    })
    .await;
    let events_per_order = count(
        &app,
        "SELECT COUNT(*) AS n FROM orders o JOIN order_outbox e \
         ON (e.payload::json ->> 'order_id')::bigint = o.id",
    )
    .await;
    assert_eq!(events_per_order, 40);

    // The batches show in /metrics (process-wide: other tests' batches add to it).
    let committed = metric(&app, "order_batch_orders_sum").await;
    let batches = metric(&app, "order_batch_orders_count").await;
    assert!(committed >= 40.0, "order_batch_orders_sum {committed}");
    assert!(batches >= 1.0 && batches < committed, "{batches} batches");

    // A retry replays the stored answer of a grouped order.
    let (status, body, replayed) = place(
        &app,
        &token,
        &keys[7],
        json!([{"product_id": item, "qty": 2}]),
    )
    .await;
    assert_eq!(status.as_u16(), 201);
    assert!(replayed);
    assert_eq!(body, answers[7].1);
    app.stop().await.unwrap();
}

/// In one burst: orders of a product that does not exist, one key sent five times,
/// and more two-line orders than one of their products has stock for. Every answer is
/// what the order would get alone, and only what was answered 201 is kept.
#[tokio::test]
async fn a_batch_that_cannot_commit_whole_gives_every_order_its_own_answer() {
    let app = one_lane_app().await;
    let scarce = product(&app, 100, 3).await;
    let plenty = product(&app, 300, 1_000).await;
    let (token, _) = app.login("o_grouped_mixed").await;
    let shared_key = key();
    let mut buys = Vec::new();
    for i in 0..30 {
        let (k, items) = match i % 6 {
            0 => (key(), json!([{"product_id": 999_999_999, "qty": 1}])),
            1 => (
                shared_key.clone(),
                json!([{"product_id": plenty, "qty": 1}]),
            ),
            2 => (
                key(),
                json!([{"product_id": scarce, "qty": 1}, {"product_id": plenty, "qty": 1}]),
            ),
            _ => (key(), json!([{"product_id": plenty, "qty": 1}])),
        };
        buys.push(place(&app, &token, k, items));
    }
    let answers = futures_util::future::join_all(buys).await;

    let mut shared_answers = Vec::new();
    let mut placed = 0;
    let mut scarce_sold = 0;
    for (i, (status, body, _)) in answers.iter().enumerate() {
        match i % 6 {
            0 => {
                assert_eq!(status.as_u16(), 422, "{body}");
                assert_eq!(body["code"], "unknown_product");
            }
            1 => {
                assert!(matches!(status.as_u16(), 201 | 409), "{status} {body}");
                shared_answers.push(body.clone());
            }
            2 => match status.as_u16() {
                201 => {
                    scarce_sold += 1;
                    placed += 1;
                }
                409 => {
                    assert_eq!(body["code"], "out_of_stock", "{body}");
                    assert_eq!(body["product_id"], scarce, "{body}");
                }
                other => panic!("unexpected {other}: {body}"),
            },
            _ => {
                assert_eq!(status.as_u16(), 201, "{body}");
                placed += 1;
            }
        }
    }
    // Five requests with one key: one order; the others got its answer or were told
    // it was still in progress.
    let first = shared_answers
        .iter()
        .find(|b| b.get("order_id").is_some())
        .expect("one of the shared-key requests placed the order");
    for answer in &shared_answers {
        assert!(
            answer == first || answer["code"] == "request_in_progress",
            "{answer}"
        );
    }
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM orders").await,
        placed + 1
    );
    assert_eq!(scarce_sold, 3, "the three units went to three orders");
    assert!(
        metric(&app, "order_batches_rolled_back_total").await >= 1.0,
        "a batch with a reused key or short stock rolled back"
    );
    assert_eq!(stock(&app, scarce).await, 0);
    assert_eq!(stock(&app, plenty).await, 1_000 - placed - 1);
    app.stop().await.unwrap();
}

/// Out of stock inside a batch: exactly the units there were are sold, and each
/// refused order gets its own `out_of_stock`.
#[tokio::test]
async fn orders_beyond_the_stock_are_refused_one_by_one() {
    let app = one_lane_app().await;
    let item = product(&app, 100, 7).await;
    let (token, _) = app.login("o_grouped_short").await;
    let buys = (0..20).map(|_| place(&app, &token, key(), json!([{"product_id": item, "qty": 1}])));
    let answers = futures_util::future::join_all(buys).await;
    let created = answers.iter().filter(|(s, _, _)| s.as_u16() == 201).count();
    for (status, body, _) in &answers {
        if status.as_u16() != 201 {
            assert_eq!(status.as_u16(), 409, "{body}");
            assert_eq!(body["code"], "out_of_stock");
            assert_eq!(body["product_id"], item);
        }
    }
    assert_eq!(created, 7);
    assert_eq!(stock(&app, item).await, 0);
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM orders").await, 7);
    app.stop().await.unwrap();
}

/// A sold-out product in a batch: its orders are refused one by one, and the orders
/// of the other product still commit together instead of one transaction each.
#[tokio::test]
async fn a_sold_out_product_does_not_break_up_the_other_orders_batches() {
    let app = one_lane_app().await;
    let sold_out = product(&app, 100, 0).await;
    let plenty = product(&app, 200, 1_000).await;
    let (token, _) = app.login("o_grouped_sold_out").await;
    let buys = (0..40).map(|i| {
        let item = if i % 2 == 0 { sold_out } else { plenty };
        place(&app, &token, key(), json!([{"product_id": item, "qty": 1}]))
    });
    let answers = futures_util::future::join_all(buys).await;
    for (i, (status, body, _)) in answers.iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!(status.as_u16(), 409, "{body}");
            assert_eq!(body["product_id"], sold_out, "{body}");
        } else {
            assert_eq!(status.as_u16(), 201, "{body}");
        }
    }
    assert_eq!(stock(&app, plenty).await, 980);
    assert_eq!(stock(&app, sold_out).await, 0);
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM orders").await, 20);
    let transactions = count(&app, "SELECT COUNT(DISTINCT xmin::text) AS n FROM orders").await;
    assert!(
        transactions < 20,
        "the 20 orders of the product in stock took {transactions} transactions"
    );
    app.stop().await.unwrap();
}

/// With `max_orders = 1` every order has a transaction of its own.
#[tokio::test]
async fn max_orders_one_turns_group_commit_off() {
    let app = builder(Backend::Postgres)
        .set("database.max_connections", 16)
        .set("order.group_commit.max_orders", 1)
        .spawn()
        .await;
    let item = product(&app, 100, 100).await;
    let (token, _) = app.login("o_ungrouped").await;
    let buys = (0..20).map(|_| place(&app, &token, key(), json!([{"product_id": item, "qty": 1}])));
    for (status, body, _) in futures_util::future::join_all(buys).await {
        assert_eq!(status.as_u16(), 201, "{body}");
    }
    let transactions = count(&app, "SELECT COUNT(DISTINCT xmin::text) AS n FROM orders").await;
    assert_eq!(transactions, 20);
    app.stop().await.unwrap();
}
