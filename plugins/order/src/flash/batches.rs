//! Reservations of one product sent to Redis together: while one script call is
//! out, the reservations that arrive wait and go in the next call, in arrival
//! order. A rush of buyers then costs Redis one script call (and the app one round
//! trip) per batch instead of per buyer; a lone buyer is sent at once.
//!
//! The script handles a batch's reservations one after the other, exactly as
//! separate calls in that order would: the outcome of each is its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use redis::RedisError;
use tokio::sync::oneshot;
use weapp::kv::RedisConnection;

use super::metrics;
use super::scripts::{RESERVE, SaleKeys};

/// Most reservations in one script call: bounds how long Redis is busy with one.
const MAX_BATCH: usize = 256;

/// One reservation for the script.
pub(super) struct Reservation {
    pub user_id: i64,
    pub qty: i64,
    pub per_user_limit: i64,
    /// The `Idempotency-Key`'s field in the `keys` hash.
    pub field: String,
    pub order_id: i64,
    /// The key's record, answered to a retry.
    pub record: String,
    /// The reservation as the writers read it.
    pub payload: String,
}

/// The script's answer to one reservation: `(outcome, detail)`.
pub(super) type Answer = (String, String);

struct Waiting {
    reservation: Reservation,
    answer: oneshot::Sender<Result<Answer, RedisError>>,
}

/// One product's reservations waiting for the next call.
struct Lane {
    keys: SaleKeys,
    waiting: Mutex<Vec<Waiting>>,
    /// A task is sending this lane's batches.
    sending: AtomicBool,
}

/// The reservation batches of every product on sale.
pub(super) struct ReservationBatches {
    redis: RedisConnection,
    max_queued: i64,
    lanes: Mutex<HashMap<i64, Arc<Lane>>>,
}

impl ReservationBatches {
    pub(super) fn new(redis: RedisConnection, max_queued: i64) -> ReservationBatches {
        ReservationBatches {
            redis,
            max_queued,
            lanes: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `reservation` of `product_id` (keys `keys`) in the next batch.
    pub(super) async fn reserve(
        &self,
        product_id: i64,
        keys: &SaleKeys,
        reservation: Reservation,
    ) -> Result<Answer, RedisError> {
        let lane = {
            let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
            lanes
                .entry(product_id)
                .or_insert_with(|| {
                    Arc::new(Lane {
                        keys: keys.clone(),
                        waiting: Mutex::new(Vec::new()),
                        sending: AtomicBool::new(false),
                    })
                })
                .clone()
        };
        let (answer, answered) = oneshot::channel();
        lane.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Waiting {
                reservation,
                answer,
            });
        if !lane.sending.swap(true, Ordering::AcqRel) {
            // A task of its own: a buyer who hangs up must not stop the others' batch.
            tokio::spawn(send_batches(lane, self.redis.clone(), self.max_queued));
        }
        answered.await.unwrap_or_else(|_| {
            Err(RedisError::from(std::io::Error::other(
                "the reservation batch was dropped",
            )))
        })
    }
}

/// Sends `lane`'s batches until none is waiting.
async fn send_batches(lane: Arc<Lane>, mut redis: RedisConnection, max_queued: i64) {
    loop {
        let batch: Vec<Waiting> = {
            let mut waiting = lane.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            let n = waiting.len().min(MAX_BATCH);
            waiting.drain(..n).collect()
        };
        if batch.is_empty() {
            lane.sending.store(false, Ordering::Release);
            // One may have arrived after the look and before the flag went down.
            let more = !lane
                .waiting
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty();
            if more && !lane.sending.swap(true, Ordering::AcqRel) {
                continue;
            }
            return;
        }
        metrics::reserve_call(batch.len());
        let mut call = RESERVE.prepare_invoke();
        for key in [
            &lane.keys.stock,
            &lane.keys.users,
            &lane.keys.keys,
            &lane.keys.held,
            &lane.keys.queue,
        ] {
            call.key(key);
        }
        call.arg(max_queued).arg(batch.len());
        for Waiting { reservation: r, .. } in &batch {
            call.arg(r.user_id)
                .arg(r.qty)
                .arg(r.per_user_limit)
                .arg(&r.field)
                .arg(r.order_id)
                .arg(&r.record)
                .arg(&r.payload);
        }
        let answers: Result<Vec<String>, RedisError> = call.invoke_async(&mut redis).await;
        match answers {
            Ok(answers) if answers.len() == 2 * batch.len() => {
                let mut answers = answers.into_iter();
                for waiting in batch {
                    let outcome = answers.next().unwrap_or_default();
                    let detail = answers.next().unwrap_or_default();
                    let _ = waiting.answer.send(Ok((outcome, detail)));
                }
            }
            Ok(answers) => {
                let e = RedisError::from(std::io::Error::other(format!(
                    "the reservation script gave {} answers for {} reservations",
                    answers.len() / 2,
                    batch.len()
                )));
                for waiting in batch {
                    let _ = waiting.answer.send(Err(e.clone()));
                }
            }
            Err(e) => {
                for waiting in batch {
                    let _ = waiting.answer.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use futures_util::future::join_all;
    use weapp::kv::RedisClient;

    use super::*;
    use crate::flash::scripts::PER_ENTRY;

    fn reservation(user_id: i64, order_id: i64, field: &str) -> Reservation {
        Reservation {
            user_id,
            qty: 1,
            per_user_limit: 2,
            field: field.to_owned(),
            order_id,
            record: format!("record-{order_id}"),
            payload: format!("payload-{order_id}"),
        }
    }

    /// The calls of the reservation script so far, and the reservations they took.
    fn calls() -> (u64, f64) {
        let metrics = prometheus::default_registry().gather();
        let family = metrics
            .iter()
            .find(|m| m.name() == "order_flash_reserve_batch_size");
        family.map_or((0, 0.0), |m| {
            let h = m.get_metric()[0].get_histogram();
            (h.get_sample_count(), h.get_sample_sum())
        })
    }

    #[tokio::test]
    async fn reservations_that_arrive_together_share_a_call_with_their_own_outcomes() {
        let client = RedisClient::open(&weapp::testing::redis_config()).expect("a client");
        let keys = SaleKeys::new(client.key_prefix(), 1);
        let mut redis = client.connection().expect("a connection");
        let _: () = redis::cmd("SET")
            .arg(&keys.stock)
            .arg(40)
            .query_async(&mut redis)
            .await
            .expect("Redis answers (tests/setup.sh starts it)");
        let batches = ReservationBatches::new(redis.clone(), 1_000);
        // 25 buyers twice each (the limit), then the first one's key again.
        let mut asked: Vec<Reservation> = (0..50)
            .map(|n| reservation(n % 25, 100 + n, &format!("{}:k{n}", n % 25)))
            .collect();
        asked.push(reservation(0, 999, "0:k0"));
        // Polled together before the sending task runs: one batch, in this order.
        let answers = join_all(asked.into_iter().map(|r| batches.reserve(1, &keys, r))).await;
        let answers: Vec<Answer> = answers.into_iter().map(|a| a.expect("answered")).collect();
        for (n, (outcome, detail)) in answers[..40].iter().enumerate() {
            assert_eq!(outcome, "reserved", "#{n}");
            assert_eq!(detail, &(39 - n).to_string(), "#{n}: units left");
        }
        for (outcome, detail) in &answers[40..50] {
            assert_eq!((outcome.as_str(), detail.as_str()), ("sold_out", "0"));
        }
        assert_eq!(answers[50], ("replay".to_owned(), "record-100".to_owned()));
        assert_eq!(calls(), (1, 51.0), "one call for the 51");

        // A lone reservation goes at once, in a call of its own; a limit holds
        // across calls.
        let _: () = redis::cmd("SET")
            .arg(&keys.stock)
            .arg(5)
            .query_async(&mut redis)
            .await
            .unwrap();
        let third = batches
            .reserve(1, &keys, reservation(3, 500, "3:k-third"))
            .await;
        assert_eq!(third.unwrap(), ("limit".to_owned(), "2".to_owned()));
        let other = batches
            .reserve(1, &keys, reservation(77, 501, "77:k"))
            .await;
        assert_eq!(other.unwrap(), ("reserved".to_owned(), "4".to_owned()));
        assert_eq!(calls(), (3, 53.0));
        let held: usize = redis::cmd("HLEN")
            .arg(&keys.held)
            .query_async(&mut redis)
            .await
            .unwrap();
        let queued = sale_state(&mut redis, &keys).await.4;
        assert_eq!(
            (held, queued.len()),
            (41, 41),
            "each reservation held and queued once"
        );
        let entries: usize = redis::cmd("XLEN")
            .arg(&keys.queue)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert_eq!(
            entries,
            40_usize.div_ceil(PER_ENTRY) + 1,
            "the batch's 40 in entries of PER_ENTRY at most, the lone one in its own"
        );
        forget_sale(&mut redis, &keys).await;
    }

    /// Deletes the keys of a sale.
    async fn forget_sale(redis: &mut RedisConnection, keys: &SaleKeys) {
        let _: () = redis::cmd("DEL")
            .arg(&keys.stock)
            .arg(&keys.users)
            .arg(&keys.keys)
            .arg(&keys.held)
            .arg(&keys.queue)
            .query_async(redis)
            .await
            .unwrap();
    }

    /// What one sale's keys hold: the counter, the users' units, the key records,
    /// the held reservations and the queue's payloads in order (whatever entries
    /// they were queued in).
    type SaleState = (
        Option<String>,
        BTreeMap<String, String>,
        BTreeMap<String, String>,
        BTreeMap<String, String>,
        Vec<String>,
    );

    async fn sale_state(redis: &mut RedisConnection, keys: &SaleKeys) -> SaleState {
        let mut hash = async |key: &str| -> BTreeMap<String, String> {
            redis::cmd("HGETALL")
                .arg(key)
                .query_async(redis)
                .await
                .unwrap()
        };
        let (users, records, held) = (
            hash(&keys.users).await,
            hash(&keys.keys).await,
            hash(&keys.held).await,
        );
        let stock: Option<String> = redis::cmd("GET")
            .arg(&keys.stock)
            .query_async(redis)
            .await
            .unwrap();
        let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(&keys.queue)
            .arg("-")
            .arg("+")
            .query_async(redis)
            .await
            .unwrap();
        let mut queue = Vec::new();
        for (_, fields) in entries {
            assert_eq!(fields.len(), 2, "one field: {fields:?}");
            assert_eq!(fields[0], "p");
            let lines: Vec<String> = fields[1].split('\n').map(str::to_owned).collect();
            assert!(lines.len() <= PER_ENTRY, "{} in one entry", lines.len());
            queue.extend(lines);
        }
        (stock, users, records, held, queue)
    }

    /// 120 reservations of 8 buyers, 1 to 3 units each, limit 6, one in six
    /// repeating an earlier one's key: the same every run (a fixed seed).
    fn mixed_reservations() -> Vec<Reservation> {
        let mut seed: u64 = 0x5eed;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let mut asked: Vec<Reservation> = Vec::new();
        for n in 0..120 {
            let (user_id, field) = if n > 0 && next(6) == 0 {
                let earlier = &asked[next(n as u64) as usize];
                (earlier.user_id, earlier.field.clone())
            } else {
                let user_id = next(8) as i64;
                (user_id, format!("{user_id}:k{n}"))
            };
            asked.push(Reservation {
                qty: 1 + next(3) as i64,
                per_user_limit: 6,
                ..reservation(user_id, 1_000 + n, &field)
            });
        }
        asked
    }

    #[tokio::test]
    async fn a_batch_answers_and_leaves_redis_as_its_reservations_one_by_one_would() {
        let client = RedisClient::open(&weapp::testing::redis_config()).expect("a client");
        let mut redis = client.connection().expect("a connection");
        // The stock runs out; the queue's bound is reached; no counter is loaded.
        let cases = [
            (
                Some(40),
                1_000,
                &["reserved", "replay", "limit", "sold_out"][..],
            ),
            (Some(1_000), 12, &["reserved", "replay", "limit", "busy"]),
            (None, 1_000, &["unloaded"]),
        ];
        for (case, (stock, most, expected)) in cases.into_iter().enumerate() {
            let (alone_id, together_id) = (10 + 2 * case as i64, 11 + 2 * case as i64);
            let alone_keys = SaleKeys::new(client.key_prefix(), alone_id);
            let together_keys = SaleKeys::new(client.key_prefix(), together_id);
            for keys in [&alone_keys, &together_keys] {
                if let Some(stock) = stock {
                    let _: () = redis::cmd("SET")
                        .arg(&keys.stock)
                        .arg(stock)
                        .query_async(&mut redis)
                        .await
                        .expect("Redis answers (tests/setup.sh starts it)");
                }
            }
            let batches = ReservationBatches::new(redis.clone(), most);
            let mut alone = Vec::new();
            for r in mixed_reservations() {
                alone.push(batches.reserve(alone_id, &alone_keys, r).await.unwrap());
            }
            let before = calls().0;
            let together: Vec<Answer> = join_all(
                mixed_reservations()
                    .into_iter()
                    .map(|r| batches.reserve(together_id, &together_keys, r)),
            )
            .await
            .into_iter()
            .map(|a| a.unwrap())
            .collect();
            assert_eq!(calls().0, before + 1, "case {case}: one call for the 120");
            assert_eq!(together, alone, "case {case}: the answers");
            for outcome in expected {
                assert!(
                    alone.iter().any(|(o, _)| o == *outcome),
                    "case {case}: some {outcome} among {alone:?}"
                );
            }
            assert_eq!(
                sale_state(&mut redis, &together_keys).await,
                sale_state(&mut redis, &alone_keys).await,
                "case {case}: what Redis holds"
            );
            for keys in [&alone_keys, &together_keys] {
                forget_sale(&mut redis, keys).await;
            }
        }
    }
}
