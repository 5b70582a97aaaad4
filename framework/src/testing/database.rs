//! Throwaway databases: one per test on the test servers, and one on a PostgreSQL
//! primary with a streaming replica.

use std::path::PathBuf;
use std::time::Duration;

use diesel_async::{AsyncConnection, SimpleAsyncConnection};

use super::pg_replica;
use super::services::{mysql_url, postgres_url};
use crate::db::{AsyncMysqlConnection, AsyncPgConnection, Backend};

/// A uniquely named database (or SQLite file) that is dropped with this value.
pub struct TestDatabase {
    backend: Backend,
    url: String,
    name: String,
    admin_url: String,
}

fn with_database(url: &str, name: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    let prefix = base.rsplit_once('/').map(|(p, _)| p).unwrap_or(base);
    format!("{prefix}/{name}")
}

impl TestDatabase {
    /// Creates a fresh, empty database on `backend`; panics with a clear message when
    /// the server is unreachable.
    pub async fn create(backend: Backend) -> TestDatabase {
        let admin_url = match backend {
            Backend::Postgres => postgres_url(),
            Backend::Mysql => mysql_url(),
            Backend::Sqlite => String::new(),
        };
        Self::create_at(backend, admin_url).await
    }

    async fn create_at(backend: Backend, admin_url: String) -> TestDatabase {
        let name = format!("weapp_test_{}", uuid::Uuid::new_v4().simple());
        let url = match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                format!("sqlite://{}", path.display())
            }
            _ => {
                run_admin(backend, &admin_url, &format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "cannot create a test database on {} ({e}); is the server running? \
                             `tests/run.sh` starts it",
                            backend.name()
                        )
                    });
                with_database(&admin_url, &name)
            }
        };
        TestDatabase {
            backend,
            url,
            name,
            admin_url,
        }
    }

    /// Connection URL of the new database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }
}

async fn run_admin(backend: Backend, admin_url: &str, sql: &str) -> Result<(), String> {
    match backend {
        Backend::Postgres => {
            let mut c = AsyncPgConnection::establish(admin_url)
                .await
                .map_err(|e| e.to_string())?;
            c.batch_execute(sql).await.map_err(|e| e.to_string())
        }
        Backend::Mysql => {
            let mut c = AsyncMysqlConnection::establish(admin_url)
                .await
                .map_err(|e| e.to_string())?;
            c.batch_execute(sql).await.map_err(|e| e.to_string())
        }
        Backend::Sqlite => Ok(()),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.backend == Backend::Sqlite {
            let path = PathBuf::from(self.url.trim_start_matches("sqlite://"));
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
            return;
        }
        let sql = match self.backend {
            Backend::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            _ => format!("DROP DATABASE IF EXISTS {}", self.name),
        };
        let (backend, admin_url) = (self.backend, self.admin_url.clone());
        // Drop cannot be async, and we may be inside a runtime: use a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt
                && let Err(e) = rt.block_on(run_admin(backend, &admin_url, &sql))
            {
                eprintln!("warning: could not drop test database: {e}");
            }
        })
        .join();
    }
}

/// A fresh database on the test PostgreSQL primary that a streaming replica copies
/// (127.0.0.1:5442 and 5443, started from the machine's PostgreSQL binaries when
/// absent), dropped with this value. Tests that pause the replica's replay hold the
/// pair alone ([`ReplicatedDatabase::create_pausable`]); the others share it.
pub struct ReplicatedDatabase {
    database: TestDatabase,
    replica_url: String,
    pausable: bool,
    _turn: std::fs::File,
}

impl ReplicatedDatabase {
    /// A database on the pair, shared with other tests; panics with what failed.
    pub async fn create() -> ReplicatedDatabase {
        Self::create_with(false).await
    }

    /// A database on the pair, which no other test uses meanwhile, so that this
    /// one may pause the replica's replay.
    pub async fn create_pausable() -> ReplicatedDatabase {
        Self::create_with(true).await
    }

    async fn create_with(pausable: bool) -> ReplicatedDatabase {
        let turn = tokio::task::spawn_blocking(move || {
            pg_replica::ensure()?;
            let turn = std::fs::File::create(pg_replica::home().join("turn.lock"))
                .map_err(|e| e.to_string())?;
            match pausable {
                true => turn.lock(),
                false => turn.lock_shared(),
            }
            .map_err(|e| e.to_string())?;
            // A pausing test that died left the replay paused.
            pg_replica::query(pg_replica::REPLICA_PORT, "SELECT pg_wal_replay_resume()");
            Ok::<_, String>(turn)
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
        .unwrap_or_else(|e| panic!("the test PostgreSQL replica could not be started: {e}"));
        let admin = format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            pg_replica::PRIMARY_PORT
        );
        let database = TestDatabase::create_at(Backend::Postgres, admin).await;
        let replica_url = format!(
            "postgres://postgres@127.0.0.1:{}/{}",
            pg_replica::REPLICA_PORT,
            database.name
        );
        let replicated = ReplicatedDatabase {
            database,
            replica_url,
            pausable,
            _turn: turn,
        };
        replicated.wait_replayed().await;
        replicated
    }

    /// The database on the primary.
    pub fn url(&self) -> &str {
        self.database.url()
    }

    /// The same database on the replica.
    pub fn replica_url(&self) -> &str {
        &self.replica_url
    }

    /// Stops the replica applying what it receives (it keeps streaming).
    pub async fn pause_replay(&self) {
        assert!(
            self.pausable,
            "pause_replay needs ReplicatedDatabase::create_pausable"
        );
        self.on_replica("SELECT pg_wal_replay_pause()").await;
    }

    /// Lets the replica apply what it received again.
    pub async fn resume_replay(&self) {
        self.on_replica("SELECT pg_wal_replay_resume()").await;
    }

    /// Waits until the replica has applied everything the primary has written so
    /// far; panics after 30 s.
    pub async fn wait_replayed(&self) {
        // The insert position: with synchronous_commit off, a commit just acknowledged
        // may not be written yet, so the write position can stand before it.
        let target = self.on_primary("SELECT pg_current_wal_insert_lsn()").await;
        let sql = format!("SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn");
        for _ in 0..300 {
            if self.on_replica(&sql).await == "t" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the replica did not replay up to {target} within 30 s");
    }

    async fn on_primary(&self, sql: &str) -> String {
        Self::query(pg_replica::PRIMARY_PORT, sql).await
    }

    async fn on_replica(&self, sql: &str) -> String {
        Self::query(pg_replica::REPLICA_PORT, sql).await
    }

    async fn query(port: u16, sql: &str) -> String {
        let sql = sql.to_owned();
        tokio::task::spawn_blocking(move || pg_replica::query(port, &sql))
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("query on the test PostgreSQL pair (port {port}) failed"))
    }
}

impl Drop for ReplicatedDatabase {
    fn drop(&mut self) {
        if self.pausable {
            pg_replica::query(pg_replica::REPLICA_PORT, "SELECT pg_wal_replay_resume()");
        }
    }
}
