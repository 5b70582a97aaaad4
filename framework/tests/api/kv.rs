use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weapp::kv::{KvStore, MemoryStore};

/// The contract every store must meet; run against Redis and memory alike.
async fn exercise(store: &dyn KvStore) {
    store.ping().await.unwrap();
    assert_eq!(store.get("absent").await.unwrap(), None);

    store.set("k", b"v1", None).await.unwrap();
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(store.ttl("k").await.unwrap(), None);
    store
        .set("k", b"v2", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v2"[..]));
    let ttl = store.ttl("k").await.unwrap().expect("ttl set");
    assert!(
        ttl > Duration::from_secs(50) && ttl <= Duration::from_secs(60),
        "{ttl:?}"
    );

    assert!(
        store
            .set_if_absent("lock", b"owner-a", Some(Duration::from_secs(5)))
            .await
            .unwrap()
    );
    assert!(!store.set_if_absent("lock", b"owner-b", None).await.unwrap());
    assert!(!store.delete_if_equals("lock", b"owner-b").await.unwrap());
    assert_eq!(
        store.get("lock").await.unwrap().as_deref(),
        Some(&b"owner-a"[..])
    );
    assert!(store.delete_if_equals("lock", b"owner-a").await.unwrap());
    assert_eq!(store.get("lock").await.unwrap(), None);

    // Compare-and-set: only over the value read, and never resurrecting a deleted key.
    assert!(
        !store
            .replace_if_equals("k", b"v1", b"v3", None)
            .await
            .unwrap()
    );
    assert!(
        store
            .replace_if_equals("k", b"v2", b"v3", Some(Duration::from_secs(60)))
            .await
            .unwrap()
    );
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v3"[..]));
    assert!(store.ttl("k").await.unwrap().is_some());
    assert!(
        !store
            .replace_if_equals("gone", b"", b"x", None)
            .await
            .unwrap()
    );
    assert_eq!(store.get("gone").await.unwrap(), None);

    assert!(store.delete("k").await.unwrap());
    assert!(!store.delete("k").await.unwrap());

    // Bounded lists: the newest items, taken at once.
    for item in [&b"a"[..], b"b", b"c"] {
        store
            .push_bounded("list", item, 2, Some(Duration::from_secs(60)))
            .await
            .unwrap();
    }
    assert!(store.ttl("list").await.unwrap().is_some());
    assert_eq!(
        store.take_list("list").await.unwrap(),
        [b"b".to_vec(), b"c".to_vec()]
    );
    assert!(store.take_list("list").await.unwrap().is_empty());

    assert_eq!(
        store
            .increment("n", 1, Some(Duration::from_secs(30)))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .increment("n", 5, Some(Duration::from_secs(1)))
            .await
            .unwrap(),
        6
    );
    let ttl = store
        .ttl("n")
        .await
        .unwrap()
        .expect("first increment sets the ttl");
    assert!(
        ttl > Duration::from_secs(20),
        "later increments keep the window: {ttl:?}"
    );
    assert_eq!(store.increment("n", -10, None).await.unwrap(), -4);
    store.set("text", b"abc", None).await.unwrap();
    assert!(store.increment("text", 1, None).await.is_err());

    // Expiry.
    store
        .set("short", b"x", Some(Duration::from_millis(50)))
        .await
        .unwrap();
    assert!(
        store
            .set_if_absent("short-lock", b"x", Some(Duration::from_millis(50)))
            .await
            .unwrap()
    );
    store
        .increment("short-n", 1, Some(Duration::from_millis(50)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(store.get("short").await.unwrap(), None);
    assert!(
        store.set_if_absent("short-lock", b"y", None).await.unwrap(),
        "expired lock is free"
    );
    assert_eq!(
        store.increment("short-n", 1, None).await.unwrap(),
        1,
        "expired counter restarts"
    );

    // Atomic under concurrency: 100 increments from 10 tasks.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        tasks.push(async {
            for _ in 0..10 {
                store.increment("concurrent", 1, None).await.unwrap();
            }
        });
    }
    futures_util::future::join_all(tasks).await;
    assert_eq!(store.increment("concurrent", 0, None).await.unwrap(), 100);
}

#[tokio::test]
async fn memory_store_meets_the_contract() {
    exercise(&MemoryStore::new()).await;
}

#[tokio::test]
async fn redis_store_meets_the_contract() {
    let store = weapp::testing::redis_store().await;
    exercise(store.as_ref()).await;
}

#[tokio::test]
async fn redis_prefixes_isolate_stores() {
    let a = weapp::testing::redis_store().await;
    let b = weapp::testing::redis_store().await;
    a.set("shared-name", b"a", Some(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(b.get("shared-name").await.unwrap(), None);
}

#[tokio::test]
async fn an_unreachable_redis_fails_fast() {
    let config = weapp::kv::RedisConfig {
        url: Some(weapp::config::ConnectionUrl::new("redis://127.0.0.1:1")),
        connect_timeout_ms: 200,
        response_timeout_ms: 200,
        ..Default::default()
    };
    let store = weapp::kv::RedisStore::connect(&config).unwrap();
    let started = std::time::Instant::now();
    assert!(store.get("k").await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// GCRA: a burst passes, the next waits about one interval, then one more passes.
async fn throttles(store: &dyn KvStore) {
    let interval = Duration::from_millis(100);
    for i in 0..3 {
        assert_eq!(
            store.throttle("rl", interval, 3).await.unwrap(),
            None,
            "burst request {i}"
        );
    }
    let wait = store
        .throttle("rl", interval, 3)
        .await
        .unwrap()
        .expect("over the burst");
    assert!(
        wait > Duration::from_millis(50) && wait <= interval,
        "{wait:?}"
    );
    assert!(
        store
            .throttle("other", interval, 3)
            .await
            .unwrap()
            .is_none(),
        "keys are separate"
    );
    tokio::time::sleep(wait + Duration::from_millis(10)).await;
    assert_eq!(
        store.throttle("rl", interval, 3).await.unwrap(),
        None,
        "refilled"
    );
    assert!(store.throttle("rl", interval, 3).await.unwrap().is_some());
}

#[tokio::test]
async fn memory_store_throttles() {
    throttles(&MemoryStore::new()).await;
}

#[tokio::test]
async fn redis_store_throttles() {
    throttles(weapp::testing::redis_store().await.as_ref()).await;
}

#[tokio::test]
async fn redis_cluster_store_meets_the_contract() {
    let store = weapp::testing::redis_cluster_store().await;
    exercise(store.as_ref()).await;
}

#[tokio::test]
async fn redis_cluster_store_throttles() {
    throttles(weapp::testing::redis_cluster_store().await.as_ref()).await;
}

/// Keys spread over the cluster's masters (50 unrelated keys: a single Redis MGET
/// of them fails with CROSSSLOT), read back in one call.
#[tokio::test]
async fn redis_cluster_reads_keys_of_many_slots_at_once() {
    let store = weapp::testing::redis_cluster_store().await;
    let keys: Vec<String> = (0..50).map(|i| format!("spread:{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        if i % 3 != 0 {
            store
                .set(key, i.to_string().as_bytes(), Some(Duration::from_secs(60)))
                .await
                .unwrap();
        }
    }
    let names: Vec<&str> = keys.iter().map(String::as_str).collect();
    let values = store.get_many(&names).await.unwrap();
    for (i, value) in values.into_iter().enumerate() {
        let expected = (i % 3 != 0).then(|| i.to_string().into_bytes());
        assert_eq!(value, expected, "key {i}");
    }
}

/// A broadcast reader running in a task: what it heard (field `n`), how many
/// gaps it reported, and how to stop it.
struct Listening {
    heard: Arc<Mutex<Vec<String>>>,
    gaps: Arc<AtomicUsize>,
    stop: weapp::shutdown::Shutdown,
    task: tokio::task::JoinHandle<()>,
}

impl Listening {
    fn start(listener: Arc<weapp::kv::Broadcast>) -> Listening {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let gaps = Arc::new(AtomicUsize::new(0));
        let stop = weapp::shutdown::Shutdown::default();
        let task = tokio::spawn({
            let (heard, gaps, stop) = (heard.clone(), gaps.clone(), stop.clone());
            async move {
                let hear = |entry: &weapp::kv::stream_entry::Entry| {
                    let text = String::from_utf8_lossy(entry.field("n").unwrap()).into_owned();
                    heard.lock().unwrap().push(text);
                };
                let gap = || {
                    gaps.fetch_add(1, Ordering::SeqCst);
                };
                listener.run(stop, hear, gap).await;
            }
        });
        Listening {
            heard,
            gaps,
            stop,
            task,
        }
    }

    fn heard(&self) -> Vec<String> {
        self.heard.lock().unwrap().clone()
    }

    fn gaps(&self) -> usize {
        self.gaps.load(Ordering::SeqCst)
    }

    /// Stops the reader: what it heard and the gaps it reported, in the end.
    async fn stop(self) -> (Vec<String>, usize) {
        self.stop.trigger();
        let (heard, gaps) = (self.heard.clone(), self.gaps.clone());
        self.task.await.unwrap();
        let heard = heard.lock().unwrap().clone();
        (heard, gaps.load(Ordering::SeqCst))
    }
}

/// What one instance appends to a broadcast stream, every other instance hears, in
/// order; an instance does not hear itself; a reader hears only what came after it
/// started.
async fn exercise_broadcast(config: weapp::kv::RedisConfig) {
    use weapp::kv::{Broadcast, RedisClient};
    let client = RedisClient::open(&config).unwrap();
    let (sender, listener) = (
        Broadcast::new(&client, "news", 100).unwrap(),
        Arc::new(Broadcast::new(&client, "news", 100).unwrap()),
    );
    sender.publish(&[("n", b"before")]).await.unwrap();
    let listening = Listening::start(listener.clone());
    // The reader starts from the newest entry it finds: wait until it has read once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in ["one", "two", "three"] {
        sender.publish(&[("n", n.as_bytes())]).await.unwrap();
    }
    listener.publish(&[("n", b"own")]).await.unwrap();
    sender.publish(&[("n", b"four")]).await.unwrap();
    for _ in 0..50 {
        if listening.heard().len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (heard, _) = listening.stop().await;
    assert_eq!(heard, ["one", "two", "three", "four"]);
}

#[tokio::test]
async fn a_broadcast_reaches_every_other_reader_in_order() {
    exercise_broadcast(weapp::testing::redis_config()).await;
}

#[tokio::test]
async fn a_broadcast_works_on_a_redis_cluster() {
    weapp::testing::ensure_redis_cluster().await;
    exercise_broadcast(weapp::testing::redis_cluster_config()).await;
}

/// A reader whose Redis went away retries, says so once it reads again (its owner
/// may have missed entries: the `/api/me` cache is dropped then), and hears what
/// is sent after.
#[tokio::test]
async fn a_broadcast_reader_that_lost_redis_reports_the_gap_and_reads_on() {
    use weapp::kv::{Broadcast, RedisClient};
    let mut redis = weapp::testing::PrivateRedis::start();
    let config = weapp::kv::RedisConfig {
        url: Some(weapp::config::ConnectionUrl::new(redis.url())),
        ..weapp::testing::redis_config()
    };
    let client = RedisClient::open(&config).unwrap();
    let sender = Broadcast::new(&client, "news", 100).unwrap();
    let listening = Listening::start(Arc::new(Broadcast::new(&client, "news", 100).unwrap()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    sender.publish(&[("n", b"before")]).await.unwrap();
    // Down longer than a blocked read, so the reader surely fails at least once.
    redis.crash();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(listening.gaps(), 0, "not reading yet");
    redis.start_again();
    let mut sent_after = false;
    for _ in 0..100 {
        // The sender's connection broke too: its first command may fail while it
        // reconnects.
        if listening.gaps() > 0 && !sent_after {
            sent_after = sender.publish(&[("n", b"after")]).await.is_ok();
        }
        if listening.heard().iter().any(|n| n == "after") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (heard, gaps) = listening.stop().await;
    assert_eq!(gaps, 1, "one gap, reported once");
    assert_eq!(
        heard.first().map(String::as_str),
        Some("before"),
        "{heard:?}"
    );
    assert_eq!(heard.last().map(String::as_str), Some("after"), "{heard:?}");
}
