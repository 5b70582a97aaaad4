//! Shared events through the Redis stream: each subscription handles each event once
//! across instances, failures and dead consumers' events are taken over, the
//! stream is bounded, and the groups' standing is reported.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weapp::AppContext;
use weapp::config::{ConfigLoader, ConnectionUrl};
use weapp::context::BuildInfo;
use weapp::db::{Backend, DatabaseConfig, Db};
use weapp::events::stream::StreamRelay;
use weapp::events::{Event, EventsConfig};
use weapp::kv::{RedisClient, RedisConfig, RedisConnection, RedisStore};
use weapp::testing::{TestApp, TestDatabase, redis_cluster_config, redis_config, spawn_app};

/// Who handled what: (instance, subscriber, event id).
type Ledger = Arc<Mutex<Vec<(usize, &'static str, String)>>>;

/// One app instance as far as events go: its own bus and consumers, a shared Redis.
struct Instance {
    ctx: AppContext,
    relay: Arc<StreamRelay>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    redis: RedisConfig,
    _db: TestDatabase,
}

impl Instance {
    async fn start(
        redis: &RedisConfig,
        events: &EventsConfig,
        subscribe: impl FnOnce(&AppContext),
    ) -> Instance {
        let database = TestDatabase::create(Backend::Sqlite).await;
        let db = Db::connect(&DatabaseConfig {
            url: ConnectionUrl::new(database.url()),
            ..Default::default()
        })
        .unwrap();
        let client = RedisClient::open(redis).unwrap();
        let kv = Arc::new(RedisStore::with_client(client.clone()).unwrap());
        let build = BuildInfo {
            version: "test".into(),
            git_hash: "unknown".into(),
            framework_version: "test".into(),
            framework_git_hash: "unknown".into(),
        };
        let config = ConfigLoader::isolated().load().unwrap();
        let ctx = AppContext::new(config, db, kv, None, build);
        subscribe(&ctx);
        let relay = Arc::new(StreamRelay::new(client, events).unwrap());
        ctx.events().set_relay(relay.clone());
        relay.create_groups(&ctx).await.unwrap();
        let tasks = ctx
            .events()
            .groups()
            .into_iter()
            .map(|group| {
                let consumer =
                    relay
                        .clone()
                        .run_consumer(ctx.clone(), group, ctx.shutdown().clone());
                tokio::spawn(consumer)
            })
            .collect();
        Instance {
            ctx,
            relay,
            tasks,
            redis: redis.clone(),
            _db: database,
        }
    }

    /// Stops its consumers as a shutdown does.
    async fn stop(self) {
        self.ctx.shutdown().trigger();
        for task in self.tasks {
            task.await.unwrap();
        }
    }

    /// Stops its consumers at once, wherever they are (as SIGKILL would).
    fn kill(self) {
        for task in &self.tasks {
            task.abort();
        }
    }

    async fn publish(&self, events: Vec<Event>) {
        for outcome in self
            .ctx
            .events()
            .publish_shared_batch(&self.ctx, events)
            .await
        {
            outcome.unwrap();
        }
    }

    /// A connection to its Redis, to look at the streams.
    fn redis(&self) -> RedisConnection {
        RedisClient::open(&self.redis)
            .unwrap()
            .connection()
            .unwrap()
    }
}

/// Quick to claim and to check, for tests.
fn events_config() -> EventsConfig {
    EventsConfig {
        block_ms: 100,
        claim_idle_ms: 400,
        claim_interval_ms: 100,
        ..Default::default()
    }
}

fn event(id: impl Into<String>, topic: &str) -> Event {
    Event {
        id: id.into(),
        topic: topic.to_owned(),
        payload: serde_json::json!({ "n": 1 }),
    }
}

/// Subscribes `audit` (batches, every topic) and `mail` (one by one, `order.*`),
/// both writing to `ledger` as instance `n`.
fn record_into(ledger: &Ledger, n: usize) -> impl FnOnce(&AppContext) + use<> {
    let ledger = ledger.clone();
    move |ctx: &AppContext| {
        let audit = ledger.clone();
        ctx.events()
            .subscribe_batch("audit", "*", move |_, events: Vec<Arc<Event>>| {
                let mut ledger = audit.lock().unwrap();
                ledger.extend(events.iter().map(|e| (n, "audit", e.id.clone())));
                async { Ok(()) }
            });
        let mail = ledger.clone();
        ctx.events()
            .subscribe("mail", "order.*", move |_, event: Arc<Event>| {
                mail.lock().unwrap().push((n, "mail", event.id.clone()));
                async { Ok(()) }
            });
    }
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 10 s");
}

fn handled_by(ledger: &Ledger, subscriber: &str) -> Vec<String> {
    let ledger = ledger.lock().unwrap();
    let mut ids: Vec<String> = ledger
        .iter()
        .filter(|(_, s, _)| *s == subscriber)
        .map(|(_, _, id)| id.clone())
        .collect();
    ids.sort();
    ids
}

/// Publishes 200 events from several instances and checks each subscription
/// handled each once.
async fn each_subscription_handles_each_event_once(redis: RedisConfig, instances: usize) {
    let ledger: Ledger = Arc::default();
    let mut running = Vec::new();
    for n in 0..instances {
        running.push(Instance::start(&redis, &events_config(), record_into(&ledger, n)).await);
    }
    let mut published = Vec::new();
    for batch in 0..20 {
        let events: Vec<Event> = (0..10)
            .map(|i| {
                let topic = if i % 2 == 0 {
                    "order.paid"
                } else {
                    "user.login"
                };
                event(format!("e{batch}-{i}"), topic)
            })
            .collect();
        published.extend(events.iter().map(|e| (e.id.clone(), e.topic.clone())));
        running[batch % instances].publish(events).await;
    }
    let mut all: Vec<String> = published.iter().map(|(id, _)| id.clone()).collect();
    all.sort();
    let mut orders: Vec<String> = published
        .iter()
        .filter(|(_, t)| t.starts_with("order."))
        .map(|(id, _)| id.clone())
        .collect();
    orders.sort();
    eventually("every event handled", || {
        handled_by(&ledger, "audit").len() >= all.len()
            && handled_by(&ledger, "mail").len() >= orders.len()
    })
    .await;
    // Time for a duplicate to show up, were there one.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(handled_by(&ledger, "audit"), all, "audit: each event once");
    assert_eq!(
        handled_by(&ledger, "mail"),
        orders,
        "mail: each order event once"
    );
    let standings = running[0].relay.standings().await.unwrap();
    let names: BTreeSet<String> = standings.iter().map(|s| s.name.clone()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["audit:*".to_owned(), "mail:order.*".to_owned()])
    );
    for standing in standings {
        assert_eq!(standing.pending, 0, "{standing:?}");
        assert_eq!(standing.lag, Some(0), "{standing:?}");
    }
    for instance in running {
        instance.stop().await;
    }
}

#[tokio::test]
async fn each_subscription_handles_each_shared_event_once_across_three_instances() {
    each_subscription_handles_each_event_once(redis_config(), 3).await;
}

#[tokio::test]
async fn the_relay_works_on_a_redis_cluster() {
    weapp::testing::ensure_redis_cluster().await;
    each_subscription_handles_each_event_once(redis_cluster_config(), 2).await;
}

#[tokio::test]
async fn a_failed_handler_is_retried_until_it_succeeds() {
    let attempts = Arc::new(Mutex::new(BTreeMap::<String, u32>::new()));
    let counted = attempts.clone();
    let instance = Instance::start(&redis_config(), &events_config(), move |ctx| {
        ctx.events()
            .subscribe("flaky", "*", move |_, event: Arc<Event>| {
                let mut attempts = counted.lock().unwrap();
                let tries = attempts.entry(event.id.clone()).or_default();
                *tries += 1;
                let fail = event.id == "flaky" && *tries < 3;
                async move {
                    match fail {
                        true => Err(weapp::Error::internal("not yet")),
                        false => Ok(()),
                    }
                }
            });
    })
    .await;
    instance
        .publish(vec![event("steady", "a.b"), event("flaky", "a.b")])
        .await;
    eventually("the flaky event handled", || {
        attempts.lock().unwrap().get("flaky") == Some(&3)
    })
    .await;
    let standings = instance.relay.standings().await.unwrap();
    assert_eq!(standings[0].pending, 0, "acknowledged once handled");
    assert_eq!(attempts.lock().unwrap().get("steady"), Some(&1));
    instance.stop().await;
}

#[tokio::test]
async fn what_a_killed_instance_had_read_is_handled_by_another() {
    let redis = redis_config();
    let seen_by_doomed = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = seen_by_doomed.clone();
    // Reads the events, then hangs in its handler until it is killed.
    let doomed = Instance::start(&redis, &events_config(), move |ctx| {
        ctx.events()
            .subscribe_batch("work", "*", move |_, events: Vec<Arc<Event>>| {
                seen.lock()
                    .unwrap()
                    .extend(events.iter().map(|e| e.id.clone()));
                std::future::pending()
            });
    })
    .await;
    let events: Vec<Event> = (0..20).map(|i| event(format!("k{i}"), "job.run")).collect();
    doomed.publish(events).await;
    eventually("the doomed instance read the events", || {
        seen_by_doomed.lock().unwrap().len() == 20
    })
    .await;
    doomed.kill();

    let ledger: Ledger = Arc::default();
    let recorder = ledger.clone();
    let survivor = Instance::start(&redis, &events_config(), move |ctx| {
        ctx.events()
            .subscribe_batch("work", "*", move |_, events: Vec<Arc<Event>>| {
                let mut ledger = recorder.lock().unwrap();
                ledger.extend(events.iter().map(|e| (1, "work", e.id.clone())));
                async { Ok(()) }
            });
    })
    .await;
    eventually("the survivor took the events over", || {
        handled_by(&ledger, "work").len() >= 20
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut expected: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    expected.sort();
    assert_eq!(handled_by(&ledger, "work"), expected);
    assert_eq!(survivor.relay.standings().await.unwrap()[0].pending, 0);
    survivor.stop().await;
}

#[tokio::test]
async fn an_event_that_keeps_failing_goes_to_the_dead_letter_stream() {
    let config = EventsConfig {
        max_deliveries: 2,
        ..events_config()
    };
    let ledger: Ledger = Arc::default();
    let recorder = ledger.clone();
    let instance = Instance::start(&redis_config(), &config, move |ctx| {
        ctx.events()
            .subscribe("picky", "*", move |_, event: Arc<Event>| {
                recorder
                    .lock()
                    .unwrap()
                    .push((0, "picky", event.id.clone()));
                let refuse = event.id == "poison";
                async move {
                    match refuse {
                        true => Err(weapp::Error::internal("cannot take this one")),
                        false => Ok(()),
                    }
                }
            });
    })
    .await;
    instance
        .publish(vec![event("poison", "x.y"), event("fine", "x.y")])
        .await;
    let mut redis = instance.redis();
    let dead_key = instance.relay.dead_letter_key().to_owned();
    let mut dead_len = 0;
    for _ in 0..200 {
        dead_len = redis::cmd("XLEN")
            .arg(&dead_key)
            .query_async::<u64>(&mut redis)
            .await
            .unwrap();
        if dead_len > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dead_len, 1, "the poison event buried");
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(&dead_key)
        .arg("-")
        .arg("+")
        .query_async(&mut redis)
        .await
        .unwrap();
    let buried = &entries.ids[0];
    assert_eq!(buried.get::<String>("id").as_deref(), Some("poison"));
    assert_eq!(buried.get::<String>("group").as_deref(), Some("picky:*"));
    assert_eq!(buried.get::<String>("topic").as_deref(), Some("x.y"));
    let tries = handled_by(&ledger, "picky")
        .iter()
        .filter(|id| *id == "poison")
        .count();
    assert_eq!(tries, 2, "delivered max_deliveries times, then buried");
    assert_eq!(instance.relay.standings().await.unwrap()[0].pending, 0);
    instance.stop().await;
}

#[tokio::test]
async fn the_stream_is_trimmed_by_length_and_by_age() {
    let config = EventsConfig {
        max_len: 10,
        max_age_s: 1,
        ..events_config()
    };
    let redis_config = redis_config();
    // No subscriptions: nothing reads, so only trimming shortens the stream.
    let instance = Instance::start(&redis_config, &config, |_| {}).await;
    for batch in 0..10 {
        let events = (0..100)
            .map(|i| event(format!("t{batch}-{i}"), "a.b"))
            .collect();
        instance.publish(events).await;
    }
    let mut redis = instance.redis();
    let key = instance.relay.key().to_owned();
    let len = |mut redis: RedisConnection| {
        let key = key.clone();
        async move {
            redis::cmd("XLEN")
                .arg(&key)
                .query_async::<u64>(&mut redis)
                .await
                .unwrap()
        }
    };
    let trimmed = len(redis.clone()).await;
    // `~`: whole internal nodes go, so up to about a hundred more stay.
    assert!(
        (10..=200).contains(&trimmed),
        "{trimmed} entries kept of 1000"
    );
    instance.stop().await;

    // Age: trimmed by a consumer's upkeep once entries are older than max_age_s.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let upkeep = Instance::start(&redis_config, &config, |ctx| {
        ctx.events().subscribe("any", "*", |_, _| async { Ok(()) });
    })
    .await;
    let mut left = u64::MAX;
    for _ in 0..100 {
        left = len(redis.clone()).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0, "entries older than max_age_s trimmed");
    let _ = redis::cmd("DEL")
        .arg(&key)
        .query_async::<i64>(&mut redis)
        .await;
    upkeep.stop().await;
}

/// The standings report what each group has not read and has not acknowledged.
#[tokio::test]
async fn lag_and_pending_are_reported_per_group() {
    let redis_config = redis_config();
    // Creates the group, then goes away.
    let first = Instance::start(&redis_config, &events_config(), |ctx| {
        ctx.events().subscribe("slow", "*", |_, _| async { Ok(()) });
    })
    .await;
    eventually_group(&first).await;
    let relay = first.relay.clone();
    first.stop().await;
    let events: Vec<Event> = (0..7).map(|i| event(format!("l{i}"), "a.b")).collect();
    relay.append(&events).await.unwrap();
    let standing = &relay.standings().await.unwrap()[0];
    assert_eq!((standing.pending, standing.lag), (0, Some(7)));

    // Three read by a consumer that does not acknowledge them.
    let mut redis = RedisClient::open(&redis_config)
        .unwrap()
        .connection()
        .unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("slow:*")
        .arg("someone")
        .arg("COUNT")
        .arg(3)
        .arg("STREAMS")
        .arg(relay.key())
        .arg(">")
        .query_async(&mut redis)
        .await
        .unwrap();
    let standing = &relay.standings().await.unwrap()[0];
    assert_eq!((standing.pending, standing.lag), (3, Some(4)));
}

async fn eventually_group(instance: &Instance) {
    for _ in 0..200 {
        if !instance.relay.standings().await.unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the consumer group was not created within 10 s");
}

#[tokio::test]
async fn without_a_relay_shared_events_run_in_process() {
    let app: TestApp = spawn_app().await;
    assert!(
        app.ctx.events().relay().is_none(),
        "the embedded default has none"
    );
    let ledger: Ledger = Arc::default();
    record_into(&ledger, 0)(&app.ctx);
    app.ctx
        .events()
        .publish_shared(&app.ctx, event("local", "order.paid"))
        .await
        .unwrap();
    // Handled before publish returned.
    assert_eq!(handled_by(&ledger, "audit"), ["local"]);
    assert_eq!(handled_by(&ledger, "mail"), ["local"]);
}

#[tokio::test]
async fn an_app_on_redis_relays_shared_events_unless_told_otherwise() {
    let app = TestApp::builder().redis().spawn().await;
    let relay = app.ctx.events().relay().expect("relay with redis.url set");
    assert!(relay.key().ends_with("events"), "{}", relay.key());
    let app = TestApp::builder()
        .redis()
        .set("events.relay", "memory")
        .spawn()
        .await;
    assert!(app.ctx.events().relay().is_none());
}

#[tokio::test]
async fn a_redis_relay_without_redis_is_refused_at_start() {
    crate::refused_at_start(
        TestApp::builder().set("events.relay", "redis"),
        "events.relay",
    )
    .await;
}

/// Declared shared topics: subscriptions that cannot match one get no group (they
/// would read every shared event only to skip it), and an undeclared topic is
/// refused rather than read by nobody.
#[tokio::test]
async fn only_subscriptions_that_can_match_a_shared_topic_get_a_group() {
    let ledger: Ledger = Arc::default();
    let recorder = record_into(&ledger, 0);
    let instance = Instance::start(&redis_config(), &events_config(), move |ctx| {
        ctx.events().share_topics("order.");
        recorder(ctx);
        ctx.events()
            .subscribe("push", "wechat.push.*", |_, _| async { Ok(()) });
        ctx.events()
            .subscribe("paid", "order.paid", |_, _| async { Ok(()) });
        ctx.events()
            .subscribe("ord", "ord*", |_, _| async { Ok(()) });
    })
    .await;
    let names: Vec<String> = instance
        .ctx
        .events()
        .groups()
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert_eq!(
        names,
        ["audit:*", "mail:order.*", "paid:order.paid", "ord:ord*"]
    );
    let standings = instance.relay.standings().await.unwrap();
    assert_eq!(standings.len(), 4, "no group for the push subscription");

    instance.publish(vec![event("o1", "order.paid")]).await;
    let refused = instance
        .ctx
        .events()
        .publish_shared(&instance.ctx, event("u1", "user.login"))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("not declared shared"),
        "{refused}"
    );
    eventually("the order event handled", || {
        handled_by(&ledger, "mail") == ["o1"]
    })
    .await;
    assert_eq!(
        handled_by(&ledger, "audit"),
        ["o1"],
        "the refused one never went out"
    );
    instance.stop().await;
}
