//! The event bus: per-event and batch subscribers, and which events failed.

use std::sync::{Arc, Mutex};

use weapp::events::Event;
use weapp::testing::spawn_app;

fn event(id: &str, topic: &str) -> Event {
    Event {
        id: id.to_owned(),
        topic: topic.to_owned(),
        payload: serde_json::json!({}),
    }
}

#[tokio::test]
async fn batch_subscribers_get_a_batch_at_once_and_failures_are_per_event() {
    let app = spawn_app().await;
    let singles = Arc::new(Mutex::new(Vec::<String>::new()));
    let batches = Arc::new(Mutex::new(Vec::<Vec<String>>::new()));
    {
        let singles = singles.clone();
        app.ctx
            .events()
            .subscribe("single", "a.*", move |_, e: Arc<Event>| {
                singles.lock().unwrap().push(e.id.clone());
                let id = e.id.clone();
                async move {
                    match id.as_str() {
                        "2" => Err(weapp::Error::internal("single refuses 2")),
                        _ => Ok(()),
                    }
                }
            });
    }
    {
        let batches = batches.clone();
        app.ctx
            .events()
            .subscribe_batch("batch", "*", move |_, events: Vec<Arc<Event>>| {
                let failing = events.iter().any(|e| e.topic == "b.fail");
                batches
                    .lock()
                    .unwrap()
                    .push(events.iter().map(|e| e.id.clone()).collect());
                async move {
                    if failing {
                        Err(weapp::Error::internal("batch refuses b.fail"))
                    } else {
                        Ok(())
                    }
                }
            });
    }
    let bus = app.ctx.events();

    let results = bus
        .publish_batch(
            &app.ctx,
            vec![event("1", "a.x"), event("2", "a.y"), event("3", "b.ok")],
        )
        .await;
    let outcome: Vec<usize> = results
        .iter()
        .map(|r| r.as_ref().map_or_else(|e| e.failures.len(), |()| 0))
        .collect();
    assert_eq!(outcome, [0, 1, 0], "only event 2 failed, for one handler");
    assert_eq!(*singles.lock().unwrap(), ["1", "2"]);
    assert_eq!(*batches.lock().unwrap(), [vec!["1", "2", "3"]]);

    // A failing batch handler fails every event it was given.
    let results = bus
        .publish_batch(&app.ctx, vec![event("4", "b.fail"), event("5", "c.z")])
        .await;
    assert!(results.iter().all(|r| r.is_err()), "{results:?}");
    assert_eq!(batches.lock().unwrap().len(), 2);
    assert_eq!(singles.lock().unwrap().len(), 2, "a.* matched nothing");

    // A single publish reaches a batch subscriber as a batch of one.
    bus.publish(&app.ctx, event("6", "a.q")).await.unwrap();
    assert_eq!(
        batches.lock().unwrap().last().unwrap(),
        &vec!["6".to_owned()]
    );
    app.stop().await.unwrap();
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct CouponUsed {
    coupon_id: i64,
    user_id: Option<i64>,
}

impl weapp::events::TypedEvent for CouponUsed {
    const TOPIC: &'static str = "coupon.used";
}

#[tokio::test]
async fn a_typed_subscriber_gets_decoded_payloads_and_fails_on_a_missing_field() {
    use weapp::events::Delivered;

    let app = spawn_app().await;
    let got = Arc::new(Mutex::new(Vec::<(String, CouponUsed)>::new()));
    {
        let got = got.clone();
        app.ctx
            .events()
            .on("coupon-test", move |_, used: Delivered<CouponUsed>| {
                got.lock().unwrap().push((used.id, used.event));
                async { Ok(()) }
            });
    }
    let used = CouponUsed {
        coupon_id: 7,
        user_id: Some(1),
    };
    let events = app.ctx.events();
    events
        .publish(&app.ctx, Event::typed("coupon:7", &used))
        .await
        .unwrap();
    assert_eq!(*got.lock().unwrap(), [("coupon:7".to_owned(), used)]);

    // The same topic without `coupon_id`: the subscriber fails, naming the field,
    // instead of returning Ok with nothing done.
    let broken = Event {
        id: "coupon:8".into(),
        topic: "coupon.used".into(),
        payload: serde_json::json!({ "user_id": 1 }),
    };
    let refused = events.publish(&app.ctx, broken).await.unwrap_err();
    assert!(
        refused.failures[0].contains("coupon_id"),
        "{:?}",
        refused.failures
    );
    assert_eq!(got.lock().unwrap().len(), 1);
    app.stop().await.unwrap();
}
