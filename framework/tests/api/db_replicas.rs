//! Read replicas against a real streaming replica (`ReplicatedDatabase`): reads
//! routed by lag, the primary whenever a replica cannot be trusted.

use diesel::QueryableByName;
use diesel::sql_types::Bool;
use weapp::config::ConnectionUrl;
use weapp::db::{DatabaseConfig, Db, DbConn, ReadFrom};
use weapp::diesel_async::RunQueryDsl;
use weapp::testing::ReplicatedDatabase;
use weapp::with_conn;

#[derive(QueryableByName)]
struct Recovery {
    #[diesel(sql_type = Bool)]
    in_recovery: bool,
}

/// Whether `conn` is the replica's (in recovery) rather than the primary's.
async fn on_replica(mut conn: DbConn) -> bool {
    let row: Recovery = with_conn!(conn, |c| {
        diesel::sql_query("SELECT pg_is_in_recovery() AS in_recovery")
            .get_result(c)
            .await
    })
    .expect("recovery query");
    row.in_recovery
}

fn replicated(db: &ReplicatedDatabase, max_lag_ms: u64) -> Db {
    Db::connect(&DatabaseConfig {
        url: ConnectionUrl::new(db.url()),
        replica_urls: vec![ConnectionUrl::new(db.replica_url())],
        max_replica_lag_ms: max_lag_ms,
        ..DatabaseConfig::default()
    })
    .expect("valid config")
}

#[tokio::test]
async fn reads_go_to_a_checked_replica_and_writes_never_do() {
    let pair = ReplicatedDatabase::create().await;
    let db = replicated(&pair, 1_000);
    assert!(db.has_replicas());

    // Before its first check nobody knows the replica's lag: the primary serves.
    assert!(!on_replica(db.read_conn(ReadFrom::Replica).await.unwrap()).await);
    let standing = &db.replica_standings()[0];
    assert_eq!((standing.usable, standing.lag_ms), (false, None));

    db.check_replicas().await;
    let standing = &db.replica_standings()[0];
    assert!(standing.usable, "{standing:?}");
    assert!(
        standing.lag_ms.is_some_and(|ms| ms <= 1_000),
        "{standing:?}"
    );
    assert!(on_replica(db.read_conn(ReadFrom::Replica).await.unwrap()).await);
    assert!(!on_replica(db.read_conn(ReadFrom::Primary).await.unwrap()).await);
    assert!(!on_replica(db.conn().await.unwrap()).await);
}

#[tokio::test]
async fn a_replica_lagging_past_the_bound_is_left_until_it_catches_up() {
    let pair = ReplicatedDatabase::create_pausable().await;
    let db = replicated(&pair, 200);
    db.check_replicas().await;
    assert!(db.replica_standings()[0].usable);

    pair.pause_replay().await;
    let mut conn = db.conn().await.unwrap();
    with_conn!(conn, |c| {
        diesel::sql_query("CREATE TABLE written_while_paused (id BIGINT)")
            .execute(c)
            .await
    })
    .unwrap();
    drop(conn);
    // The replica has received the table but not applied it: once its lag passes
    // the bound, reads leave it.
    let mut left = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        db.check_replicas().await;
        if !db.replica_standings()[0].usable {
            left = true;
            break;
        }
    }
    let standing = db.replica_standings()[0].clone();
    assert!(left, "a paused replica stayed in use: {standing:?}");
    assert!(standing.lag_ms.is_some_and(|ms| ms > 200), "{standing:?}");
    assert!(!on_replica(db.read_conn(ReadFrom::Replica).await.unwrap()).await);

    pair.resume_replay().await;
    pair.wait_replayed().await;
    db.check_replicas().await;
    assert!(db.replica_standings()[0].usable);
    assert!(on_replica(db.read_conn(ReadFrom::Replica).await.unwrap()).await);
}

#[tokio::test]
async fn an_unreachable_replica_sends_reads_to_the_primary() {
    let pair = ReplicatedDatabase::create().await;
    let db = Db::connect(&DatabaseConfig {
        url: ConnectionUrl::new(pair.url()),
        // Nothing listens on port 1.
        replica_urls: vec![ConnectionUrl::new(
            "postgres://postgres:secret@127.0.0.1:1/x",
        )],
        connect_timeout_ms: 500,
        ..DatabaseConfig::default()
    })
    .unwrap();
    db.check_replicas().await;
    let standing = &db.replica_standings()[0];
    assert_eq!((standing.usable, standing.lag_ms), (false, None));
    assert!(
        !standing.name.contains("secret"),
        "password in {}",
        standing.name
    );
    assert!(!on_replica(db.read_conn(ReadFrom::Replica).await.unwrap()).await);
}

#[tokio::test]
async fn a_primary_named_as_a_replica_is_not_read_from() {
    let pair = ReplicatedDatabase::create().await;
    let db = Db::connect(&DatabaseConfig {
        url: ConnectionUrl::new(pair.url()),
        replica_urls: vec![ConnectionUrl::new(pair.url())],
        ..DatabaseConfig::default()
    })
    .unwrap();
    db.check_replicas().await;
    assert!(!db.replica_standings()[0].usable);
}

#[test]
fn replicas_are_refused_on_sqlite_and_mysql() {
    for primary in ["sqlite://data/x.db", "mysql://root@127.0.0.1:3306/test"] {
        let config = DatabaseConfig {
            url: ConnectionUrl::new(primary),
            replica_urls: vec![ConnectionUrl::new("postgres://127.0.0.1:5443/x")],
            ..DatabaseConfig::default()
        };
        let error = Db::connect(&config).err().expect("refused").to_string();
        assert!(error.contains("PostgreSQL only"), "{error}");
    }
}
