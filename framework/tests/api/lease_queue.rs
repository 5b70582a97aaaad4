//! The lease queue on every backend: claims by lease and token, retries with
//! backoff, parking, recovery of jobs a worker left in flight, purging.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use weapp::db::{Backend, Db, DbConn, Migration, MigrationSet};
use weapp::diesel_async::RunQueryDsl;
use weapp::queue::{Claim, Delivery, Failed, LeaseQueue, QueueRow, QueueSettings, QueueTable};
use weapp::testing::TestDatabase;
use weapp::with_conn;

const JOBS: &[Migration] = &[Migration {
    version: "0001_jobs",
    postgres: "CREATE TABLE jobs (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL, \
        state VARCHAR(16) NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, \
        next_attempt_at BIGINT NOT NULL, locked_until BIGINT, claim_token BIGINT, \
        finished_at BIGINT, error TEXT, outcome BIGINT)",
    mysql: "CREATE TABLE jobs (id BIGINT AUTO_INCREMENT PRIMARY KEY, payload TEXT NOT NULL, \
        state VARCHAR(16) NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, \
        next_attempt_at BIGINT NOT NULL, locked_until BIGINT, claim_token BIGINT, \
        finished_at BIGINT, error TEXT, outcome BIGINT)",
    sqlite: "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT NOT NULL, \
        state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, \
        next_attempt_at BIGINT NOT NULL, locked_until BIGINT, claim_token BIGINT, \
        finished_at BIGINT, error TEXT, outcome BIGINT)",
}];

const SETTINGS: QueueSettings = QueueSettings {
    batch_size: 3,
    lease_ms: 1_000,
    max_attempts: 3,
    base_backoff_ms: 100,
    max_backoff_ms: 250,
    keep_finished_s: 60,
};

fn table(delivery: Delivery) -> QueueTable {
    QueueTable {
        name: "jobs",
        finished_at: "finished_at",
        error: "error",
        done: "done",
        parked: "failed",
        delivery,
    }
}

const AT_MOST_ONCE: Delivery = Delivery::AtMostOnce {
    claimed: "claimed",
    in_flight: "running",
};

/// A claimed job with its payload.
#[derive(Debug, QueryableByName)]
struct Job {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    payload: String,
}

impl QueueRow for Job {
    const COLUMNS: &'static str = "id, payload";
    fn id(&self) -> i64 {
        self.id
    }
}

/// What a test reads back of a job.
#[derive(Debug, QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = BigInt)]
    next_attempt_at: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    finished_at: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    error: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    outcome: Option<i64>,
}

async fn jobs_table(backend: Backend) -> (TestDatabase, Db) {
    let test_db = TestDatabase::create(backend).await;
    let db = Db::connect(&weapp::db::DatabaseConfig {
        url: weapp::config::ConnectionUrl::new(test_db.url()),
        ..Default::default()
    })
    .unwrap();
    db.migrate(&[MigrationSet {
        owner: "jobs",
        migrations: JOBS,
    }])
    .await
    .unwrap();
    (test_db, db)
}

/// Queues `n` jobs due at `now`; returns their ids.
async fn enqueue(conn: &mut DbConn, n: usize, now: i64) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..n {
        let sql = format!(
            "INSERT INTO jobs (payload, state, attempts, next_attempt_at) \
             VALUES ('job {i}', 'pending', 0, {now})"
        );
        with_conn!(*conn, |c| diesel::sql_query(&sql).execute(c).await).unwrap();
        let last: Vec<Claim> = with_conn!(*conn, |c| {
            diesel::sql_query("SELECT id, attempts FROM jobs ORDER BY id DESC LIMIT 1")
                .load(c)
                .await
        })
        .unwrap();
        ids.push(last[0].id);
    }
    ids
}

async fn row(conn: &mut DbConn, id: i64) -> Row {
    let sql = format!(
        "SELECT state, attempts, next_attempt_at, finished_at, error, outcome \
         FROM jobs WHERE id = {id}"
    );
    let mut rows: Vec<Row> = with_conn!(*conn, |c| diesel::sql_query(&sql).load(c).await).unwrap();
    rows.remove(0)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(conn: &mut DbConn) -> i64 {
    let rows: Vec<Count> = with_conn!(*conn, |c| {
        diesel::sql_query("SELECT COUNT(*) AS n FROM jobs")
            .load(c)
            .await
    })
    .unwrap();
    rows[0].n
}

async fn at_least_once(backend: Backend) {
    let (_test_db, db) = jobs_table(backend).await;
    let queue = LeaseQueue::new(table(Delivery::AtLeastOnce), SETTINGS);
    let mut conn = db.conn().await.unwrap();
    let t0 = 1_000_000;
    let ids = enqueue(&mut conn, 5, t0).await;

    // A batch at a time, oldest first, each claim counting an attempt.
    let first = queue.claim_due::<Claim>(&mut conn, t0).await.unwrap();
    assert_eq!(
        first
            .rows
            .iter()
            .map(|c| (c.id, c.attempts))
            .collect::<Vec<_>>(),
        ids[..3].iter().map(|id| (*id, 1)).collect::<Vec<_>>()
    );
    // Leased rows are not claimed again; the rest are, with the columns asked for.
    let second = queue.claim_due::<Job>(&mut conn, t0).await.unwrap();
    assert_eq!(
        second.rows.iter().map(|j| j.id).collect::<Vec<_>>(),
        ids[3..]
    );
    assert_eq!(second.rows[0].payload, "job 3");
    assert_ne!(first.token, second.token);
    assert!(
        queue
            .claim_due::<Claim>(&mut conn, t0)
            .await
            .unwrap()
            .rows
            .is_empty()
    );
    // Nor by id while leased.
    let leased = queue
        .claim_ids::<Claim>(&mut conn, &ids, t0 + 10)
        .await
        .unwrap();
    assert!(leased.rows.is_empty());

    // Done, with a column of the table's own set in the same statement.
    let done = queue
        .complete(&mut conn, &ids[..3], t0 + 20, &[("outcome", Some(7))])
        .await
        .unwrap();
    assert_eq!(done, 3);
    let row0 = row(&mut conn, ids[0]).await;
    assert_eq!(
        (row0.state.as_str(), row0.finished_at, row0.outcome),
        ("done", Some(t0 + 20), Some(7))
    );

    // A failure is retried after the backoff, then parked after the last attempt.
    let failed = queue
        .fail(&mut conn, ids[3], 1, "boom", true, t0 + 30, &[])
        .await
        .unwrap();
    assert_eq!(failed, Failed::RetryAt(t0 + 130));
    let retried = row(&mut conn, ids[3]).await;
    assert_eq!(
        (
            retried.state.as_str(),
            retried.next_attempt_at,
            retried.finished_at
        ),
        ("pending", t0 + 130, None)
    );
    assert_eq!(retried.error.as_deref(), Some("boom"));
    assert!(
        queue
            .claim_ids::<Claim>(&mut conn, &[ids[3]], t0 + 129)
            .await
            .unwrap()
            .rows
            .is_empty()
    );
    let again = queue
        .claim_ids::<Claim>(&mut conn, &[ids[3]], t0 + 130)
        .await
        .unwrap();
    assert_eq!(again.rows[0].attempts, 2, "the second attempt");
    assert_eq!(
        queue
            .fail(&mut conn, ids[3], 2, "boom", true, t0 + 140, &[])
            .await
            .unwrap(),
        Failed::RetryAt(t0 + 340),
        "the wait doubles"
    );
    assert_eq!(
        queue
            .fail(&mut conn, ids[3], 3, "boom", true, t0 + 400, &[])
            .await
            .unwrap(),
        Failed::Parked,
        "out of attempts"
    );
    let parked = row(&mut conn, ids[3]).await;
    assert_eq!(
        (parked.state.as_str(), parked.finished_at),
        ("failed", Some(t0 + 400))
    );
    // A final error parks at once.
    assert_eq!(
        queue
            .fail(&mut conn, ids[4], 1, "bad", false, t0 + 50, &[])
            .await
            .unwrap(),
        Failed::Parked
    );

    // A worker that stops mid-job: once its lease runs out the job is claimed again.
    let late = enqueue(&mut conn, 1, t0).await[0];
    let lost = queue.claim_due::<Claim>(&mut conn, t0 + 500).await.unwrap();
    assert_eq!(lost.rows.iter().map(|c| c.id).collect::<Vec<_>>(), [late]);
    assert!(
        queue
            .claim_due::<Claim>(&mut conn, t0 + 1_500)
            .await
            .unwrap()
            .rows
            .is_empty()
    );
    let reclaimed = queue
        .claim_due::<Claim>(&mut conn, t0 + 1_501)
        .await
        .unwrap();
    assert_eq!(
        reclaimed
            .rows
            .iter()
            .map(|c| (c.id, c.attempts))
            .collect::<Vec<_>>(),
        [(late, 2)]
    );
    assert_eq!(queue.recover(&mut conn, t0 + 9_999, "x").await.unwrap(), 0);

    // Purged: finished rows older than keep_finished_s; the pending one stays.
    assert_eq!(
        queue.purge(&mut conn, t0 + 60_000).await.unwrap(),
        0,
        "too young"
    );
    assert_eq!(queue.purge(&mut conn, t0 + 60_500).await.unwrap(), 5);
    assert_eq!(count(&mut conn).await, 1);
}

/// Workers racing for the same rows each get their own.
async fn racing_claims(backend: Backend) {
    let (_test_db, db) = jobs_table(backend).await;
    let queue = LeaseQueue::new(table(Delivery::AtLeastOnce), SETTINGS);
    let t0 = 2_000_000;
    {
        let mut conn = db.conn().await.unwrap();
        enqueue(&mut conn, 12, t0).await;
    }
    let claims = (0..4).map(|_| {
        let db = db.clone();
        async move {
            let mut conn = db.conn().await.unwrap();
            let mut mine = Vec::new();
            loop {
                match queue.claim_due::<Claim>(&mut conn, t0).await {
                    Ok(claimed) if claimed.rows.is_empty() => return mine,
                    Ok(claimed) => mine.extend(claimed.rows.into_iter().map(|c| c.id)),
                    // SQLite's writers wait on one lock and may time out: try again.
                    Err(e) if weapp::db::is_transient(&e) => {}
                    Err(e) => panic!("claim failed: {e}"),
                }
            }
        }
    });
    let mut all: Vec<i64> = futures_util::future::join_all(claims)
        .await
        .into_iter()
        .flatten()
        .collect();
    all.sort_unstable();
    let unique = {
        let mut unique = all.clone();
        unique.dedup();
        unique
    };
    assert_eq!(all.len(), 12, "every job claimed once: {all:?}");
    assert_eq!(all, unique);
}

async fn at_most_once(backend: Backend) {
    let (_test_db, db) = jobs_table(backend).await;
    let queue = LeaseQueue::new(table(AT_MOST_ONCE), SETTINGS);
    let mut conn = db.conn().await.unwrap();
    let t0 = 3_000_000;
    let ids = enqueue(&mut conn, 2, t0).await;

    let claimed = queue.claim_due::<Claim>(&mut conn, t0).await.unwrap();
    assert_eq!(claimed.rows.len(), 2);
    assert_eq!(row(&mut conn, ids[0]).await.state, "claimed");
    assert_eq!(
        row(&mut conn, ids[0]).await.attempts,
        0,
        "counted when started"
    );
    // Only the claim's own token starts a job.
    assert!(
        !queue
            .start(&mut conn, ids[0], claimed.token + 1, t0)
            .await
            .unwrap()
    );
    assert!(
        queue
            .start(&mut conn, ids[0], claimed.token, t0 + 10)
            .await
            .unwrap()
    );
    let running = row(&mut conn, ids[0]).await;
    assert_eq!((running.state.as_str(), running.attempts), ("running", 1));

    // The second was claimed but never started: after the lease another worker takes
    // it, and the first worker's claim no longer starts it.
    let retaken = queue
        .claim_due::<Claim>(&mut conn, t0 + 1_001)
        .await
        .unwrap();
    assert_eq!(
        retaken.rows.iter().map(|c| c.id).collect::<Vec<_>>(),
        [ids[1]]
    );
    assert!(
        !queue
            .start(&mut conn, ids[1], claimed.token, t0 + 1_002)
            .await
            .unwrap()
    );
    assert!(
        queue
            .start(&mut conn, ids[1], retaken.token, t0 + 1_002)
            .await
            .unwrap()
    );

    // The first stopped while running: recovery parks it, never runs it twice.
    assert_eq!(
        queue
            .recover(&mut conn, t0 + 1_000, "unknown")
            .await
            .unwrap(),
        0,
        "lease not over"
    );
    assert_eq!(
        queue
            .recover(&mut conn, t0 + 1_011, "unknown")
            .await
            .unwrap(),
        1
    );
    let recovered = row(&mut conn, ids[0]).await;
    assert_eq!(
        (
            recovered.state.as_str(),
            recovered.error.as_deref(),
            recovered.finished_at
        ),
        ("failed", Some("unknown"), Some(t0 + 1_011))
    );
    assert!(
        queue
            .claim_due::<Claim>(&mut conn, t0 + 5_000)
            .await
            .unwrap()
            .rows
            .is_empty()
    );

    // A retry of a started job goes back to pending and is claimed again later.
    assert_eq!(
        queue
            .fail(
                &mut conn,
                ids[1],
                1,
                "busy",
                true,
                t0 + 1_100,
                &[("outcome", Some(-1))]
            )
            .await
            .unwrap(),
        Failed::RetryAt(t0 + 1_200)
    );
    assert_eq!(row(&mut conn, ids[1]).await.outcome, Some(-1));
    let later = queue
        .claim_due::<Claim>(&mut conn, t0 + 1_200)
        .await
        .unwrap();
    assert_eq!(
        later.rows.iter().map(|c| c.id).collect::<Vec<_>>(),
        [ids[1]]
    );
}

#[tokio::test]
async fn at_least_once_on_postgres() {
    at_least_once(Backend::Postgres).await;
}

#[tokio::test]
async fn at_least_once_on_mariadb() {
    at_least_once(Backend::Mysql).await;
}

#[tokio::test]
async fn at_least_once_on_sqlite() {
    at_least_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn racing_claims_on_postgres() {
    racing_claims(Backend::Postgres).await;
}

#[tokio::test]
async fn racing_claims_on_mariadb() {
    racing_claims(Backend::Mysql).await;
}

#[tokio::test]
async fn racing_claims_on_sqlite() {
    racing_claims(Backend::Sqlite).await;
}

#[tokio::test]
async fn at_most_once_on_postgres() {
    at_most_once(Backend::Postgres).await;
}

#[tokio::test]
async fn at_most_once_on_mariadb() {
    at_most_once(Backend::Mysql).await;
}

#[tokio::test]
async fn at_most_once_on_sqlite() {
    at_most_once(Backend::Sqlite).await;
}
