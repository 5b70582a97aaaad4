//! One database handle for PostgreSQL, MySQL/MariaDB and SQLite.
//!
//! # Design
//! diesel's query builder is generic over the backend, but a connection has one
//! concrete type per backend. [`Db`] holds a bb8 pool of the backend named by the URL
//! scheme, and [`Db::conn`] returns a [`DbConn`], an enum of the three pooled
//! connections. The [`with_conn!`](crate::with_conn) macro matches that enum and
//! expands the same query body once per backend with the inner connection bound to a
//! name, so plugin code is written once, reads as plain diesel-async, and is still
//! type-checked against every backend:
//!
//! ```no_run
//! use diesel::prelude::*;
//! use weapp::diesel_async::RunQueryDsl;
//!
//! diesel::table! {
//!     products (id) {
//!         id -> BigInt,
//!         name -> Text,
//!     }
//! }
//!
//! async fn product_names(ctx: &weapp::AppContext) -> weapp::Result<Vec<String>> {
//!     let mut conn = ctx.db().conn().await?;
//!     let names = weapp::with_conn!(conn, |c| {
//!         products::table.select(products::name).order(products::id).load(c).await
//!     })
//!     .map_err(weapp::db::DbError::from)?;
//!     Ok(names)
//! }
//! ```
//!
//! Where SQL must differ per backend, the two-argument form also binds the
//! [`Backend`], so the branch sits inside the one body:
//! `with_conn!(conn, |c, backend| if backend == Backend::Mysql { .. } else { .. })`.
//! We chose this over generic functions (`fn f<C: AsyncConnection>`) because those
//! need long trait bounds on every query function, which plugin authors would copy.
//! An insert that must learn its new row's id is declared once with
//! [`insert_returning_id!`](crate::insert_returning_id) ([`inserted_id`]).
//!
//! # Read replicas
//! With `database.replica_urls` (PostgreSQL streaming replicas), [`Db::read_conn`]
//! with [`ReadFrom::Replica`] takes a connection from a replica whose last measured
//! lag ([`Db::watch_replicas`], every `database.replica_check_interval_ms`) was at
//! most `database.max_replica_lag_ms`, round robin; otherwise, and before the first
//! check, from the primary. A read for someone who has just written must see the
//! write: the app remembers a user's write for [`Db::read_your_writes_window`]
//! (the lag bound plus one check interval) and reads for them meanwhile use
//! [`ReadFrom::Primary`] (`AppContext::read_from`). That window suffices: a read
//! at `t` uses a replica measured at some `m > t - interval` lagging at most
//! `max_lag`, which had replayed every commit before `m - max_lag`, later than any
//! write before `t - interval - max_lag`.

mod config;
mod diagnose;
mod error;
pub mod inserted_id;
mod migrate;
mod pool;
mod replica;
pub mod rotate;
pub mod sealed;
mod statement;
pub mod transaction;

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;

pub use diesel_async::{AsyncMysqlConnection, AsyncPgConnection};
pub use error::DbError;
pub use migrate::{Migration, MigrationReport, MigrationSet};
pub use statement::{PrepareOnce, PreparedOnce};
pub use transaction::{BeginTransaction, Isolation, RetryPolicy, is_transient};

pub use config::DatabaseConfig;
pub use replica::{ReadFrom, ReplicaStanding};

/// SQLite connection as diesel-async drives it (blocking calls on a thread pool).
pub type SqliteConn = SyncConnectionWrapper<diesel::SqliteConnection>;

type Pool<C> = bb8::Pool<AsyncDieselConnectionManager<C>>;
type Pooled<C> = bb8::PooledConnection<'static, AsyncDieselConnectionManager<C>>;

/// The database family behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
    /// SQLite (file or memory).
    Sqlite,
}

impl Backend {
    /// The backend a URL names by its scheme, if supported.
    pub fn from_url(url: &str) -> Option<Backend> {
        let scheme = url.split_once(':')?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "postgres" | "postgresql" => Some(Backend::Postgres),
            "mysql" | "mariadb" => Some(Backend::Mysql),
            "sqlite" => Some(Backend::Sqlite),
            _ => None,
        }
    }

    /// Lower-case name, as used in migration folders (`postgres`, `mysql`, `sqlite`).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
            Backend::Sqlite => "sqlite",
        }
    }
}

#[derive(Clone)]
enum DbPool {
    Postgres(Pool<AsyncPgConnection>),
    Mysql(Pool<AsyncMysqlConnection>),
    Sqlite(Pool<SqliteConn>),
}

impl DbPool {
    /// A connection from this pool, waiting at most `database.connect_timeout_ms`.
    async fn checkout(&self) -> Result<DbConn, DbError> {
        Ok(match self {
            DbPool::Postgres(p) => DbConn::Postgres(p.get_owned().await?),
            DbPool::Mysql(p) => DbConn::Mysql(p.get_owned().await?),
            DbPool::Sqlite(p) => DbConn::Sqlite(p.get_owned().await?),
        })
    }
}

/// A pooled connection to whichever backend is configured; use it through
/// [`with_conn!`](crate::with_conn).
// Not boxed: a box would cost an allocation per checkout on every request's hot path,
// and the value only lives on one request's stack.
#[allow(clippy::large_enum_variant)]
pub enum DbConn {
    /// A PostgreSQL connection.
    Postgres(Pooled<AsyncPgConnection>),
    /// A MySQL/MariaDB connection.
    Mysql(Pooled<AsyncMysqlConnection>),
    /// A SQLite connection.
    Sqlite(Pooled<SqliteConn>),
}

impl DbConn {
    /// The backend of this connection.
    pub fn backend(&self) -> Backend {
        match self {
            DbConn::Postgres(_) => Backend::Postgres,
            DbConn::Mysql(_) => Backend::Mysql,
            DbConn::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// Runs one query body against a [`DbConn`] whatever its backend; see the
/// [module documentation](crate::db).
#[macro_export]
macro_rules! with_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        $crate::with_conn!($conn, |$c, _backend| $body)
    };
    ($conn:expr, |$c:ident, $backend:ident| $body:expr) => {
        match &mut $conn {
            $crate::db::DbConn::Postgres(pooled) => {
                let $c: &mut $crate::db::AsyncPgConnection = &mut *pooled;
                #[allow(unused_variables)]
                let $backend = $crate::db::Backend::Postgres;
                $body
            }
            $crate::db::DbConn::Mysql(pooled) => {
                let $c: &mut $crate::db::AsyncMysqlConnection = &mut *pooled;
                #[allow(unused_variables)]
                let $backend = $crate::db::Backend::Mysql;
                $body
            }
            $crate::db::DbConn::Sqlite(pooled) => {
                let $c: &mut $crate::db::SqliteConn = &mut *pooled;
                #[allow(unused_variables)]
                let $backend = $crate::db::Backend::Sqlite;
                $body
            }
        }
    };
}

/// The application's database: a connection pool for one backend. Cheap to clone.
///
/// # Worker-local pools
/// A PostgreSQL or MySQL connection is driven by a task on the thread that opened
/// it; a request on another thread then pays two cross-thread wake-ups per round
/// trip, which dominated the CPU profile of `POST /api/orders`. So each server
/// worker thread gets a pool of its own ([`Db::attach_worker_pool`]) holding its
/// share of `database.max_connections`, and [`Db::conn`] prefers it. Background
/// tasks and CLI commands use the shared pool, which opens connections only when
/// asked. On PostgreSQL the shared pool plans each statement run afresh, since its
/// batch queries run over tables whose size changes fast (see `pool::Workload`).
#[derive(Clone)]
pub struct Db {
    pool: DbPool,
    backend: Backend,
    id: u64,
    config: Arc<DatabaseConfig>,
    /// Every worker pool, for statistics.
    worker_pools: Arc<std::sync::Mutex<Vec<DbPool>>>,
    /// `database.replica_urls`, for [`Db::read_conn`].
    replicas: Arc<replica::Replicas>,
}

/// Connection-pool figures for metrics, summed over the shared and worker pools.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections.
    pub connections: u32,
    /// Idle connections.
    pub idle: u32,
    /// Checkouts that had to wait for a connection (since start).
    pub waited: u64,
    /// Checkouts that gave up waiting (since start): 503 `database_unavailable`.
    pub timed_out: u64,
}

thread_local! {
    /// This thread's worker pools, by [`Db`] id.
    static WORKER_POOLS: RefCell<Vec<(u64, DbPool)>> = const { RefCell::new(Vec::new()) };
}

static NEXT_DB_ID: AtomicU64 = AtomicU64::new(1);

impl Db {
    /// Builds the pool without connecting, so the app can start (and report itself
    /// unready) while the database is down.
    pub fn connect(config: &DatabaseConfig) -> Result<Db, DbError> {
        let backend = Backend::from_url(config.url.expose())
            .ok_or_else(|| DbError::Config(format!("unsupported database URL {}", config.url)))?;
        if let Some(refused) = config.unsupported_replica() {
            return Err(DbError::Config(refused));
        }
        let pool = match backend {
            Backend::Postgres => DbPool::Postgres(pool::postgres(
                config,
                config.max_connections,
                pool::Workload::Background,
            )),
            Backend::Mysql => DbPool::Mysql(pool::mysql(config, config.max_connections)),
            Backend::Sqlite => DbPool::Sqlite(pool::sqlite(config)?),
        };
        let mut replicas = Vec::with_capacity(config.replica_urls.len());
        for url in &config.replica_urls {
            let replica_config = DatabaseConfig {
                url: url.clone(),
                ..config.clone()
            };
            let pool = pool::postgres(
                &replica_config,
                config.max_connections,
                pool::Workload::Requests,
            );
            replicas.push((url.redacted(), DbPool::Postgres(pool)));
        }
        Ok(Db {
            pool,
            backend,
            id: NEXT_DB_ID.fetch_add(1, Ordering::Relaxed),
            config: Arc::new(config.clone()),
            worker_pools: Arc::default(),
            replicas: Arc::new(replica::Replicas::new(replicas, config.max_replica_lag_ms)),
        })
    }

    /// Gives the calling thread (a server worker) its own pool of
    /// `max_connections / workers` connections (at least one), used by [`Db::conn`]
    /// on this thread. SQLite keeps its one shared pool: its connections run on a
    /// blocking thread pool anyway, and an in-memory database is one connection.
    pub fn attach_worker_pool(&self, workers: usize) {
        let workers = u32::try_from(workers.max(1)).unwrap_or(u32::MAX);
        let size = (self.config.max_connections / workers).max(1);
        let pool = match self.backend {
            Backend::Postgres => {
                DbPool::Postgres(pool::postgres(&self.config, size, pool::Workload::Requests))
            }
            Backend::Mysql => DbPool::Mysql(pool::mysql(&self.config, size)),
            Backend::Sqlite => return,
        };
        self.worker_pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(pool.clone());
        WORKER_POOLS.with(|pools| {
            let mut pools = pools.borrow_mut();
            pools.retain(|(id, _)| *id != self.id);
            pools.push((self.id, pool));
        });
    }

    fn worker_pool(&self) -> Option<DbPool> {
        WORKER_POOLS.with(|pools| {
            pools
                .borrow()
                .iter()
                .find(|(id, _)| *id == self.id)
                .map(|(_, pool)| pool.clone())
        })
    }

    /// The configured backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Takes a connection from the pool, waiting at most `database.connect_timeout_ms`;
    /// on timeout the error maps to a 503 `database_unavailable`.
    pub async fn conn(&self) -> Result<DbConn, DbError> {
        let local = self.worker_pool();
        local.as_ref().unwrap_or(&self.pool).checkout().await
    }

    /// A connection for a read-only query: from a usable replica when `from` is
    /// [`ReadFrom::Replica`] and one is (see [the module docs](self#read-replicas)),
    /// else from the primary, as [`Db::conn`]. Never write through it.
    pub async fn read_conn(&self, from: ReadFrom) -> Result<DbConn, DbError> {
        if from == ReadFrom::Replica
            && let Some(replica) = self.replicas.pick()
        {
            match replica.pool.checkout().await {
                Ok(conn) => return Ok(conn),
                Err(e) => self.replicas.checkout_failed(replica, &e),
            }
        }
        self.conn().await
    }

    /// Whether `database.replica_urls` names any replica.
    pub fn has_replicas(&self) -> bool {
        !self.replicas.is_empty()
    }

    /// How long after a user's write their reads stay on the primary:
    /// `database.max_replica_lag_ms` plus one `database.replica_check_interval_ms`
    /// (why that suffices: [the module docs](self#read-replicas)).
    pub fn read_your_writes_window(&self) -> Duration {
        Duration::from_millis(
            self.config
                .max_replica_lag_ms
                .saturating_add(self.config.replica_check_interval_ms),
        )
    }

    /// Every replica's lag and whether reads go to it.
    pub fn replica_standings(&self) -> Vec<ReplicaStanding> {
        self.replicas.standings()
    }

    /// Measures every replica's lag now, and routes reads accordingly.
    pub async fn check_replicas(&self) {
        let timeout = Duration::from_millis(self.config.connect_timeout_ms);
        for replica in self.replicas.members() {
            let measured = replica.measure(timeout).await;
            self.replicas.record(replica, measured);
        }
    }

    /// Checks the replicas every `database.replica_check_interval_ms` until `stop`
    /// (the app runs this as a background task when there are replicas).
    pub async fn watch_replicas(&self, stop: crate::shutdown::Shutdown) {
        let every = Duration::from_millis(self.config.replica_check_interval_ms);
        while !stop.is_shutting_down() {
            self.check_replicas().await;
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = stop.wait() => {}
            }
        }
    }

    /// Runs `SELECT 1` within `timeout`, for readiness checks.
    pub async fn ping(&self, timeout: Duration) -> Result<(), DbError> {
        use diesel_async::RunQueryDsl;
        let check = async {
            let mut conn = self.conn().await?;
            with_conn!(conn, |c| diesel::sql_query("SELECT 1").execute(c).await)?;
            Ok::<_, DbError>(())
        };
        tokio::time::timeout(timeout, check)
            .await
            .map_err(|_| DbError::Unavailable(format!("no answer within {timeout:?}")))?
    }

    /// Figures of every pool of this database, for `/metrics`.
    pub fn pool_stats(&self) -> PoolStats {
        let workers = self
            .worker_pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut total = PoolStats::default();
        for pool in std::iter::once(&self.pool).chain(workers.iter()) {
            let state = match pool {
                DbPool::Postgres(p) => p.state(),
                DbPool::Mysql(p) => p.state(),
                DbPool::Sqlite(p) => p.state(),
            };
            total.connections += state.connections;
            total.idle += state.idle_connections;
            total.waited += state.statistics.get_waited;
            total.timed_out += state.statistics.get_timed_out;
        }
        total
    }

    /// Shared-pool statistics: (open connections, idle connections).
    pub fn pool_state(&self) -> (u32, u32) {
        let state = match &self.pool {
            DbPool::Postgres(p) => p.state(),
            DbPool::Mysql(p) => p.state(),
            DbPool::Sqlite(p) => p.state(),
        };
        (state.connections, state.idle_connections)
    }
}
