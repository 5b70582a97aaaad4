use std::time::Duration;

use diesel::prelude::*;
use weapp::config::ConnectionUrl;
use weapp::db::DatabaseConfig;
use weapp::db::{Backend, Db, DbError, Migration, MigrationSet};
use weapp::diesel_async::RunQueryDsl;
use weapp::testing::TestDatabase;
use weapp::with_conn;

diesel::table! {
    notes (id) {
        id -> BigInt,
        body -> Text,
        stars -> Integer,
    }
}

const NOTES_V1: &[Migration] = &[Migration {
    version: "0001_create_notes",
    postgres: "CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL, stars INTEGER NOT NULL);",
    mysql: "CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL, stars INTEGER NOT NULL);",
    sqlite: "CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL, stars INTEGER NOT NULL);",
}];

const NOTES_V2: &[Migration] = &[
    NOTES_V1[0],
    Migration {
        version: "0002_index_stars",
        postgres: "CREATE INDEX notes_stars ON notes (stars);",
        mysql: "CREATE INDEX notes_stars ON notes (stars);",
        sqlite: "CREATE INDEX notes_stars ON notes (stars);",
    },
];

fn config(url: &str) -> DatabaseConfig {
    DatabaseConfig {
        url: ConnectionUrl::new(url),
        max_connections: 4,
        ..Default::default()
    }
}

/// Connect, migrate, write, read, re-migrate, and refuse an edited migration.
async fn round_trip(backend: Backend) {
    let test_db = TestDatabase::create(backend).await;
    let db = Db::connect(&config(test_db.url())).unwrap();
    assert_eq!(db.backend(), backend);

    let report = db
        .migrate(&[MigrationSet {
            owner: "notes",
            migrations: NOTES_V1,
        }])
        .await
        .unwrap();
    assert_eq!(
        report.applied,
        [("notes".to_owned(), "0001_create_notes".to_owned())]
    );

    let mut conn = db.conn().await.unwrap();
    let inserted = with_conn!(conn, |c| {
        diesel::insert_into(notes::table)
            .values((
                notes::id.eq(1_i64),
                notes::body.eq("你好, weapp"),
                notes::stars.eq(5),
            ))
            .execute(c)
            .await
    })
    .unwrap();
    assert_eq!(inserted, 1);
    let rows: Vec<(i64, String, i32)> = with_conn!(conn, |c| notes::table
        .select((notes::id, notes::body, notes::stars))
        .load(c)
        .await)
    .unwrap();
    assert_eq!(rows, [(1, "你好, weapp".to_owned(), 5)]);
    drop(conn);

    let again = db
        .migrate(&[MigrationSet {
            owner: "notes",
            migrations: NOTES_V2,
        }])
        .await
        .unwrap();
    assert_eq!(again.already_applied, 1);
    assert_eq!(
        again.applied,
        [("notes".to_owned(), "0002_index_stars".to_owned())]
    );

    let edited = [Migration {
        postgres: "CREATE TABLE notes (id BIGINT PRIMARY KEY);",
        mysql: "CREATE TABLE notes (id BIGINT PRIMARY KEY);",
        sqlite: "CREATE TABLE notes (id BIGINT PRIMARY KEY);",
        ..NOTES_V1[0]
    }];
    let edited: &'static [Migration] = Box::leak(Box::new(edited));
    let err = db
        .migrate(&[MigrationSet {
            owner: "notes",
            migrations: edited,
        }])
        .await
        .unwrap_err();
    assert!(
        matches!(err, DbError::Migration(ref m) if m.contains("changed after it was applied")),
        "{err}"
    );

    // The data survived every run.
    let mut conn = db.conn().await.unwrap();
    let count: i64 = with_conn!(conn, |c| notes::table.count().get_result(c).await).unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn postgres_round_trip() {
    round_trip(Backend::Postgres).await;
}

#[tokio::test]
async fn mysql_round_trip() {
    round_trip(Backend::Mysql).await;
}

#[tokio::test]
async fn sqlite_round_trip() {
    round_trip(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_failing_migration_is_not_recorded_and_keeps_earlier_data() {
    let test_db = TestDatabase::create(Backend::Postgres).await;
    let db = Db::connect(&config(test_db.url())).unwrap();
    db.migrate(&[MigrationSet {
        owner: "notes",
        migrations: NOTES_V1,
    }])
    .await
    .unwrap();
    const BROKEN: &[Migration] = &[
        NOTES_V1[0],
        Migration {
            version: "0002_broken",
            postgres: "ALTER TABLE notes ADD COLUMN x INTEGER; SELECT * FROM no_such_table;",
            mysql: "",
            sqlite: "",
        },
    ];
    let err = db
        .migrate(&[MigrationSet {
            owner: "notes",
            migrations: BROKEN,
        }])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("notes/0002_broken"), "{err}");
    // The transaction rolled back: the column is absent and the migration is pending.
    const FIXED: &[Migration] = &[
        NOTES_V1[0],
        Migration {
            version: "0002_broken",
            postgres: "ALTER TABLE notes ADD COLUMN x INTEGER;",
            mysql: "",
            sqlite: "",
        },
    ];
    let report = db
        .migrate(&[MigrationSet {
            owner: "notes",
            migrations: FIXED,
        }])
        .await
        .unwrap();
    assert_eq!(report.applied.len(), 1);
}

#[tokio::test]
async fn an_unreachable_database_times_out_as_unavailable() {
    let db = Db::connect(&DatabaseConfig {
        connect_timeout_ms: 300,
        ..config("postgres://postgres@127.0.0.1:1/none")
    })
    .unwrap();
    let started = std::time::Instant::now();
    let err = db
        .conn()
        .await
        .err()
        .expect("no connection to a closed port");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited {:?}",
        started.elapsed()
    );
    let err = weapp::Error::from(err);
    assert_eq!(err.code(), "database_unavailable");
    use weapp::actix_web::ResponseError;
    assert_eq!(err.status_code().as_u16(), 503);
    assert!(db.ping(Duration::from_millis(200)).await.is_err());
}

#[tokio::test]
async fn sqlite_creates_its_folder() {
    let dir = std::env::temp_dir().join(format!("weapp-sqlite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let url = format!("sqlite://{}/nested/app.db", dir.display());
    let db = Db::connect(&config(&url)).unwrap();
    db.ping(Duration::from_secs(5)).await.unwrap();
    assert!(dir.join("nested/app.db").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Requests use their server worker's own pool, so the shared pool (migrations,
/// background tasks) does not grow under request load.
#[tokio::test]
async fn requests_use_the_worker_pool_not_the_shared_one() {
    let app = weapp::testing::TestApp::builder()
        .database(Backend::Postgres)
        .set("database.max_connections", 4)
        .spawn()
        .await;
    let (shared_before, _) = app.ctx.db().pool_state();
    let logins = (0..12).map(|i| {
        let app = &app;
        async move { app.login(&format!("o_worker_pool_{i}")).await }
    });
    let users = futures_util::future::join_all(logins).await;
    assert_eq!(users.len(), 12);
    let (shared_after, _) = app.ctx.db().pool_state();
    assert_eq!(
        shared_before, shared_after,
        "logins must not open connections in the shared pool"
    );
    app.stop().await.unwrap();
}

/// A worker pool gets its share of `max_connections`, at least one.
#[tokio::test]
async fn worker_pools_split_max_connections() {
    let db = TestDatabase::create(Backend::Postgres).await;
    let mut cfg = config(db.url());
    cfg.max_connections = 4;
    let pool = Db::connect(&cfg).unwrap();
    pool.attach_worker_pool(2);
    let a = pool.conn().await.unwrap();
    let b = pool.conn().await.unwrap();
    let third = tokio::time::timeout(Duration::from_millis(300), pool.conn()).await;
    assert!(
        matches!(third, Err(_) | Ok(Err(_))),
        "this thread's pool holds 4 / 2 = 2 connections"
    );
    drop((a, b));
    assert_eq!(pool.pool_state().0, 0, "the shared pool was not used");
}

/// Raw SQL marked `prepare_once` runs as written on `backend`; returns the connection
/// it ran on, holding one note with 3 stars.
async fn star_three_times(db: &Db) -> weapp::db::DbConn {
    use diesel::sql_types::BigInt;
    use weapp::db::PrepareOnce;

    db.migrate(&[MigrationSet {
        owner: "notes",
        migrations: NOTES_V1,
    }])
    .await
    .unwrap();
    let mut conn = db.conn().await.unwrap();
    with_conn!(conn, |c| diesel::insert_into(notes::table)
        .values((notes::id.eq(1_i64), notes::body.eq("x"), notes::stars.eq(0)))
        .execute(c)
        .await)
    .unwrap();
    for _ in 0..3 {
        let updated = with_conn!(conn, |c, backend| {
            let sql = if backend == Backend::Postgres {
                STAR_PG
            } else {
                "UPDATE notes SET stars = stars + 1 WHERE id = ?"
            };
            diesel::sql_query(sql)
                .bind::<BigInt, _>(1_i64)
                .prepare_once()
                .execute(c)
                .await
        })
        .unwrap();
        assert_eq!(updated, 1);
    }
    let stars: i32 =
        with_conn!(conn, |c| notes::table.select(notes::stars).first(c).await).unwrap();
    assert_eq!(stars, 3);
    conn
}

const STAR_PG: &str = "UPDATE notes SET stars = stars + 1 WHERE id = $1";

/// How many statements with this text the connection holds prepared.
async fn prepared_count(conn: &mut weapp::db::DbConn, sql: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let weapp::db::DbConn::Postgres(c) = conn else {
        panic!("pg_prepared_statements is PostgreSQL's");
    };
    diesel::sql_query("SELECT COUNT(*) AS n FROM pg_prepared_statements WHERE statement = $1")
        .bind::<diesel::sql_types::Text, _>(sql)
        .get_result::<Count>(&mut **c)
        .await
        .unwrap()
        .n
}

/// On PostgreSQL a `prepare_once` statement is prepared once and kept for the
/// connection, while plain `sql_query` prepares a throwaway statement per run.
#[tokio::test]
async fn postgres_keeps_prepare_once_statements_prepared() {
    let test_db = TestDatabase::create(Backend::Postgres).await;
    let db = Db::connect(&config(test_db.url())).unwrap();
    let mut conn = star_three_times(&db).await;
    assert_eq!(prepared_count(&mut conn, STAR_PG).await, 1);

    let plain = "UPDATE notes SET stars = stars - 1 WHERE id = $1";
    with_conn!(conn, |c| diesel::sql_query(plain)
        .bind::<diesel::sql_types::BigInt, _>(1_i64)
        .execute(c)
        .await)
    .unwrap();
    assert_eq!(prepared_count(&mut conn, plain).await, 0);
}

#[tokio::test]
async fn mysql_runs_prepare_once_statements() {
    let test_db = TestDatabase::create(Backend::Mysql).await;
    star_three_times(&Db::connect(&config(test_db.url())).unwrap()).await;
}

#[tokio::test]
async fn sqlite_runs_prepare_once_statements() {
    let test_db = TestDatabase::create(Backend::Sqlite).await;
    star_three_times(&Db::connect(&config(test_db.url())).unwrap()).await;
}

/// PostgreSQL: the shared pool (background batches) plans each run; a server
/// worker's pool keeps cached plans.
#[tokio::test]
async fn background_connections_plan_each_run_and_request_ones_cache() {
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        plan_cache_mode: String,
    }
    async fn mode(db: &Db) -> String {
        let mut conn = db.conn().await.unwrap();
        with_conn!(conn, |c| diesel::sql_query("SHOW plan_cache_mode")
            .get_result::<Setting>(c)
            .await)
        .unwrap()
        .plan_cache_mode
    }
    let test_db = TestDatabase::create(Backend::Postgres).await;
    let db = Db::connect(&config(test_db.url())).unwrap();
    assert_eq!(mode(&db).await, "force_custom_plan");
    db.attach_worker_pool(1);
    assert_eq!(mode(&db).await, "auto");
}

/// A start that cannot reach its database says why, not only that the pool timed
/// out: a missing database, refused credentials and an unreachable server are
/// named as such.
#[tokio::test]
async fn a_start_without_its_database_names_the_cause() {
    let missing = format!("weapp_missing_{}", uuid::Uuid::new_v4().simple());
    let cases = [
        (
            format!("postgres://postgres@127.0.0.1:5432/{missing}"),
            "the database does not exist",
        ),
        (
            "mysql://root:not-the-password@127.0.0.1:3306/test".to_owned(),
            "the server refused the credentials",
        ),
        (
            "postgres://postgres@127.0.0.1:1/test".to_owned(),
            "the server is unreachable",
        ),
    ];
    for (url, cause) in cases {
        let err = weapp::testing::TestApp::builder()
            .database_url(&url)
            .set("database.connect_timeout_ms", 1_000)
            .try_spawn()
            .await
            .err()
            .unwrap_or_else(|| panic!("{url} started"))
            .to_string();
        assert!(err.contains(cause), "{url}: {err}");
        assert!(
            !err.contains("not-the-password"),
            "the password is not repeated: {err}"
        );
    }
}
